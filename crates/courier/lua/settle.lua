-- Settles delivered stream entries, each only if this consumer still owns
-- that very delivery: a consumer whose message was reclaimed by another
-- after the visibility timeout is refused, so a late acknowledgement can
-- neither acknowledge nor mark done twice.
--
-- KEYS[1] stream   KEYS[2] delayed set   KEYS[3] dead-letter stream
-- KEYS[3 + i] done key of entry i
-- ARGV[1] group    ARGV[2] consumer
-- then seven per entry i, from ARGV[3 + 7 (i - 1)]:
--   entry id, delivery count, action, and the action's four arguments:
--   'done'   acknowledge and mark the idempotency key done for arg1 ms
--   'skip'   acknowledge only (the key was already done)
--   'retry'  acknowledge and schedule arg2 (envelope and history) in
--            arg1 ms on the delayed set, whose TTL becomes arg3 ms
--   'dead'   acknowledge and append arg2 (the dead letter) to the
--            dead-letter stream, capped at arg4 entries, TTL arg3 ms
--
-- Returns, per entry, 'ok' or 'stale'.
local results = {}
for i = 1, #KEYS - 3 do
  local at = 3 + 7 * (i - 1)
  local id = ARGV[at]
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if #pending == 0 or pending[1][2] ~= ARGV[2] or tonumber(pending[1][4]) ~= tonumber(ARGV[at + 1]) then
    results[i] = 'stale'
  else
    redis.call('XACK', KEYS[1], ARGV[1], id)
    results[i] = courier_settle(KEYS[3 + i], KEYS[2], KEYS[3], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4], ARGV[at + 5], ARGV[at + 6])
  end
end
return results
