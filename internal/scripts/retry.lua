-- retry.lua: failed attempts that will be retried, and snoozes, for a batch
-- of jobs (the worker batches them like completions).
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: now ms (0 = Redis TIME); ARGV[2]: n; then 5 values per job: id,
--   lease token, delay ms before the job is ready again, error JSON,
--   1 = a failed attempt (attempts made +1, state failed) or 0 = a snooze
--   (attempt not spent, state delayed).
-- Returns one status per job: 1 done, 2 already done with this token (a
-- re-run), 0 lease lost (nothing changed for that job).
local now = now_ms(ARGV[1])
local n = tonumber(ARGV[2])
local A = 3 -- first job argument
local ids = {}
for i = 0, n - 1 do ids[i + 1] = ARGV[A + i * 5] end
local runs = hmget(K.run, ids)
local out = {}
local seen = {}
local moved, set_run, set_err = {}, {}, {}
local failed, failed_err, snoozed, snoozed_err = {}, {}, {}, {}
-- by destination: jobs due later (per set, with due times), jobs ready now
local later = { [K.failed] = { ids = {}, due = {} }, [K.delayed] = { ids = {}, due = {} } }
local ready_failed, ready_snoozed = {}, {}
for i = 1, n do
  local b = A + (i - 1) * 5
  local id = ids[i]
  local r = parse_run(runs[i])
  local s = lease_status(r, ARGV[b + 1])
  if s == 1 and seen[id] then s = 2 end -- the same job twice in one batch
  out[i] = s
  if s == 1 then
    seen[id] = true
    moved[#moved + 1] = id
    r[1] = 'i'
    local spend = ARGV[b + 4] == '1'
    local errjson = ARGV[b + 3]
    local set = K.delayed
    if spend then
      r[2] = r[2] + 1
      set = K.failed
      failed[#failed + 1] = id
      failed_err[#failed_err + 1] = errjson
    else
      snoozed[#snoozed + 1] = id
      snoozed_err[#snoozed_err + 1] = errjson
    end
    set_run[#set_run + 1] = id
    set_run[#set_run + 1] = fmt_run(r)
    if errjson ~= '' then
      set_err[#set_err + 1] = id
      set_err[#set_err + 1] = errjson
    end
    local delay = tonumber(ARGV[b + 2])
    if delay > 0 then
      local l = later[set]
      l.ids[#l.ids + 1] = id
      l.due[#l.due + 1] = now + delay
    elseif spend then
      ready_failed[#ready_failed + 1] = id
    else
      ready_snoozed[#ready_snoozed + 1] = id
    end
  end
end
if #moved > 0 then
  call_chunked('ZREM', K.active, moved)
  call_chunked('HSET', K.run, set_run, 2)
  if #set_err > 0 then call_chunked('HSET', K.err, set_err, 2) end
end
count('f', #failed, now)
emit('failed', failed, failed_err)
emit('delayed', snoozed, snoozed_err)
for _, set in ipairs({ K.failed, K.delayed }) do
  schedule(set, later[set].ids, later[set].due)
end
make_ready(ready_failed, false)
emit('retrying', ready_failed)
make_ready(ready_snoozed, false)
emit('waiting', ready_snoozed)
return out
