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
--         to and after its `raw` value (the member, escaped, as a JSON
--         string)
-- ARGV[6] dead-letter stream cap   ARGV[7] its TTL, ms
--
-- Returns how many members were moved (queued or dead-lettered).
-- `s` as courier keeps what is not text (src/unreadable.rs): UTF-8 as it
-- is with each backslash doubled, every other byte as \xNN.
local function courier_escape(s)
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:byte(i)
    local len = 0
    if c < 0x80 then
      len = 1
    elseif c >= 0xC2 and c <= 0xDF then
      len = 2
    elseif c >= 0xE0 and c <= 0xEF then
      len = 3
    elseif c >= 0xF0 and c <= 0xF4 then
      len = 4
    end
    local ok = len > 0 and i + len - 1 <= n
    if ok and len > 1 then
      for j = i + 1, i + len - 1 do
        local b = s:byte(j)
        if b < 0x80 or b > 0xBF then
          ok = false
        end
      end
      -- No overlong forms, surrogates or code points above U+10FFFF.
      local b2 = s:byte(i + 1)
      if (c == 0xE0 and b2 < 0xA0) or (c == 0xED and b2 > 0x9F)
          or (c == 0xF0 and b2 < 0x90) or (c == 0xF4 and b2 > 0x8F) then
        ok = false
      end
    end
    if not ok then
      out[#out + 1] = string.format('\\x%02x', c)
      i = i + 1
    elseif c == 92 then
      out[#out + 1] = '\\\\'
      i = i + 1
    else
      out[#out + 1] = s:sub(i, i + len - 1)
      i = i + len
    end
  end
  return table.concat(out)
end

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
    local letter = ARGV[5] .. cjson.encode(courier_escape(member)) .. ARGV[8]
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'd', letter)
    redis.call('PEXPIRE', KEYS[3], ARGV[7])
  end
  moved = moved + 1
end
return moved
