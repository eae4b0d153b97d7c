-- Settles messages a consumer holds in its processing list (list and
-- priority channels), each only if it still holds it: once the reaper gave
-- the work of a consumer presumed dead to others, that consumer's late
-- settlement is refused.
--
-- KEYS[1] processing list   KEYS[2] delayed set   KEYS[3] dead-letter stream
-- KEYS[3 + i] done key of message i
-- ARGV[1] the delayed set's TTL, ms   ARGV[2] the dead-letter stream's TTL,
-- ms   ARGV[3] its length cap
-- then, from ARGV[4], per message: the element as held and its settlement
-- (`courier_settle` in common.lua: an action and that action's arguments)
--
-- Returns, per message, 'ok' or 'stale'.
local limits = {delayed_ttl = ARGV[1], dlq_ttl = ARGV[2], dlq_max = ARGV[3]}
local results = {}
local at = 4
for i = 1, #KEYS - 3 do
  local mine = redis.call('LREM', KEYS[1], 1, ARGV[at]) > 0
  results[i], at = courier_settle(mine, KEYS[3 + i], KEYS[2], KEYS[3], at + 1, limits)
end
return results
