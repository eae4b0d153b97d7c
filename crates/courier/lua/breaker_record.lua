-- Records the outcome of one call through a circuit breaker and applies the
-- transition it causes, so concurrent workers never lose a count or open the
-- breaker twice.
--
-- Closed: the call is counted in a sliding window of ARGV[5] ms, estimated
-- from two fixed buckets (the current one, and the previous one weighted by
-- how much of it still overlaps the window), so memory stays constant however
-- busy the breaker is. A failure opens the breaker when the estimated failures
-- reach ARGV[2], or when the estimated calls reach ARGV[3] and the failure
-- ratio reaches ARGV[4]. The first bucket starts at the first call, not at a
-- clock boundary.
-- Open: once the cool-down has passed it becomes half-open first (the same
-- rule as breaker_check.lua); before that, results are ignored: they belong
-- to calls started before it opened.
-- Half-open: a failure reopens it for a new cool-down. A success counts only
-- if a probe permit is outstanding (it uses one up): a late success of a call
-- admitted before the breaker opened proves nothing. ARGV[7] counted
-- successes close it, with every count reset.
-- Paused: nothing is counted until it is resumed.
--
-- KEYS[1] state hash   KEYS[2] probe permits (sorted set: permit -> expiry ms)
-- ARGV[1] '1' success or '0' failure
-- ARGV[2] failure threshold (0: no count rule)   ARGV[3] min calls
-- ARGV[4] failure rate (0: no rate rule)   ARGV[5] window, ms
-- ARGV[6] cool-down, ms   ARGV[7] half-open probes   ARGV[8] state TTL, ms
--
-- A missing state hash is a closed breaker with no calls counted.
-- Returns {state, open-until ms (0 unless open)}.
local now = courier_now_ms()
local success = ARGV[1] == '1'
local cool_down = tonumber(ARGV[6])
local state, open_until = unpack(redis.call('HMGET', KEYS[1], 'state', 'until'))
state = state or 'closed'
open_until = tonumber(open_until) or 0

local function open()
  local until_ms = now + cool_down
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', until_ms)
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
  return {'open', until_ms}
end

if state == 'open' and now >= open_until then
  state = 'half_open'
  open_until = 0
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probes_ok', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
end

if state == 'paused' then
  return {'paused', 0}
elseif state == 'open' then
  return {'open', open_until}
elseif state == 'half_open' then
  if not success then
    return open()
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) == 0 then
    return {'half_open', 0}
  end
  redis.call('ZPOPMIN', KEYS[2])
  if redis.call('HINCRBY', KEYS[1], 'probes_ok', 1) >= tonumber(ARGV[7]) then
    -- Closed with nothing counted is the missing hash.
    redis.call('DEL', KEYS[1], KEYS[2])
    return {'closed', 0}
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
  return {'half_open', 0}
end

-- Closed.
local window = tonumber(ARGV[5])
local start, fails, calls, prev_fails, prev_calls = unpack(redis.call(
  'HMGET', KEYS[1], 'start', 'fails', 'calls', 'prev_fails', 'prev_calls'))
start = tonumber(start)
fails, calls = tonumber(fails) or 0, tonumber(calls) or 0
prev_fails, prev_calls = tonumber(prev_fails) or 0, tonumber(prev_calls) or 0
if start == nil or now - start >= 2 * window or now < start then
  -- Nothing counted is recent enough to matter (or the server clock went
  -- back after a failover): start afresh.
  start, fails, calls, prev_fails, prev_calls = now, 0, 0, 0, 0
elseif now - start >= window then
  start, prev_fails, prev_calls, fails, calls = start + window, fails, calls, 0, 0
end
calls = calls + 1
if not success then
  fails = fails + 1
  local weight = 1 - (now - start) / window
  local est_fails = fails + prev_fails * weight
  local est_calls = calls + prev_calls * weight
  local threshold, min_calls, rate = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  if (threshold > 0 and est_fails >= threshold)
      or (rate > 0 and est_calls >= min_calls and est_fails / est_calls >= rate) then
    return open()
  end
end
redis.call('HSET', KEYS[1], 'start', start, 'fails', fails, 'calls', calls,
  'prev_fails', prev_fails, 'prev_calls', prev_calls)
redis.call('PEXPIRE', KEYS[1], ARGV[8])
return {'closed', 0}
