-- Settles one message a consumer holds in its processing list (list and
-- priority channels), but only if it still holds it: once the reaper gave
-- the work of a consumer presumed dead to others, that consumer's late
-- settlement is refused.
--
-- KEYS[1] processing list   KEYS[2] done key   KEYS[3] delayed set   KEYS[4] dead-letter stream
-- ARGV[1] the element as held
-- ARGV[2] action and ARGV[3..6] as in settle.lua's ARGV[5..9]
--
-- Returns 'ok' or 'stale'.
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then
  return 'stale'
end
return courier_settle(KEYS[2], KEYS[3], KEYS[4], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
