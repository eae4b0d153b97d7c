-- Settles messages a consumer holds in its processing list (list and
-- priority channels), each only if it still holds it: once the reaper gave
-- the work of a consumer presumed dead to others, that consumer's late
-- settlement is refused.
--
-- KEYS[1] processing list   KEYS[2] delayed set   KEYS[3] dead-letter stream
-- KEYS[3 + i] done key of message i
-- then six per message i, from ARGV[1 + 6 (i - 1)]:
--   the element as held, the action and its four arguments, as in
--   settle.lua
--
-- Returns, per message, 'ok' or 'stale'.
local results = {}
for i = 1, #KEYS - 3 do
  local at = 1 + 6 * (i - 1)
  if redis.call('LREM', KEYS[1], 1, ARGV[at]) == 0 then
    results[i] = 'stale'
  else
    results[i] = courier_settle(KEYS[3 + i], KEYS[2], KEYS[3], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4], ARGV[at + 5])
  end
end
return results
