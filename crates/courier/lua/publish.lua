-- Publishes a batch of envelopes to one queue (one partition of one
-- channel): for each, deduplication, backpressure and enqueue, in one
-- atomic step, on any transport; the queue's upkeep (length trim, TTL)
-- once for the batch.
--
-- KEYS[1] queue (stream, list, sorted set, or the pubsub channel name)
-- KEYS[2] delayed set (for a publish at a later time)
-- KEYS[3] SLA deadlines (priority channels)
-- KEYS[3 + i] idempotency key (idem:<key>) of message i
-- ARGV[1] dedup window, ms
-- ARGV[2] max depth (0: unlimited)
-- ARGV[3] max stream length (0: unlimited)
-- ARGV[4] retention age, ms
-- ARGV[5] transport
-- ARGV[6] delay, ms (0: now)
-- then per message i, from ARGV[7 + n (i - 1)]: its envelope JSON and
--   message id (remembered under the idempotency key); on priority
--   channels (n = 4) also its priority (0..9) and SLA deadline in ms since
--   the epoch (0: none); on the others n = 2, since every argument costs
--   the script a string.
--
-- Returns two values per message, in one flat array (cheaper to build than
-- a table per message): 'ok', where; 'dup', the first message's id; or
-- 'full', the depth.
local window, max_depth = ARGV[1], tonumber(ARGV[2])
local max_len, max_age = tonumber(ARGV[3]), tonumber(ARGV[4])
local transport, delay = ARGV[5], tonumber(ARGV[6])
local count = #KEYS - 3
local stride = (transport == 'priority') and 4 or 2
local now = courier_now_ms()

-- The depth is counted once and kept up to date as messages go in. A
-- stream's length bounds its depth, so a stream far from full skips the
-- count.
local depth = nil
if max_depth > 0 then
  if transport ~= 'stream' or redis.call('XLEN', KEYS[1]) + count >= max_depth then
    depth = courier_waiting(transport, KEYS[1])
  end
end

local results = {}
local queued, delayed = false, false
for i = 1, count do
  local at = 7 + stride * (i - 1)
  local envelope, id = ARGV[at], ARGV[at + 1]
  local status, value
  if depth and depth >= max_depth then
    -- Full: a duplicate is still told so; anything else waits.
    local first = redis.call('GET', KEYS[3 + i])
    if first then
      status, value = 'dup', first
    else
      status, value = 'full', tostring(depth)
    end
  elseif not redis.call('SET', KEYS[3 + i], id, 'NX', 'PX', window) then
    -- Taken: say by whom (a read of the key, only for duplicates).
    status, value = 'dup', redis.call('GET', KEYS[3 + i])
  elseif delay > 0 then
    redis.call('ZADD', KEYS[2], now + delay, cjson.encode({m = envelope, h = ''}))
    delayed = true
    status, value = 'ok', 'delayed'
  else
    status = 'ok'
    value = courier_put(transport, KEYS[1], envelope, nil, tonumber(ARGV[at + 2]), now)
    queued = true
    if depth then
      depth = depth + 1
    end
    if stride == 4 then
      local deadline = tonumber(ARGV[at + 3])
      if deadline > 0 then
        redis.call('ZADD', KEYS[3], deadline, envelope)
        redis.call('PEXPIRE', KEYS[3], max_age)
      end
    end
  end
  results[2 * i - 1] = status
  results[2 * i] = value
end
if delayed then
  courier_live_at_least(KEYS[2], math.max(max_age, delay + max_age))
end
if queued then
  courier_tidy(transport, KEYS[1], max_len, now, max_age)
end
return results
