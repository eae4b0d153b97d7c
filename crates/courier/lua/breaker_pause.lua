-- Pauses a circuit breaker by hand (`courier pause <channel>` for a
-- channel's breaker): whatever its state, it becomes paused, with counts and
-- probe permits dropped, and stays paused until it is resumed. The TTL is
-- long (see `PAUSE_TTL` in breaker.rs) so a pause outlives any incident yet
-- a forgotten one on a removed channel is still cleaned up.
--
-- KEYS[1] state hash   KEYS[2] probe permits
-- ARGV[1] pause TTL, ms
--
-- Returns 'paused'.
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'state', 'paused', 'since', courier_now_ms())
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 'paused'
