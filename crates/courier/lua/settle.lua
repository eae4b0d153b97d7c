-- Settles one delivered stream entry, but only if this consumer still owns
-- this very delivery: a consumer whose message was reclaimed by another
-- after the visibility timeout is refused, so a late acknowledgement can
-- neither acknowledge nor mark done twice.
--
-- KEYS[1] stream   KEYS[2] done key   KEYS[3] delayed set   KEYS[4] dead-letter stream
-- ARGV[1] group    ARGV[2] entry id   ARGV[3] consumer      ARGV[4] delivery count
-- ARGV[5] action:
--   'done'   acknowledge and mark the idempotency key done for ARGV[6] ms
--   'skip'   acknowledge only (the key was already done)
--   'retry'  acknowledge and schedule ARGV[7] (envelope and history) in
--            ARGV[6] ms on the delayed set, whose TTL becomes ARGV[8] ms
--   'dead'   acknowledge and append ARGV[7] (the dead letter) to the
--            dead-letter stream, capped at ARGV[9] entries, TTL ARGV[8] ms
--
-- Returns 'ok' or 'stale'.
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 or pending[1][2] ~= ARGV[3] or tonumber(pending[1][4]) ~= tonumber(ARGV[4]) then
  return 'stale'
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return courier_settle(KEYS[2], KEYS[3], KEYS[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9])
