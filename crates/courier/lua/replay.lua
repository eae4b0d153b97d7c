-- Replays one dead letter: removes it from the dead-letter stream and
-- enqueues its new envelope on the channel in one atomic step, so two
-- operators replaying at once publish it once.
--
-- KEYS[1] dead-letter stream   KEYS[2] queue (stream, list or sorted set)
-- ARGV[1] dead-letter entry id   ARGV[2] new envelope JSON
-- ARGV[3] max stream length (0: unlimited)   ARGV[4] retention age, ms
-- ARGV[5] transport   ARGV[6] priority
--
-- Returns where it went, or false when the entry was already gone.
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then
  return false
end
return courier_enqueue(ARGV[5], KEYS[2], ARGV[2], nil, tonumber(ARGV[6]), tonumber(ARGV[3]), tonumber(ARGV[4]))
