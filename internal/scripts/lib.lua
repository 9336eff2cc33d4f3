-- lib.lua: helpers prepended to every hopper script; never run on its own.
--
-- Every script receives the same KEYS, all of one queue and so all in one
-- Cluster hash slot, in the order of internal/keys (keys.Jobs .. keys.Prog).
-- No script builds a key name: it only selects among KEYS.
local K = {
  jobs = KEYS[1], wait = KEYS[2], prio = KEYS[3], active = KEYS[4],
  delayed = KEYS[5], failed = KEYS[6], completed = KEYS[7], dead = KEYS[8],
  marker = KEYS[9], meta = KEYS[10], pri = KEYS[11], att = KEYS[12],
  stall = KEYS[13], lease = KEYS[14], pat = KEYS[15], fin = KEYS[16],
  res = KEYS[17], err = KEYS[18], prog = KEYS[19], sched = KEYS[20],
  schednext = KEYS[21], schedrun = KEYS[22], uniq = KEYS[23], uniqexp = KEYS[24],
  stats = KEYS[25], workers = KEYS[26], workerinfo = KEYS[27],
}
-- Per-job hashes, keyed by job id.
local COLUMNS = { K.jobs, K.pri, K.att, K.stall, K.lease, K.pat, K.fin, K.res, K.err, K.prog }
local BATCH = 100 -- most jobs any trim step removes in one call

-- now_ms returns the injected time (tests) or Redis' own clock, so due times
-- and lease deadlines are judged on one clock whatever the workers' clocks say.
local function now_ms(arg)
  local n = tonumber(arg)
  if n ~= nil and n > 0 then return n end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function int(n) return string.format('%d', n) end

-- make_ready puts id where workers fetch from: the prio zset if the job has a
-- priority, else the wait list (at the fetch end when front is true). It sets
-- the ready marker when the structure was empty, which wakes one idle worker.
local function make_ready(id, front)
  local p = redis.call('HGET', K.pri, id)
  local n
  if p then
    local seq = 0
    if not front then seq = redis.call('HINCRBY', K.meta, 'seq', 1) % 4294967296 end
    redis.call('ZADD', K.prio, tonumber(p) * 4294967296 + seq, id)
    n = redis.call('ZCARD', K.prio)
  elseif front then
    n = redis.call('RPUSH', K.wait, id)
  else
    n = redis.call('LPUSH', K.wait, id)
  end
  if n == 1 then redis.call('ZADD', K.marker, 0, '0') end
end

-- schedule puts id in a time-ordered set (delayed or failed) and lowers the
-- due-time marker, so a blocked worker learns of the earlier due time.
local function schedule(set, id, due)
  redis.call('ZADD', set, due, id)
  redis.call('ZADD', K.marker, 'LT', due, 'd')
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

-- delete_columns removes a job's data; the caller removes it from its set.
local function delete_columns(id)
  for _, c in ipairs(COLUMNS) do redis.call('HDEL', c, id) end
end

-- lease_status: 1 = tok holds the job's active lease; 2 = tok's attempt has
-- already been acknowledged (a re-run of the same call, e.g. a client retry);
-- 0 = the lease is lost (expired and recovered, released, or removed).
local function lease_status(id, tok)
  if redis.call('HGET', K.lease, id) ~= tok then return 0 end
  if redis.call('ZSCORE', K.active, id) then return 1 end
  return 2
end

-- keep_count converts a retention (count, age) to the count bound trim takes:
-- -1 = no count bound; 0 with no age = remove at once.
local function keep_count(count, age)
  if count > 0 then return count end
  if age > 0 then return -1 end
  return 0
end

-- trim removes the oldest members of a terminal set (completed or dead) past
-- keep_n members or older than keep_age ms, at most limit (default BATCH) of
-- each per call. A caller that added k members passes BATCH + k, so the set
-- cannot outgrow its bound.
local function trim(set, keep_n, keep_age, now, limit)
  limit = limit or BATCH
  if keep_n >= 0 then
    local over = redis.call('ZCARD', set) - keep_n
    if over > 0 then
      if over > limit then over = limit end
      local ids = redis.call('ZRANGE', set, 0, over - 1)
      for _, id in ipairs(ids) do delete_columns(id) end
      redis.call('ZREMRANGEBYRANK', set, 0, over - 1)
    end
  end
  if keep_age > 0 then
    local ids = redis.call('ZRANGEBYSCORE', set, '-inf', now - keep_age, 'LIMIT', 0, limit)
    if #ids > 0 then
      for _, id in ipairs(ids) do delete_columns(id) end
      redis.call('ZREM', set, unpack(ids))
    end
  end
end

-- to_dead moves a job that is in no set into the dead-letter set.
local function to_dead(id, now, errjson, count, age)
  local keep_n = keep_count(count, age)
  if keep_n == 0 then
    delete_columns(id)
    return
  end
  redis.call('ZADD', K.dead, now, id)
  redis.call('HSET', K.fin, id, int(now))
  if errjson ~= '' then redis.call('HSET', K.err, id, errjson) end
  trim(K.dead, keep_n, age, now)
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
