-- Settles delivered stream entries, each only if this consumer still owns
-- that very delivery: a consumer whose message was reclaimed by another
-- after the visibility timeout is refused, so a late acknowledgement can
-- neither acknowledge nor mark done twice.
--
-- KEYS[1] stream   KEYS[2] delayed set   KEYS[3] dead-letter stream
-- KEYS[3 + i] done key of entry i
-- ARGV[1] group    ARGV[2] consumer
-- ARGV[3] and ARGV[4] the lowest and highest entry id of the batch
-- ARGV[5] the delayed set's TTL, ms   ARGV[6] the dead-letter stream's TTL,
-- ms   ARGV[7] its length cap
-- then, from ARGV[8], per entry: its id, its delivery count and its
-- settlement (`courier_settle` in common.lua: an action and that action's
-- arguments); every settled entry is acknowledged
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

local limits = {delayed_ttl = ARGV[5], dlq_ttl = ARGV[6], dlq_max = ARGV[7]}
local results, acked = {}, {}
local at = 8
for i = 1, count do
  local id = ARGV[at]
  local deliveries = owned[id]
  if deliveries == nil and not complete then
    local alone = redis.call('XPENDING', KEYS[1], group, id, id, 1, consumer)
    if #alone == 1 then
      deliveries = tonumber(alone[1][4])
    end
  end
  local mine = deliveries ~= nil and deliveries == tonumber(ARGV[at + 1])
  if mine then
    acked[#acked + 1] = id
    owned[id] = -1 -- settled: the same delivery twice in a batch is stale
  end
  results[i], at = courier_settle(mine, KEYS[3 + i], KEYS[2], KEYS[3], at + 2, limits)
end
for from = 1, #acked, 500 do
  redis.call('XACK', KEYS[1], group, unpack(acked, from, math.min(from + 499, #acked)))
end
return results
