-- Moves due messages from the delayed set back to the channel's queue.
-- Each member is removed and enqueued in one atomic step, so any number of
-- consumers may run this at once and each message is moved exactly once.
-- Works in chunks of ARGV[1] so no call handles an unbounded number.
--
-- KEYS[1] delayed set   KEYS[2] queue (stream, list or sorted set)
-- ARGV[1] chunk size    ARGV[2] max stream length (0: unlimited)
-- ARGV[3] retention age, ms   ARGV[4] transport
--
-- Returns how many messages were moved.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', courier_now_ms(), 'LIMIT', 0, tonumber(ARGV[1]))
local moved = 0
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local delayed = cjson.decode(member)
  local priority = 0
  if ARGV[4] == 'priority' then
    local ok, envelope = pcall(cjson.decode, delayed['m'])
    if ok and type(envelope) == 'table' and tonumber(envelope['priority']) then
      priority = tonumber(envelope['priority'])
    end
  end
  courier_enqueue(ARGV[4], KEYS[2], delayed['m'], delayed['h'], priority, tonumber(ARGV[2]), tonumber(ARGV[3]))
  moved = moved + 1
end
return moved
