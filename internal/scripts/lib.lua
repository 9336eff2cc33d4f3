-- lib.lua: helpers for hopper's scripts; never run on its own.
--
-- Each script is linked at load time (scripts.go): it gets a K table naming
-- only the queue keys it (and the helpers it uses) reference, as KEYS[1..n]
-- in internal/keys order, and only the helper blocks below it uses. Blocks
-- are separated by blank lines. All keys of one queue share one Cluster hash
-- slot; no script builds a key name: it only selects among KEYS.
--
-- Cost model: each script call costs a few us of setup, and each redis.call
-- ~1-2 us of Lua bridging on top of the command itself, so scripts work on
-- batches with variadic commands (one HMGET/HSET/ZADD/HDEL for all the jobs
-- of a call), not one call per job.

-- Per-job hashes, keyed by job id.
local COLUMNS = { K.jobs, K.pri, K.run, K.res, K.err, K.prog, K.logs }

-- Most jobs a trim step removes per call (beyond what the call added).
local BATCH = 100

-- Most values passed to one variadic command (Lua's unpack limit).
local CHUNK = 1000

-- The event stream's approximate length cap, read from the queue's meta hash
-- once per script call ('events' field; absent = EVENTS.default, 0 = off).
local EVENTS = { default = 10000 }

-- emit appends one entry to the event stream for a batch of jobs that had
-- the same event: t = kind, j = the ids joined by spaces (ids never contain
-- spaces), d = per-job data as a JSON array of strings, if given. One XADD
-- per script call, not per job; readers split the entry into one event per
-- job (Queue.Events).
local function emit(kind, ids, data)
  if #ids == 0 then return end
  if EVENTS.max == nil then
    EVENTS.max = tonumber(redis.call('HGET', K.meta, 'events')) or EVENTS.default
  end
  if EVENTS.max <= 0 then return end
  if data then
    redis.call('XADD', K.events, 'MAXLEN', '~', EVENTS.max, '*', 't', kind, 'j', table.concat(ids, ' '),
      'd', cjson.encode(data))
  else
    redis.call('XADD', K.events, 'MAXLEN', '~', EVENTS.max, '*', 't', kind, 'j', table.concat(ids, ' '))
  end
end

-- drain_when_full lets the rest of the calling script write when Redis is
-- out of memory (maxmemory with noeviction). Redis refuses a memory-growing
-- command (ZADD, HSET, XADD...) in a script only while that script has
-- written nothing, and a removal counts as a write even when it removes
-- nothing. Scripts that move existing jobs along (heartbeats, the
-- maintenance pass) call it first, so a full Redis still drains its jobs;
-- scripts that create jobs (add, schedule ticks) do not, and fail with OOM.
-- (ack, retry, dead, release, recover and claim already begin with a
-- removal: ZREM from active, RPOP from wait.)
local function drain_when_full() redis.call('ZREM', K.active, '') end

-- now_ms returns the injected time (tests) or Redis' own clock, so due times
-- and lease deadlines are judged on one clock whatever the workers' clocks say.
local function now_ms(arg)
  local n = tonumber(arg)
  if n ~= nil and n > 0 then return n end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function int(n) return string.format('%d', n) end

-- call_chunked runs cmd key v1 v2 ... over list in chunks of whole steps
-- (2 for field-value pairs) and returns the last reply (for LPUSH: the
-- final length of the list).
local function call_chunked(cmd, key, list, step)
  step = step or 1
  local r = 0
  local n = #list
  local size = CHUNK - (CHUNK % step)
  for i = 1, n, size do
    r = redis.call(cmd, key, unpack(list, i, math.min(i + size - 1, n)))
  end
  return r
end

-- hmget returns the values of field ids of hash key (false where absent).
local function hmget(key, ids)
  local out = {}
  for i = 1, #ids, CHUNK do
    local part = redis.call('HMGET', key, unpack(ids, i, math.min(i + CHUNK - 1, #ids)))
    for _, v in ipairs(part) do out[#out + 1] = v end
  end
  return out
end

-- Run state of a job, stored once it is first fetched:
-- {state ('a' leased, 'i' not), attempts made, stalls, token, started ms, finished ms}.
local function parse_run(s)
  if s then
    local st, a, sl, t, p, f = string.match(s, '^(%a)|(%d+)|(%d+)|([^|]*)|(%d+)|(%d+)$')
    if st then return { st, tonumber(a), tonumber(sl), t, tonumber(p), tonumber(f) } end
  end
  return { 'i', 0, 0, '', 0, 0 }
end

local function fmt_run(r)
  return r[1] .. '|' .. int(r[2]) .. '|' .. int(r[3]) .. '|' .. r[4] .. '|' .. int(r[5]) .. '|' .. int(r[6])
end

-- lease_status: 1 = tok holds the job's active lease; 2 = tok's attempt has
-- already been acknowledged (a re-run of the same call, e.g. a client retry);
-- 0 = the lease is lost (expired and recovered, released, or removed).
local function lease_status(r, tok)
  if r[4] ~= tok or tok == '' then return 0 end
  if r[1] == 'a' then return 1 end
  return 2
end

-- make_ready puts ids where workers fetch from: the prio zset for jobs with
-- a priority, else the wait list (at the fetch end when front is true). It
-- sets the ready marker when a structure was empty, which wakes an idle worker.
-- pris, if the caller knows them, lists the jobs' priorities (false = none).
local function make_ready(ids, front, pris)
  if #ids == 0 then return end
  pris = pris or hmget(K.pri, ids)
  local plain, prio = {}, {}
  for i, id in ipairs(ids) do
    if pris[i] then prio[#prio + 1] = { id, tonumber(pris[i]) } else plain[#plain + 1] = id end
  end
  local wake = false
  if #plain > 0 then
    local n = call_chunked(front and 'RPUSH' or 'LPUSH', K.wait, plain)
    wake = n == #plain
  end
  if #prio > 0 then
    local seq = 0
    if not front then seq = redis.call('HINCRBY', K.meta, 'seq', #prio) - #prio end
    local args = {}
    for _, p in ipairs(prio) do
      if not front then seq = seq + 1 end
      args[#args + 1] = p[2] * 4294967296 + (seq % 4294967296)
      args[#args + 1] = p[1]
    end
    call_chunked('ZADD', K.prio, args, 2)
    wake = wake or redis.call('ZCARD', K.prio) == #prio
  end
  if wake then redis.call('ZADD', K.marker, 0, '0') end
end

-- schedule puts ids in a time-ordered set (delayed or failed) at due (a
-- number, or a list parallel to ids) and lowers the due-time marker, so a
-- blocked worker learns of the earliest due time.
local function schedule(set, ids, due)
  if #ids == 0 then return end
  local args, min = {}, nil
  for i, id in ipairs(ids) do
    local d = due
    if type(due) == 'table' then d = due[i] end
    args[#args + 1] = d
    args[#args + 1] = id
    if not min or d < min then min = d end
  end
  call_chunked('ZADD', set, args, 2)
  redis.call('ZADD', K.marker, 'LT', min, 'd')
end

-- next_due returns the earliest due time of delayed and failed jobs, or -1.
-- (Schedule ticks are read by the scheduler pass, which not every worker runs.)
local function next_due()
  local d = -1
  for _, set in ipairs({ K.delayed, K.failed }) do
    local a = redis.call('ZRANGE', set, 0, 0, 'WITHSCORES')
    if a[2] and (d < 0 or tonumber(a[2]) < d) then d = tonumber(a[2]) end
  end
  return d
end

-- claim hands up to max ready jobs to a worker, each with a fresh lease of
-- lease_ms, and returns {paused (0|1), now, next due (-1 = none; only when
-- fewer than max were claimed), then per job: id, token, attempts, stalls,
-- body}. Jobs without a priority go first (FIFO), then prioritized ones
-- (lowest number first). A token is a per-queue counter and the caller's
-- random nonce for this call ("<n>-<nonce>"): the counter makes every
-- delivery's token unique, and the nonce keeps it unique when the counter
-- rolls back (a failover to a replica that missed the latest claims). If
-- ready jobs remain after a full claim, the ready marker is set again so
-- another idle worker wakes.
local function claim(now, max, lease_ms, nonce)
  local out = { 0, now, -1 }
  if redis.call('HEXISTS', K.meta, 'paused') == 1 then
    out[1] = 1
    out[3] = next_due()
    return out
  end
  local ids = {}
  if max > 0 then
    local got = redis.call('RPOP', K.wait, max)
    if got then ids = got end
    if #ids < max then
      local p = redis.call('ZPOPMIN', K.prio, max - #ids)
      for i = 1, #p, 2 do ids[#ids + 1] = p[i] end
    end
  end
  if #ids > 0 then
    local bodies = hmget(K.jobs, ids)
    local runs = hmget(K.run, ids)
    local tok = redis.call('HINCRBY', K.meta, 'lease', #ids) - #ids
    local deadline = now + lease_ms
    local set_run, set_active, ev_ids, ev_att = {}, {}, {}, {}
    for i, id in ipairs(ids) do
      tok = tok + 1
      if bodies[i] then
        ev_ids[#ev_ids + 1] = id
        local r = parse_run(runs[i])
        r[1], r[4], r[5] = 'a', int(tok) .. '-' .. nonce, now
        set_run[#set_run + 1] = id
        set_run[#set_run + 1] = fmt_run(r)
        set_active[#set_active + 1] = deadline
        set_active[#set_active + 1] = id
        ev_att[#ev_att + 1] = int(r[2] + 1)
        local n = #out
        out[n + 1] = id
        out[n + 2] = r[4]
        out[n + 3] = r[2]
        out[n + 4] = r[3]
        out[n + 5] = bodies[i]
      end
    end
    if #set_run > 0 then
      call_chunked('HSET', K.run, set_run, 2)
      call_chunked('ZADD', K.active, set_active, 2)
      emit('active', ev_ids, ev_att)
    end
    if #ids == max and (redis.call('LLEN', K.wait) > 0 or redis.call('ZCARD', K.prio) > 0) then
      redis.call('ZADD', K.marker, 0, '0')
    end
  end
  if #ids < max then out[3] = next_due() end
  return out
end

-- state_of derives a job's state in O(1): the zset it is in, else waiting.
local function state_of(id)
  if redis.call('ZSCORE', K.active, id) then return 'active' end
  if redis.call('ZSCORE', K.delayed, id) then return 'delayed' end
  if redis.call('ZSCORE', K.failed, id) then return 'failed' end
  if redis.call('ZSCORE', K.completed, id) then return 'completed' end
  if redis.call('ZSCORE', K.dead, id) then return 'dead' end
  if redis.call('HEXISTS', K.jobs, id) == 1 then return 'waiting' end
  return ''
end

-- delete_jobs removes the data of ids from every column (one HDEL per
-- column); the caller removes them from their set.
local function delete_jobs(ids)
  if #ids == 0 then return end
  for _, c in ipairs(COLUMNS) do call_chunked('HDEL', c, ids) end
end

-- keep_count converts a retention (count, age) to the count bound trim takes:
-- -1 = no count bound; 0 with no age = remove at once.
local function keep_count(count, age)
  if count > 0 then return count end
  if age > 0 then return -1 end
  return 0
end

-- trim removes the oldest members of a terminal set (completed or dead) past
-- keep_n members (once the excess reaches 10% of keep_n, at most BATCH) or
-- older than keep_age ms, at most limit (default BATCH) of each per call. A
-- caller that added k members passes BATCH + k, so the set cannot outgrow
-- its bound plus that slack.
local function trim(set, keep_n, keep_age, now, limit)
  limit = limit or BATCH
  if keep_n >= 0 then
    local over = redis.call('ZCARD', set) - keep_n
    -- Trim in chunks: a set may exceed its bound by 10% (at most 100) before
    -- a trim, so that most calls skip the trim's ~10 commands.
    if over > math.min(math.floor(keep_n / 10), BATCH) then
      if over > limit then over = limit end
      delete_jobs(redis.call('ZRANGE', set, 0, over - 1))
      redis.call('ZREMRANGEBYRANK', set, 0, over - 1)
    end
  end
  if keep_age > 0 then
    local ids = redis.call('ZRANGEBYSCORE', set, '-inf', now - keep_age, 'LIMIT', 0, limit)
    if #ids > 0 then
      delete_jobs(ids)
      call_chunked('ZREM', set, ids)
    end
  end
end

-- to_dead moves jobs that are in no set into the dead-letter set; errs is
-- the error JSON per job ('' = keep the stored one).
local function to_dead(ids, errs, now, count, age)
  if #ids == 0 then return end
  emit('dead', ids, errs)
  local keep_n = keep_count(count, age)
  if keep_n == 0 then
    delete_jobs(ids)
    return
  end
  local z, e = {}, {}
  for i, id in ipairs(ids) do
    z[#z + 1] = now
    z[#z + 1] = id
    if errs[i] ~= '' then
      e[#e + 1] = id
      e[#e + 1] = errs[i]
    end
  end
  call_chunked('ZADD', K.dead, z, 2)
  if #e > 0 then call_chunked('HSET', K.err, e, 2) end
  trim(K.dead, keep_n, age, now, BATCH + #ids)
end

-- count adds n to this minute's counter kind ('c' completed, 'f' failed) in
-- a ring of 60 one-minute slots: bounded whatever the traffic.
local function count(kind, n, now)
  if n == 0 then return end
  local minute = math.floor(now / 60000)
  local slot = minute % 60
  if redis.call('HGET', K.stats, 'm' .. slot) ~= int(minute) then
    redis.call('HSET', K.stats, 'm' .. slot, int(minute), 'c' .. slot, 0, 'f' .. slot, 0)
  end
  redis.call('HINCRBY', K.stats, kind .. slot, n)
end

-- header decodes the JSON header of a stored job body (see internal/wire).
local function header(body)
  local nl = string.find(body, '\n', 1, true)
  if not nl then return {} end
  local ok, h = pcall(cjson.decode, string.sub(body, 1, nl - 1))
  if ok and type(h) == 'table' then return h end
  return {}
end
