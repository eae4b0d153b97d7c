-- Moves due messages from the delayed set back to the channel's queue.
-- Each member is removed and enqueued in one atomic step, so any number of
-- consumers may run this at once and each message is moved exactly once.
-- Works in chunks of ARGV[1] so no call handles an unbounded number.
--
-- A member that is not a courier record (a JSON object whose `m` is the
-- envelope text) cannot be queued: it is dead-lettered as found, in the
-- same step, rather than dropped.
--
-- KEYS[1] delayed set   KEYS[2] queue (stream, list or sorted set)
-- KEYS[3] dead-letter stream
-- ARGV[1] chunk size    ARGV[2] max stream length (0: unlimited)
-- ARGV[3] retention age, ms   ARGV[4] transport
-- ARGV[5] and ARGV[8] the dead letter of an unreadable member as JSON, up
--         to and after its `raw` value (the member, as a JSON string)
-- ARGV[6] dead-letter stream cap   ARGV[7] its TTL, ms
--
-- Returns how many members were moved (queued or dead-lettered).
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', courier_now_ms(), 'LIMIT', 0, tonumber(ARGV[1]))
local moved = 0
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local ok, delayed = pcall(cjson.decode, member)
  if ok and type(delayed) == 'table' and type(delayed['m']) == 'string' then
    local priority = 0
    if ARGV[4] == 'priority' then
      local read, envelope = pcall(cjson.decode, delayed['m'])
      if read and type(envelope) == 'table' and tonumber(envelope['priority']) then
        priority = tonumber(envelope['priority'])
      end
    end
    local history = delayed['h']
    if type(history) ~= 'string' then
      history = ''
    end
    courier_enqueue(ARGV[4], KEYS[2], delayed['m'], history, priority, tonumber(ARGV[2]), tonumber(ARGV[3]))
  else
    local letter = ARGV[5] .. cjson.encode(member) .. ARGV[8]
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'd', letter)
    redis.call('PEXPIRE', KEYS[3], ARGV[7])
  end
  moved = moved + 1
end
return moved
