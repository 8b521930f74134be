-- Argo CD health check for ecsnic.io/EcsNicAttachment (see argocd-cm.yaml for where it goes).
-- Healthy: Ready=True (and Synced not failed for a terminal reason).
-- Degraded: a reason only a person can fix: a spec the cloud refuses, credentials, a missing dependency.
-- Suspended: the ecsnic.io/paused annotation (Synced=False, ReconcilePaused).
-- Progressing: everything else (attaching, port not ACTIVE yet, transient cloud trouble, no status yet).
local hs = {}
local terminal = {
  NetworkNotFound = true, PortInUse = true, IpInUse = true, QuotaExceeded = true,
  CredentialsRejected = true, InvalidRequest = true, ServerNotFound = true, PortNotFound = true,
  CloudNotFound = true, NamespaceNotAllowed = true, NodeNotFound = true, NodeHasNoProviderID = true,
  DetachBlocked = true, PortClaimed = true, IntentUnverifiable = true, IntentKeyUnavailable = true,
}
local ready, synced = nil, nil
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" then ready = c end
    if c.type == "Synced" then synced = c end
  end
end
local function text(c)
  if c.message ~= nil and c.message ~= "" then return c.reason .. ": " .. c.message end
  return c.reason or ""
end
if synced ~= nil and synced.status == "False" and synced.reason == "ReconcilePaused" then
  hs.status = "Suspended"
  hs.message = text(synced)
  return hs
end
if synced ~= nil and synced.status == "False" and terminal[synced.reason] then
  hs.status = "Degraded"
  hs.message = text(synced)
  return hs
end
if ready ~= nil and ready.status == "False" and terminal[ready.reason] then
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
