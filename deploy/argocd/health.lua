-- Argo CD health check for ecsnic.io/EcsNicAttachment (see argocd-cm.yaml for where it goes).
-- Healthy: Ready=True (and Synced not failed for a terminal reason).
-- Degraded: a reason only a person can fix: a spec the cloud refuses, credentials, a missing dependency,
--   or an EcsCloud that is not Ready for such a reason (CloudNotReady naming it).
-- Suspended: the ecsnic.io/paused annotation (before or after the operator said so).
-- Progressing: everything else (attaching, port not ACTIVE yet, transient cloud trouble, no status yet).
local hs = {}
local terminal = {
  NetworkNotFound = true, PortInUse = true, IpInUse = true, QuotaExceeded = true,
  CredentialsRejected = true, InvalidRequest = true, ServerNotFound = true, PortNotFound = true,
  CloudNotFound = true, NamespaceNotAllowed = true, NodeNotFound = true, NodeHasNoProviderID = true,
  DetachBlocked = true, ServerLocked = true, SubnetExhausted = true, InvalidIp = true, ApiNotFound = true,
  NicLimitReached = true, AttachStuck = true, DetachStuck = true, UnsupportedByApi = true,
  AttachUnconfirmed = true, PortUpdateFailed = true,
  PortClaimed = true, IntentUnverifiable = true, IntentKeyUnavailable = true, AdoptionAmbiguous = true,
}
-- EcsCloud reasons only a person can fix; CloudNotReady's message names the cloud's reason
-- ("EcsCloud 'x' is not Ready: <Reason>: ...").
local cloud_terminal = {
  SecretNotFound = true, SecretForbidden = true, CredentialsInvalid = true, CredentialsRejected = true,
  EndpointInvalid = true,
}
local function is_terminal(c)
  if c == nil or c.status ~= "False" or c.reason == nil then return false end
  if terminal[c.reason] then return true end
  if c.reason == "CloudNotReady" and type(c.message) == "string" then
    local why = string.match(c.message, "is not Ready: (%w+)")
    return why ~= nil and cloud_terminal[why] == true
  end
  return false
end
local function text(c)
  local reason = c.reason
  if reason == nil or reason == "" then reason = c.type .. "=" .. tostring(c.status) end
  if c.message ~= nil and c.message ~= "" then return reason .. ": " .. c.message end
  return reason
end
local ready, synced = nil, nil
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" then ready = c end
    if c.type == "Synced" then synced = c end
  end
end
local annotations = obj.metadata ~= nil and obj.metadata.annotations or nil
if annotations ~= nil and annotations["ecsnic.io/paused"] == "true" then
  hs.status = "Suspended"
  if synced ~= nil and synced.reason == "ReconcilePaused" then
    hs.message = text(synced)
  else
    hs.message = 'ecsnic.io/paused is "true": no cloud calls'
  end
  return hs
end
if synced ~= nil and synced.status == "False" and synced.reason == "ReconcilePaused" then
  hs.status = "Suspended"
  hs.message = text(synced)
  return hs
end
if is_terminal(synced) then
  hs.status = "Degraded"
  hs.message = text(synced)
  return hs
end
if is_terminal(ready) then
  hs.status = "Degraded"
  hs.message = text(ready)
  return hs
end
if ready ~= nil and ready.status == "True" then
  local generation = obj.metadata ~= nil and obj.metadata.generation or nil
  if generation == nil or obj.status.observedGeneration == nil or obj.status.observedGeneration >= generation then
    hs.status = "Healthy"
    hs.message = text(ready)
    if synced ~= nil and synced.status == "False" then
      -- Still attached, but the last look at the cloud failed for a passing reason: say so.
      hs.message = hs.message .. " (Synced=False: " .. text(synced) .. ")"
    end
    return hs
  end
end
hs.status = "Progressing"
if ready ~= nil then
  hs.message = text(ready)
elseif synced ~= nil then
  hs.message = text(synced)
else
  hs.message = "waiting for the operator to report status"
end
return hs
