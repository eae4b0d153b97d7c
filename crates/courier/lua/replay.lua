-- Replays one dead letter: removes it from the dead-letter stream and
-- appends its new envelope to the channel's stream in one atomic step, so
-- two operators replaying at once publish it once.
--
-- KEYS[1] dead-letter stream   KEYS[2] stream
-- ARGV[1] dead-letter entry id   ARGV[2] new envelope JSON
-- ARGV[3] max stream length (0: unlimited)   ARGV[4] retention age, ms
--
-- Returns the new stream id, or false when the entry was already gone.
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then
  return false
end
return courier_append(KEYS[2], ARGV[2], nil, tonumber(ARGV[3]), tonumber(ARGV[4]))
