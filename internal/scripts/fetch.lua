-- fetch.lua: claim up to max ready jobs, each with a fresh lease.
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: now ms (0 = Redis TIME); ARGV[2]: max jobs; ARGV[3]: lease ms;
--   ARGV[4]: a random nonce of this call, part of each lease token.
-- Returns {paused (0|1), now, next due (-1 = none), then per job 5 values:
--   id, lease token, attempts made, stalls, body}.
-- Jobs without a priority go first (FIFO), then prioritized ones (lowest
-- priority number first). Tokens come from a per-queue counter and the
-- nonce, so every delivery of a job has a token no other delivery had, even
-- after a failover rolled the counter back. If ready jobs remain,
-- the ready marker is set again so another idle worker wakes for them.
local now = now_ms(ARGV[1])
return claim(now, tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])
