-- Takes a lease lock if nobody holds it, and hands out the next fencing
-- token of the lock's counter.
--
-- KEYS[1] lease          KEYS[2] fence counter
-- ARGV[1] lease TTL ms   ARGV[2] fence counter TTL ms
-- ARGV[3] nonce          ARGV[4] holder name
--
-- Returns {token, 0} when taken, or {0, remaining ms of the current lease}
-- when someone else holds it (-1: a lease without TTL, written by hand).
local held = redis.call('PTTL', KEYS[1])
if held ~= -2 then
  return {0, held}
end
-- The counter is only ever incremented, and it outlives every lease (its
-- TTL is refreshed on each acquire, extend and guarded write), so a token
-- is never handed out twice while anything could still compare it.
local token = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
-- The value carries a random nonce besides the token, so that even after a
-- counter reset (Redis lost its data) a stale holder whose token was handed
-- out again cannot extend or release the new holder's lease.
local value = string.format('%d', token) .. ':' .. ARGV[3] .. ':' .. ARGV[4]
-- NX cannot fail here (the script runs alone and the key was just found
-- absent); it stays so that this write can never replace another holder.
if not redis.call('SET', KEYS[1], value, 'NX', 'PX', ARGV[1]) then
  return {0, redis.call('PTTL', KEYS[1])}
end
return {token, 0}
