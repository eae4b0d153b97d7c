-- Takes one token from a shared rate limit, or says how long to wait.
--
-- GCRA (the generic cell rate algorithm, a token bucket kept as one
-- number): the state is the theoretical arrival time (TAT) of the next
-- request at the steady rate. A request is admitted when admitting it
-- keeps the TAT within `burst` emission intervals of now; each admission
-- moves the TAT one interval on. An absent key is a full bucket.
--
-- KEYS[1] state (TAT, microseconds since the epoch by the server's clock)
-- ARGV[1] emission interval in microseconds (1e6 / rate; may be fractional)
-- ARGV[2] burst (at least 1)
--
-- Returns 0 when a token was taken, otherwise the microseconds (at least 1)
-- until this request would be admitted if nobody else took the token.

-- Microseconds, not courier_now_ms(): above 1000 requests per second the
-- interval is shorter than a millisecond. Still the server's clock, so all
-- workers agree whatever their own clocks say.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])

local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then
  -- Idle time refills the bucket, but only up to full: the TAT never lags
  -- behind now.
  tat = now
end
local new_tat = tat + interval
local allowed_at = new_tat - interval * burst
if now < allowed_at then
  return math.max(1, math.ceil(allowed_at - now))
end
-- Once now passes new_tat the bucket is full again and an absent key means
-- the same, so the key only has to live that long; a few refill periods
-- more keep it across small clock steps. '%.3f' keeps the digits that
-- tostring's 14 significant ones would round away.
local refill_ms = math.ceil(interval * burst / 1000)
local ttl_ms = math.ceil((new_tat - now) / 1000) + 2 * refill_ms + 1
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', string.format('%d', ttl_ms))
return 0
