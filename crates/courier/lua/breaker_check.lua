-- Reads a circuit breaker's state, moving it from open to half-open once its
-- cool-down has passed. With ARGV[1] = 'allow' it also decides whether one
-- call may go ahead: always when closed, never when open or paused, and in
-- half-open only while fewer than ARGV[2] probe permits are outstanding, so
-- every worker together sends at most that many probes. A permit expires
-- after ARGV[3] ms, so a prober that crashed does not wedge the breaker.
--
-- KEYS[1] state hash   KEYS[2] probe permits (sorted set: permit -> expiry ms)
-- ARGV[1] 'state' or 'allow'   ARGV[2] half-open probes
-- ARGV[3] permit lifetime, ms   ARGV[4] state TTL, ms
--
-- A missing state hash is a closed breaker with no calls counted.
-- Returns {state, open-until ms (0 unless open), allowed (1 or 0)}.
local now = courier_now_ms()
local state, open_until = unpack(redis.call('HMGET', KEYS[1], 'state', 'until'))
state = state or 'closed'
open_until = tonumber(open_until) or 0

-- Same rule as breaker_record.lua: the cool-down is over, so let probes find
-- out whether the dependency is back.
if state == 'open' and now >= open_until then
  state = 'half_open'
  open_until = 0
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probes_ok', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end

local allowed = 0
if ARGV[1] == 'allow' then
  if state == 'closed' then
    allowed = 1
  elseif state == 'half_open' then
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
    if redis.call('ZCARD', KEYS[2]) < tonumber(ARGV[2]) then
      local permit = redis.call('HINCRBY', KEYS[1], 'permit_seq', 1)
      redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), permit)
      redis.call('PEXPIRE', KEYS[2], ARGV[3])
      redis.call('PEXPIRE', KEYS[1], ARGV[4])
      allowed = 1
    end
  end
end
return {state, open_until, allowed}
