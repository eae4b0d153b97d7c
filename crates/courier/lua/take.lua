-- Takes up to ARGV[1] waiting messages of a list or priority channel into
-- this consumer's processing list, atomically: a message is always either
-- waiting or held, never in flight between the two.
--
-- KEYS[1] queue   KEYS[2] processing list   KEYS[3] SLA deadlines (priority)
-- ARGV[1] how many   ARGV[2] transport   ARGV[3] retention age, ms
--
-- Returns the elements as held: for lists the record; for priority
-- channels `<score>|<record>`, so the reaper can restore the order.
local taken = {}
local n = tonumber(ARGV[1])
if ARGV[2] == 'list' then
  for _ = 1, n do
    local element = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
    if not element then
      break
    end
    taken[#taken + 1] = element
  end
else
  local popped = redis.call('ZPOPMIN', KEYS[1], n)
  for i = 1, #popped, 2 do
    local element = popped[i + 1] .. '|' .. popped[i]
    redis.call('LPUSH', KEYS[2], element)
    redis.call('ZREM', KEYS[3], popped[i])
    taken[#taken + 1] = element
  end
end
if #taken > 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return taken
