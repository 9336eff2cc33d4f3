-- add.lua: enqueue one or more jobs atomically (Queue.Add, Queue.AddBulk).
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: now in ms (0 = Redis TIME); ARGV[2]: n, the number of jobs; then 7
--   values per job: id, body (header "\n" payload), delay ms, run-at ms
--   (absolute, 0 = none), priority (0 = none), unique key ('' = none),
--   unique window ms.
-- Returns {codes, details...}: codes has one character per job, 'w' added
--   as waiting, 'd' added as delayed, '+' added by an earlier run of this
--   very call (details: its state), '-' a duplicate (details: state, body,
--   id): a job with that id exists, or a job with that unique key was added
--   within its window (id is that job's; state and body are '' if it no
--   longer exists). Details follow in job order. Nothing is written for a
--   duplicate. (A flat reply: no table per job to build and encode.)
-- Every id and unique key is checked before anything is written, so a
-- re-run of the same call (a client retry after a timeout) adds nothing twice;
-- a job whose stored body is byte-identical to the one sent is reported as
-- added (it is this call's own first run).
local n = tonumber(ARGV[2])
local W = 7
local ids = {}
local timed = false -- any delay, run-at time or unique key: the clock is needed
for i = 0, n - 1 do
  local b = 3 + i * W
  ids[i + 1] = ARGV[b]
  if ARGV[b + 2] ~= '0' or ARGV[b + 3] ~= '0' or ARGV[b + 5] ~= '' then timed = true end
end
local now = 0
if timed then now = now_ms(ARGV[1]) end
local bodies = hmget(K.jobs, ids)
local out = {}
local uk = {}
for i = 1, n do
  if bodies[i] and bodies[i] == ARGV[3 + (i - 1) * W + 1] then
    -- The very body this call sends (its header carries the add's timestamp):
    -- a re-run of this add after a lost reply. Report it as added.
    out[i] = { '+', state_of(ids[i]) }
  elseif bodies[i] then
    out[i] = { '-', state_of(ids[i]), bodies[i], ids[i] }
  elseif ARGV[3 + (i - 1) * W + 5] ~= '' then
    uk[#uk + 1] = i
  end
end
if #uk > 0 then
  local names = {}
  for j, i in ipairs(uk) do names[j] = ARGV[3 + (i - 1) * W + 5] end
  local found = hmget(K.uniq, names)
  for j, i in ipairs(uk) do
    local u = found[j]
    if u then
      local sep = string.find(u, '|', 1, true)
      if tonumber(string.sub(u, 1, sep - 1)) > now then
        local other = string.sub(u, sep + 1)
        out[i] = { '-', state_of(other), redis.call('HGET', K.jobs, other) or '', other }
      end
    end
  end
end
local set_jobs, set_pri, set_uniq, set_uexp = {}, {}, {}, {}
local ready, ready_pri, later, later_due = {}, {}, {}, {}
for i = 1, n do
  if not out[i] then
    local b = 3 + (i - 1) * W
    local id = ids[i]
    set_jobs[#set_jobs + 1] = id
    set_jobs[#set_jobs + 1] = ARGV[b + 1]
    if tonumber(ARGV[b + 4]) > 0 then
      set_pri[#set_pri + 1] = id
      set_pri[#set_pri + 1] = ARGV[b + 4]
    end
    if ARGV[b + 5] ~= '' then
      local exp = now + tonumber(ARGV[b + 6])
      set_uniq[#set_uniq + 1] = ARGV[b + 5]
      set_uniq[#set_uniq + 1] = int(exp) .. '|' .. id
      set_uexp[#set_uexp + 1] = exp
      set_uexp[#set_uexp + 1] = ARGV[b + 5]
    end
    local delay, runat = tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
    local due = 0
    if runat > 0 then due = runat elseif delay > 0 then due = now + delay end
    if due > now then
      later[#later + 1] = id
      later_due[#later_due + 1] = due
      out[i] = 'd'
    else
      ready[#ready + 1] = id
      ready_pri[#ready] = tonumber(ARGV[b + 4]) > 0 and ARGV[b + 4]
      out[i] = 'w'
    end
  end
end
if #set_jobs > 0 then call_chunked('HSET', K.jobs, set_jobs, 2) end
if #set_pri > 0 then call_chunked('HSET', K.pri, set_pri, 2) end
if #set_uniq > 0 then
  call_chunked('HSET', K.uniq, set_uniq, 2)
  call_chunked('ZADD', K.uniqexp, set_uexp, 2)
end
make_ready(ready, false, ready_pri)
schedule(K.delayed, later, later_due)
local added = {}
for i = 1, #set_jobs, 2 do added[#added + 1] = set_jobs[i] end
emit('added', added)
local codes, reply = {}, { '' }
for i = 1, n do
  local o = out[i]
  if type(o) == 'string' then
    codes[i] = o
  else
    codes[i] = o[1]
    for k = 2, #o do reply[#reply + 1] = o[k] end
  end
end
reply[1] = table.concat(codes)
return reply
