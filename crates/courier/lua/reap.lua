-- Returns the messages a dead consumer held to the queue. A consumer is
-- dead when its heartbeat key has expired (it missed the visibility
-- timeout). Safe to run from every live consumer at once: the check and
-- the moves are one atomic step, and a second run finds nothing to move.
-- Each returned message counts one more delivery (r), so a message that
-- kills every consumer that takes it ends as poison, not in a loop.
--
-- KEYS[1] processing list of the dead consumer   KEYS[2] queue
-- KEYS[3] its heartbeat key                      KEYS[4] consumers set
-- ARGV[1] the consumer's name   ARGV[2] transport   ARGV[3] chunk size
-- ARGV[4] retention age, ms
--
-- Returns how many messages were returned; -1 when the consumer is alive.
if redis.call('EXISTS', KEYS[3]) == 1 then
  return -1
end
local moved = 0
for _ = 1, tonumber(ARGV[3]) do
  local element = redis.call('RPOP', KEYS[1])
  if not element then
    break
  end
  local score = nil
  local record = element
  if ARGV[2] == 'priority' then
    local bar = string.find(element, '|', 1, true)
    score = tonumber(string.sub(element, 1, bar - 1))
    record = string.sub(element, bar + 1)
  end
  local envelope, history, reaped = record, '', 0
  local ok, decoded = pcall(cjson.decode, record)
  if ok and type(decoded) == 'table' and decoded['m'] and decoded['schema'] == nil then
    envelope, history, reaped = decoded['m'], decoded['h'] or '', tonumber(decoded['r']) or 0
  end
  local again = courier_record(envelope, history, reaped + 1)
  if ARGV[2] == 'priority' then
    redis.call('ZADD', KEYS[2], score, again)
  else
    redis.call('RPUSH', KEYS[2], again)
  end
  moved = moved + 1
end
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[4], ARGV[1])
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return moved
