-- Argo CD health check for ecsnic.io/EcsCloud (see argocd-cm.yaml for where it goes).
-- Healthy: Ready=True for the current generation.
-- Degraded: not Ready for a reason only a person can fix (the Secret, its keys, the credentials, the URL).
-- Progressing: no status yet, an older generation, or a passing reason (endpoint unreachable, first check).
local hs = {}
local terminal = {
  SecretNotFound = true, SecretForbidden = true, CredentialsInvalid = true, CredentialsRejected = true,
  EndpointInvalid = true,
}
local ready = nil
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" then ready = c end
  end
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to check the cloud"
  return hs
end
local reason = ready.reason
if reason == nil or reason == "" then reason = "Ready=" .. tostring(ready.status) end
hs.message = reason
if ready.message ~= nil and ready.message ~= "" then hs.message = reason .. ": " .. ready.message end
local generation = obj.metadata ~= nil and obj.metadata.generation or nil
local observed = obj.status.observedGeneration
local current = generation == nil or observed == nil or observed >= generation
if ready.status == "True" and current then
  hs.status = "Healthy"
elseif ready.status == "False" and current and ready.reason ~= nil and terminal[ready.reason] then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
return hs
