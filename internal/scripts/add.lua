-- add.lua: enqueue one or more jobs atomically (Queue.Add, Queue.AddBulk).
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: now in ms (0 = Redis TIME); ARGV[2]: n, the number of jobs; then 7
--   values per job: id, body (header "\n" payload), delay ms, run-at ms
--   (absolute, 0 = none), priority (0 = none), unique key ('' = none),
--   unique window ms.
-- Returns one entry per job: {1, state} when added, or {0, state, body, id}
--   when a job with that id exists, or a job with that unique key was added
--   within its window (id is that job's; state and body are '' if it no
--   longer exists). Nothing is written for a duplicate.
-- Every id and unique key is checked before anything is written, so a
-- re-run of the same call (a client retry after a timeout) adds nothing twice.
local now = now_ms(ARGV[1])
local n = tonumber(ARGV[2])
local W = 7
local out = {}
for i = 0, n - 1 do
  local b = 3 + i * W
  local id = ARGV[b]
  local body = redis.call('HGET', K.jobs, id)
  if body then
    out[i + 1] = { 0, state_of(id), body, id }
  elseif ARGV[b + 5] ~= '' then
    local u = redis.call('HGET', K.uniq, ARGV[b + 5])
    if u then
      local sep = string.find(u, '|', 1, true)
      local other = string.sub(u, sep + 1)
      if tonumber(string.sub(u, 1, sep - 1)) > now then
        out[i + 1] = { 0, state_of(other), redis.call('HGET', K.jobs, other) or '', other }
      end
    end
  end
end
for i = 0, n - 1 do
  if not out[i + 1] then
    local b = 3 + i * W
    local id = ARGV[b]
    local delay, runat, pri = tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
    redis.call('HSET', K.jobs, id, ARGV[b + 1])
    if pri > 0 then redis.call('HSET', K.pri, id, ARGV[b + 4]) end
    if ARGV[b + 5] ~= '' then
      local exp = now + tonumber(ARGV[b + 6])
      redis.call('HSET', K.uniq, ARGV[b + 5], int(exp) .. '|' .. id)
      redis.call('ZADD', K.uniqexp, exp, ARGV[b + 5])
    end
    local due = 0
    if runat > 0 then due = runat elseif delay > 0 then due = now + delay end
    if due > now then
      schedule(K.delayed, id, due)
      out[i + 1] = { 1, 'delayed' }
    else
      make_ready(id, false)
      out[i + 1] = { 1, 'waiting' }
    end
  end
end
return out
