-- Argo CD health check for kubetune's FinetuneJob and EvalJob (kubetune.io/v1alpha1).
-- Register it for both kinds under resource.customizations.health.<group>_<kind> in the
-- argocd-cm ConfigMap (docs/argocd-health.md). Argo CD passes the live object as `obj`.
--
--   no status yet, Pending, Running          -> Progressing
--   Succeeded                                 -> Healthy (an EvalJob whose Passed
--                                                condition is False: Degraded)
--   Failed, or Validated=False (invalid spec) -> Degraded
--   Suspended                                 -> Suspended

local hs = {}

local function condition(conditions, type)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function text(value, default)
  if value == nil or value == "" then
    return default
  end
  return value
end

local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the kubetune operator to report status"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the kubetune operator to observe generation " .. generation
  return hs
end

local conditions = status.conditions
local phase = status.phase

if phase == "Succeeded" then
  local passed = condition(conditions, "Passed")
  if obj.kind == "EvalJob" and passed ~= nil and passed.status == "False" then
    hs.status = "Degraded"
    hs.message = text(passed.message, "Evaluation thresholds not met (" .. text(passed.reason, "Passed=False") .. ")")
    return hs
  end
  hs.status = "Healthy"
  hs.message = text(condition(conditions, "Succeeded") and condition(conditions, "Succeeded").message, phase)
  return hs
end

if phase == "Failed" then
  local failed = condition(conditions, "Failed")
  local message = status.failure and status.failure.message
  if message == nil and failed ~= nil then
    message = failed.message
  end
  local reason = (status.failure and status.failure.reason) or (failed and failed.reason)
  hs.status = "Degraded"
  if reason ~= nil then
    hs.message = reason .. ": " .. text(message, "failed")
  else
    hs.message = text(message, "Failed")
  end
  return hs
end

if phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = text(condition(conditions, "Suspended") and condition(conditions, "Suspended").message,
    "Suspended: set spec.suspend to false to resume")
  return hs
end

local validated = condition(conditions, "Validated")
if validated ~= nil and validated.status == "False" then
  hs.status = "Degraded"
  hs.message = text(validated.message, "Invalid spec (" .. text(validated.reason, "InvalidSpec") .. ")")
  return hs
end

if phase == "Running" or phase == "Pending" then
  hs.status = "Progressing"
  local percent = status.progress and status.progress.percent
  if phase == "Running" and percent ~= nil then
    hs.message = "Running: " .. percent .. "% done"
  else
    hs.message = phase
  end
  return hs
end

hs.status = "Unknown"
hs.message = "Unknown phase " .. tostring(phase)
return hs
