-- Releases a lease, but only for its current holder: a holder whose lease
-- expired and was taken by another must not delete the other's lease.
--
-- KEYS[1] lease
-- ARGV[1] expected value (token, nonce, holder)
--
-- Returns 1 when released, 0 when the caller no longer held the lease.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
