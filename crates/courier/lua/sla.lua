-- Finds priority messages still waiting past their SLA deadline: removes
-- them from the deadline set (each breach is reported once), optionally
-- raises them to the highest priority keeping their age order, and counts
-- the breach.
--
-- KEYS[1] SLA deadlines   KEYS[2] priority queue   KEYS[3] breach counter
-- ARGV[1] chunk size      ARGV[2] '1' to escalate  ARGV[3] counter TTL, ms
--
-- Returns the breached envelopes and their deadlines (ms), alternating.
local now = courier_now_ms()
local late = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
for i = 1, #late, 2 do
  local record = late[i]
  redis.call('ZREM', KEYS[1], record)
  if ARGV[2] == '1' then
    local score = redis.call('ZSCORE', KEYS[2], record)
    if score then
      local age = tonumber(score) % 1e13
      redis.call('ZADD', KEYS[2], 'XX', courier_priority_score(9, age), record)
    end
  end
end
if #late > 0 then
  redis.call('INCRBY', KEYS[3], #late / 2)
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
return late
