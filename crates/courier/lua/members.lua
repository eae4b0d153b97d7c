-- Keeps a consumer group's membership for partition assignment: a member
-- joins (or renews) with the server's time, or leaves; members silent for
-- longer than ARGV[2] ms are dropped.
--
-- KEYS[1] members (sorted set: name → last renewal, ms)
-- ARGV[1] member name   ARGV[2] expiry, ms   ARGV[3] '1' join or renew, '0' leave
--
-- Returns the live members.
local now = courier_now_ms()
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 10)
return redis.call('ZRANGE', KEYS[1], 0, -1)
