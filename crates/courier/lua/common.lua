-- Shared by every courier script: prepended to each at build time, so each
-- rule below exists once.

-- Milliseconds since the epoch by the server's clock: every due time and
-- trim horizon is computed by Redis itself, so client clocks do not matter.
local function courier_now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Appends an envelope (and its attempt history, if any) to a stream, trims
-- the stream by age and length, and keeps the key's TTL at the retention
-- age, so an abandoned stream disappears.
local function courier_append(stream, envelope, history, max_len, max_age_ms)
  local minid = (courier_now_ms() - max_age_ms) .. '-0'
  local id
  if history and history ~= '' then
    id = redis.call('XADD', stream, 'MINID', '~', minid, '*', 'm', envelope, 'h', history)
  else
    id = redis.call('XADD', stream, 'MINID', '~', minid, '*', 'm', envelope)
  end
  if max_len > 0 then
    redis.call('XTRIM', stream, 'MAXLEN', '~', max_len)
  end
  redis.call('PEXPIRE', stream, max_age_ms)
  return id
end

-- What consumers have yet to finish: for the slowest consumer group, the
-- entries not yet delivered (lag) plus those delivered but unacknowledged
-- (pending). Without groups, every entry waits.
local function courier_depth(stream)
  if redis.call('EXISTS', stream) == 0 then
    return 0
  end
  local groups = redis.call('XINFO', 'GROUPS', stream)
  if #groups == 0 then
    return redis.call('XLEN', stream)
  end
  local depth = 0
  for _, group in ipairs(groups) do
    local fields = {}
    for i = 1, #group, 2 do
      fields[group[i]] = group[i + 1]
    end
    local waiting
    if fields['lag'] then
      waiting = fields['pending'] + fields['lag']
    else
      -- Redis cannot tell the lag after deletions in the range; the stream
      -- length is an upper bound.
      waiting = redis.call('XLEN', stream)
    end
    if waiting > depth then
      depth = waiting
    end
  end
  return depth
end
