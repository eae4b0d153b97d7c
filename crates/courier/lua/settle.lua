-- Settles delivered stream entries, each only if this consumer still owns
-- that very delivery: a consumer whose message was reclaimed by another
-- after the visibility timeout is refused, so a late acknowledgement can
-- neither acknowledge nor mark done twice.
--
-- KEYS[1] stream   KEYS[2] delayed set   KEYS[3] dead-letter stream
-- KEYS[3 + i] done key of entry i
-- ARGV[1] group    ARGV[2] consumer
-- ARGV[3] and ARGV[4] the lowest and highest entry id of the batch
-- then seven per entry i, from ARGV[5 + 7 (i - 1)]:
--   entry id, delivery count, action, and the action's four arguments:
--   'done'   acknowledge and mark the idempotency key done for arg1 ms
--   'skip'   acknowledge only (the key was already done)
--   'retry'  acknowledge and schedule arg2 (envelope and history) in
--            arg1 ms on the delayed set, whose TTL becomes arg3 ms
--   'dead'   acknowledge and append arg2 (the dead letter) to the
--            dead-letter stream, capped at arg4 entries, TTL arg3 ms
--
-- Returns, per entry, 'ok' or 'stale'.
--
-- Ownership is read with one XPENDING over the batch's id range, filtered
-- to this consumer, rather than one per entry; an entry missing from a
-- reply that may have been cut short is looked up alone. The entries
-- still owned are acknowledged with one XACK.
local group, consumer = ARGV[1], ARGV[2]
local count = #KEYS - 3

local first, last = ARGV[3], ARGV[4]
local limit = 4 * count + 100
local owned = {}
local pending = redis.call('XPENDING', KEYS[1], group, first, last, limit, consumer)
for _, entry in ipairs(pending) do
  owned[entry[1]] = tonumber(entry[4])
end
local complete = #pending < limit

local results, acked = {}, {}
for i = 1, count do
  local at = 5 + 7 * (i - 1)
  local id = ARGV[at]
  local deliveries = owned[id]
  if deliveries == nil and not complete then
    local alone = redis.call('XPENDING', KEYS[1], group, id, id, 1, consumer)
    if #alone == 1 then
      deliveries = tonumber(alone[1][4])
    end
  end
  if deliveries ~= nil and deliveries == tonumber(ARGV[at + 1]) then
    acked[#acked + 1] = id
    owned[id] = -1 -- settled: the same delivery twice in a batch is stale
    results[i] = courier_settle(KEYS[3 + i], KEYS[2], KEYS[3], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4], ARGV[at + 5], ARGV[at + 6])
  else
    results[i] = 'stale'
  end
end
for from = 1, #acked, 500 do
  redis.call('XACK', KEYS[1], group, unpack(acked, from, math.min(from + 499, #acked)))
end
return results
