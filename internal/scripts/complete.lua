-- complete.lua: mark jobs completed (a batch of acknowledgements), then
-- claim the next jobs for the workers that asked for one, in the same call.
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: now ms (0 = Redis TIME); ARGV[2]: jobs to claim (0 = none);
--   ARGV[3]: lease ms for them; ARGV[4]: n; ARGV[5]: the claim's nonce
--   (fetch.lua); then 5 values per job: id,
--   lease token, result ('' = none), keep count, keep age ms (count 0 and
--   age 0: remove the job at once).
-- Returns {statuses, claimed}: one status per job (1 completed, 2 already
--   acknowledged with this token (a re-run), 0 lease lost: nothing changed
--   for that job), and the claim as fetch.lua returns it (with no job if
--   none was asked for).
-- A re-run after a lost reply completes nothing twice; jobs it claimed the
-- first time stay leased to nobody until recovery re-queues them.
local now = now_ms(ARGV[1])
local want, lease_ms = tonumber(ARGV[2]), tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local nonce = ARGV[5]
local A = 6 -- first job argument
local ids = {}
for i = 0, n - 1 do ids[i + 1] = ARGV[A + i * 5] end
local runs = hmget(K.run, ids)
local out = {}
local done, gone, set_run, set_done, set_res = {}, {}, {}, {}, {}
local trims = {} -- distinct retentions of this batch: trimmed once, at the end
local seen = {}
for i = 1, n do
  local b = A + (i - 1) * 5
  local id = ids[i]
  local r = parse_run(runs[i])
  local s = lease_status(r, ARGV[b + 1])
  if s == 1 and seen[id] then s = 2 end -- the same ack twice in one batch
  out[i] = s
  if s == 1 then
    seen[id] = true
    done[#done + 1] = id
    local cnt, age = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
    local keep_n = keep_count(cnt, age)
    if keep_n == 0 then
      gone[#gone + 1] = id
    else
      r[1], r[2], r[6] = 'i', r[2] + 1, now
      set_run[#set_run + 1] = id
      set_run[#set_run + 1] = fmt_run(r)
      set_done[#set_done + 1] = now
      set_done[#set_done + 1] = id
      if ARGV[b + 2] ~= '' then
        set_res[#set_res + 1] = id
        set_res[#set_res + 1] = ARGV[b + 2]
      end
      trims[keep_n .. ':' .. age] = { keep_n, age }
    end
  end
end
if #done > 0 then call_chunked('ZREM', K.active, done) end
delete_jobs(gone)
if #set_run > 0 then
  call_chunked('HSET', K.run, set_run, 2)
  call_chunked('ZADD', K.completed, set_done, 2)
  if #set_res > 0 then call_chunked('HSET', K.res, set_res, 2) end
end
for _, t in pairs(trims) do trim(K.completed, t[1], t[2], now, BATCH + math.floor(#set_done / 2)) end
count('c', #done, now)
emit('completed', done)
-- Claiming none still reports whether the queue is paused (one HEXISTS), so
-- a worker holding jobs claimed ahead learns of a pause and hands them back.
return { out, claim(now, want, lease_ms, nonce) }
