-- The check a fenced resource makes before a write: accept a fencing token
-- only if no newer one was accepted before, and remember it.
--
-- KEYS[1] guard (highest token accepted for one resource)
-- KEYS[2] fence counter of the lock that hands the tokens out
-- ARGV[1] token    ARGV[2] TTL ms of the guard and the counter
--
-- Returns 1 when the write may go ahead (the token is the newest seen, or
-- equal to it: the same holder writing again), 0 when it must be refused.
local token = tonumber(ARGV[1])
-- A token above the counter was never handed out by it: it dates from
-- before a counter reset (Redis lost its data, or the counter expired), and
-- its holder lost the lease with that reset.
local issued = tonumber(redis.call('GET', KEYS[2]) or '0')
if token > issued then
  return 0
end
local highest = tonumber(redis.call('GET', KEYS[1]) or '0')
if token < highest then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
-- The counter gets at least the guard's TTL, so it never expires (and
-- restarts from 1) while a guard still remembers a higher token, which
-- would then refuse every new holder.
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
