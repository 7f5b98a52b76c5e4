-- Argo CD health check for SpeedrunJob (speedrun.marin.community/v1alpha1).
-- Install it as resource.customizations.health.speedrun.marin.community_SpeedrunJob in argocd-cm
-- (see the chart README). Phases come from the operator: Pending -> Provisioning (or Queued/Suspended)
-- -> Running -> Succeeded | Failed.
local hs = {}
if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the speedrun operator to accept the SpeedrunJob"
  return hs
end

local status = obj.status
local phase = status.phase
local detail = status.message or status.reason or ""

local function with_detail(text)
  if detail ~= "" then
    return text .. ": " .. detail
  end
  return text
end

if phase == "Succeeded" then
  hs.status = "Healthy"
  local results = status.results
  if results ~= nil and (results.evalBpbDisplay ~= nil or results.evalBpb ~= nil) then
    hs.message = "Succeeded: eval bpb " .. tostring(results.evalBpbDisplay or results.evalBpb)
  else
    hs.message = with_detail("Succeeded")
  end
elseif phase == "Failed" then
  hs.status = "Degraded"
  if status.reason ~= nil then
    hs.message = "Failed (" .. status.reason .. "): " .. (status.message or "")
  else
    hs.message = with_detail("Failed")
  end
elseif phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = with_detail("Suspended")
elseif phase == "Pending" or phase == "Provisioning" or phase == "Queued" or phase == "Running" then
  hs.status = "Progressing"
  local text = phase
  if phase == "Running" and status.progress ~= nil and status.progress.display ~= nil then
    text = text .. " " .. status.progress.display
  end
  hs.message = with_detail(text)
else
  hs.status = "Unknown"
  hs.message = "Unknown SpeedrunJob phase " .. tostring(phase)
end
return hs
