-- Settles one handled message together with the Redis-side effects its
-- handler asked for (`Outcome::DoneWith`): acknowledgement, done mark and
-- effect writes happen in one script, so they happen together or not at
-- all, and at most once per idempotency key.
--
-- The fence is the transport's, as in settle.lua and settle_held.lua: a
-- consumer that lost the message to a reclaim is refused ('stale') and
-- writes nothing. The done mark is set only if absent: when another
-- delivery of the same key already settled (a duplicate publish after the
-- dedup window, or a handler that ran twice), this one is acknowledged and
-- its effects are dropped ('duplicate').
--
-- KEYS[1] the fenced key: the stream, the processing list, or (fence
-- 'none', a broadcast) any key of the channel's slot, unused
-- KEYS[2] the done key   KEYS[2 + j] the key of effect j
-- ARGV[1] fence: 'stream' | 'held' | 'none'
-- ARGV[2] group   ARGV[3] consumer   (stream fence; '' otherwise)
-- ARGV[4] the entry id (stream) or the element as held (held)
-- ARGV[5] the delivery count the stream fence expects (0 otherwise)
-- ARGV[6] the done mark's TTL, ms   ARGV[7] the effect keys' TTL, ms
-- from ARGV[8], per effect key, an operation and its arguments:
--   'incrby' n        'hincrby' field n      'hset' field value
--   'sadd' member     'set' value
-- Returns 'ok', 'stale', 'duplicate', or 'refused:<why>' when an effect
-- cannot be applied (a key of another type, a counter that is not an
-- integer or would leave the 64-bit range). A script that fails half-way
-- keeps its earlier writes, so every effect is checked first, against the
-- key as the earlier effects of this call will have left it. A key already
-- done skips the check: nothing will be written.
local width = {incrby = 2, hincrby = 3, hset = 3, sadd = 2, set = 2}
local kind = {incrby = 'string', hincrby = 'hash', hset = 'hash', sadd = 'set', set = 'string'}

-- An integer as Redis parses one: no sign on zero, no leading zeros.
local function integer(text)
  return text == '0' or string.match(text, '^%-?[1-9]%d*$') ~= nil and #text <= 20
end

local function check()
  local kinds, values = {}, {}
  local at = 8
  for j = 3, #KEYS do
    local key, op = KEYS[j], ARGV[at]
    if width[op] == nil then
      return 'unknown effect operation ' .. tostring(op)
    end
    local found = kinds[key] or redis.call('TYPE', key)['ok']
    if found ~= 'none' and found ~= kind[op] then
      return key .. ' holds a ' .. found .. ', not the ' .. kind[op] .. ' ' .. op .. ' writes'
    end
    kinds[key] = kind[op]
    -- The value this effect reads or writes: the key's, or a hash field's.
    local slot = key
    if op == 'hincrby' or op == 'hset' then
      slot = key .. '\0' .. ARGV[at + 1]
    end
    if op == 'incrby' or op == 'hincrby' then
      local current = values[slot]
      if current == nil then
        if op == 'incrby' then
          current = redis.call('GET', key)
        else
          current = redis.call('HGET', key, ARGV[at + 1])
        end
      end
      current = current or '0'
      if not integer(current) then
        return key .. ' holds ' .. current .. ', not an integer to ' .. op
      end
      -- Lua numbers are doubles: keep a margin for their rounding.
      local by = ARGV[at + width[op] - 1]
      local sum = tonumber(current) + tonumber(by)
      if sum >= 2 ^ 63 - 4096 or sum <= -2 ^ 63 + 4096 then
        return key .. ' holds ' .. current .. ', too large to ' .. op .. ' by ' .. by
      end
      values[slot] = string.format('%.0f', sum)
    elseif op == 'set' or op == 'hset' then
      values[slot] = ARGV[at + width[op] - 1]
    end
    at = at + width[op]
  end
  return nil
end

if redis.call('EXISTS', KEYS[2]) == 0 then
  local refused = check()
  if refused then
    return 'refused:' .. refused
  end
end

local fence = ARGV[1]
local owned
if fence == 'stream' then
  local pending = redis.call('XPENDING', KEYS[1], ARGV[2], ARGV[4], ARGV[4], 1, ARGV[3])
  owned = #pending == 1 and tonumber(pending[1][4]) == tonumber(ARGV[5])
elseif fence == 'held' then
  owned = redis.call('LREM', KEYS[1], 1, ARGV[4]) > 0
elseif fence == 'none' then
  owned = true
else
  error('unknown fence ' .. tostring(fence))
end
if not owned then
  return 'stale'
end
if fence == 'stream' then
  redis.call('XACK', KEYS[1], ARGV[2], ARGV[4])
end
if not redis.call('SET', KEYS[2], '1', 'PX', ARGV[6], 'NX') then
  return 'duplicate'
end

local at = 8
for j = 3, #KEYS do
  local key, op = KEYS[j], ARGV[at]
  if op == 'incrby' then
    redis.call('INCRBY', key, ARGV[at + 1])
  elseif op == 'hincrby' then
    redis.call('HINCRBY', key, ARGV[at + 1], ARGV[at + 2])
  elseif op == 'hset' then
    redis.call('HSET', key, ARGV[at + 1], ARGV[at + 2])
  elseif op == 'sadd' then
    redis.call('SADD', key, ARGV[at + 1])
  else
    redis.call('SET', key, ARGV[at + 1], 'KEEPTTL')
  end
  courier_live_at_least(key, ARGV[7])
  at = at + width[op]
end
return 'ok'
