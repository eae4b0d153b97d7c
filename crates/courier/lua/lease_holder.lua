-- Reads who holds a lease and for how long, in one step so the two answers
-- describe the same lease.
--
-- KEYS[1] lease
--
-- Returns {value, remaining ms (-1: no TTL)}, or nil when nobody holds it.
local value = redis.call('GET', KEYS[1])
if not value then
  return false
end
return {value, redis.call('PTTL', KEYS[1])}
