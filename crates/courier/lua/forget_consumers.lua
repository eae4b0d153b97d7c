-- Removes from a stream's consumer group the consumers that are gone:
-- their `seen` key expired (no heartbeat for three visibility timeouts:
-- unlike the group's idle times, which Redis resets when it restarts, a
-- key's TTL survives a restart), they have been idle for at least ARGV[3]
-- ms (a few blocking reads: one that just joined beats right after), and
-- they hold nothing pending, their entries already reclaimed by live
-- consumers. Each consumer process
-- joins under a fresh name, so without this every one that ever ran would
-- stay listed forever.
--
-- The caller picks the candidates (from XINFO CONSUMERS) and passes their
-- `seen` keys, since a script may touch only the keys it is given; the
-- script checks every condition again and removes in one atomic step,
-- because `XGROUP DELCONSUMER` drops the consumer's pending entries with
-- it: a consumer that read an entry since the caller looked keeps it.
--
-- KEYS[1] stream   KEYS[1 + i] `seen` key of candidate i
-- ARGV[1] group   ARGV[2] the calling consumer (never removed)
-- ARGV[3] idle bound, ms   ARGV[3 + i] name of candidate i
--
-- Returns the names of the consumers removed.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {}
end
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if not ok then
  -- No such group (any more): nothing to forget.
  return {}
end
local listed = {}
for _, consumer in ipairs(consumers) do
  local fields = {}
  for i = 1, #consumer, 2 do
    fields[consumer[i]] = consumer[i + 1]
  end
  listed[fields['name']] = fields
end
local bound = tonumber(ARGV[3])
local removed = {}
for i = 2, #KEYS do
  local name = ARGV[2 + i]
  local fields = listed[name]
  if name ~= ARGV[2] and fields and tonumber(fields['pending']) == 0
      and tonumber(fields['idle']) >= bound
      and redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
    removed[#removed + 1] = name
  end
end
return removed
