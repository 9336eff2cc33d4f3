-- remove.lua: delete one job and all its data.
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: id; ARGV[2]: 1 = force (remove even if active);
--   ARGV[3]: required state ('' = any).
-- Returns {code, state}: 1 removed, 0 no such job, -1 refused because the
--   job is active and force was not set, -2 refused because the job is not
--   in the required state.
-- Removing a waiting job is LREM on the wait list: O(length of the list).
local id = ARGV[1]
local state = state_of(id)
if state == '' then return { 0, '' } end
if ARGV[3] ~= '' and state ~= ARGV[3] then return { -2, state } end
if state == 'active' and ARGV[2] ~= '1' then return { -1, state } end
if state == 'waiting' then
  if redis.call('LREM', K.wait, 1, id) == 0 then redis.call('ZREM', K.prio, id) end
else
  local sets = { active = K.active, delayed = K.delayed, failed = K.failed, completed = K.completed, dead = K.dead }
  redis.call('ZREM', sets[state], id)
end
delete_jobs({ id })
emit('removed', { id })
return { 1, state }
