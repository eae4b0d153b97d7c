-- Extends a lease, but only for its current holder: the stored value
-- (token, nonce, holder) must be the caller's, so a holder whose lease
-- expired and was taken by another cannot extend the other's lease.
--
-- KEYS[1] lease      KEYS[2] fence counter
-- ARGV[1] expected value   ARGV[2] new lease TTL ms   ARGV[3] fence counter TTL ms
--
-- Returns 1 when extended, 0 when the caller no longer holds the lease.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
-- The counter must outlive the lease it fences.
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
