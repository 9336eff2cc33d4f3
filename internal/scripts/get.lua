-- get.lua: read one job (Queue.Job). Read-only.
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: id; ARGV[2]: 1 = include the job's log.
-- Returns {} when there is no such job, else {body, state, score, attempts,
--   stalls, started ms, finished ms, result, error JSON, progress JSON, log},
--   with false for absent values; score is the lease deadline (active), due
--   time (delayed, failed) or finish time (completed, dead).
local id = ARGV[1]
local body = redis.call('HGET', K.jobs, id)
if not body then return {} end
local state = state_of(id)
local score = false
local sets = { active = K.active, delayed = K.delayed, failed = K.failed, completed = K.completed, dead = K.dead }
if sets[state] then score = redis.call('ZSCORE', sets[state], id) end
local r = parse_run(redis.call('HGET', K.run, id))
return { body, state, score, r[2], r[3], r[5], r[6],
  redis.call('HGET', K.res, id), redis.call('HGET', K.err, id), redis.call('HGET', K.prog, id),
  ARGV[2] == '1' and redis.call('HGET', K.logs, id) }
