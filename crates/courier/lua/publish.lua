-- Publishes one envelope: deduplication, backpressure, enqueue (with trim
-- and expiry), in one atomic step, on any transport.
--
-- KEYS[1] queue (stream, list, sorted set, or the pubsub channel name)
-- KEYS[2] idempotency key (idem:<key>)
-- KEYS[3] delayed set (for a publish at a later time)
-- KEYS[4] SLA deadlines (priority channels)
-- ARGV[1] envelope JSON
-- ARGV[2] message id (remembered under the idempotency key)
-- ARGV[3] dedup window, ms
-- ARGV[4] max depth (0: unlimited)
-- ARGV[5] max stream length (0: unlimited)
-- ARGV[6] retention age, ms
-- ARGV[7] transport
-- ARGV[8] priority (0..9)
-- ARGV[9] delay, ms (0: now)
-- ARGV[10] SLA deadline, ms since the epoch (0: none)
--
-- Returns {'ok', where}, {'dup', first message id} or {'full', depth}.
local first = redis.call('GET', KEYS[2])
if first then
  return {'dup', first}
end
local transport = ARGV[7]
local max_depth = tonumber(ARGV[4])
if max_depth > 0 then
  local depth = courier_waiting(transport, KEYS[1])
  if depth >= max_depth then
    return {'full', tostring(depth)}
  end
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
local delay = tonumber(ARGV[9])
if delay > 0 then
  redis.call('ZADD', KEYS[3], courier_now_ms() + delay, cjson.encode({m = ARGV[1], h = ''}))
  redis.call('PEXPIRE', KEYS[3], math.max(tonumber(ARGV[6]), delay + tonumber(ARGV[6])))
  return {'ok', 'delayed'}
end
local where = courier_enqueue(transport, KEYS[1], ARGV[1], nil, tonumber(ARGV[8]), tonumber(ARGV[5]), tonumber(ARGV[6]))
local deadline = tonumber(ARGV[10])
if transport == 'priority' and deadline > 0 then
  redis.call('ZADD', KEYS[4], deadline, ARGV[1])
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
end
return {'ok', where}
