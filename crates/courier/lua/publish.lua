-- Publishes one envelope: deduplication, backpressure, append with trim and
-- expiry, in one atomic step.
--
-- KEYS[1] stream       KEYS[2] idempotency key (idem:<key>)
-- ARGV[1] envelope JSON
-- ARGV[2] message id (remembered under the idempotency key)
-- ARGV[3] dedup window, ms
-- ARGV[4] max depth (0: unlimited)
-- ARGV[5] max stream length (0: unlimited)
-- ARGV[6] retention age, ms
--
-- Returns {'ok', stream id}, {'dup', first message id} or {'full', depth}.
local first = redis.call('GET', KEYS[2])
if first then
  return {'dup', first}
end
local max_depth = tonumber(ARGV[4])
if max_depth > 0 then
  local depth = courier_depth(KEYS[1])
  if depth >= max_depth then
    return {'full', tostring(depth)}
  end
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
local id = courier_append(KEYS[1], ARGV[1], nil, tonumber(ARGV[5]), tonumber(ARGV[6]))
return {'ok', id}
