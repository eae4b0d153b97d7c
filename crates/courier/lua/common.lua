-- Shared by every courier script: prepended to each at build time, so each
-- rule below exists once.

-- Milliseconds since the epoch by the server's clock: every due time and
-- trim horizon is computed by Redis itself, so client clocks do not matter.
local function courier_now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Appends an envelope (and its attempt history, if any) to a stream. The
-- trim of entries past the retention age is the upkeep's
-- (`courier_tidy`), once per batch rather than once per entry.
local function courier_append(stream, envelope, history)
  if history and history ~= '' then
    return redis.call('XADD', stream, '*', 'm', envelope, 'h', history)
  end
  return redis.call('XADD', stream, '*', 'm', envelope)
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

-- Score of a priority-queue member: higher priority first (0..9), then
-- older first. 1e13 ms is beyond any epoch time in ms for centuries, and
-- every score stays an exact integer in a double.
local function courier_priority_score(priority, at_ms)
  return (9 - priority) * 1e13 + at_ms
end

-- The text stored for a message on a list or priority queue: the envelope
-- alone on first delivery; with its attempt history (h) and the number of
-- times it was taken back from a dead consumer (r) once it has any.
local function courier_record(envelope, history, reaped)
  if (history == nil or history == '') and (reaped == nil or reaped == 0) then
    return envelope
  end
  return cjson.encode({m = envelope, h = history or '', r = reaped or 0})
end

-- Puts a message on a channel's queue, whatever its transport, without
-- the upkeep (`courier_tidy`), which a batch does once.
-- transport: 'stream' | 'list' | 'priority' | 'pubsub'.
-- For priority, `priority` orders it; for pubsub, `key` is the channel name.
local function courier_put(transport, key, envelope, history, priority, now_ms)
  if transport == 'stream' then
    return courier_append(key, envelope, history)
  elseif transport == 'list' then
    redis.call('LPUSH', key, courier_record(envelope, history, 0))
    return 'queued'
  elseif transport == 'priority' then
    redis.call('ZADD', key, courier_priority_score(priority, now_ms), courier_record(envelope, history, 0))
    return 'queued'
  end
  return tostring(redis.call('PUBLISH', key, envelope))
end

-- A queue's upkeep after puts: a stream trimmed of entries older than the
-- retention age and to its length limit (both approximately, which is
-- cheap), and the key's TTL kept at the retention age, so an abandoned
-- queue disappears.
local function courier_tidy(transport, key, max_len, now_ms, max_age_ms)
  if transport == 'pubsub' then
    return
  end
  if transport == 'stream' then
    redis.call('XTRIM', key, 'MINID', '~', (now_ms - max_age_ms) .. '-0')
    if max_len > 0 then
      redis.call('XTRIM', key, 'MAXLEN', '~', max_len)
    end
  end
  redis.call('PEXPIRE', key, max_age_ms)
end

-- Puts one message on a queue and does the upkeep.
local function courier_enqueue(transport, key, envelope, history, priority, max_len, max_age_ms)
  local now = courier_now_ms()
  local where = courier_put(transport, key, envelope, history, priority, now)
  courier_tidy(transport, key, max_len, now, max_age_ms)
  return where
end

-- Messages waiting on a queue of any transport.
local function courier_waiting(transport, key)
  if transport == 'stream' then
    return courier_depth(key)
  elseif transport == 'list' then
    return redis.call('LLEN', key)
  elseif transport == 'priority' then
    return redis.call('ZCARD', key)
  end
  return 0
end

-- Makes `key` live at least `ms` more milliseconds: a longer TTL it has is
-- kept, so that a message scheduled further ahead (its own, longer TTL)
-- outlives a later, nearer one; a key without a TTL gets one.
local function courier_live_at_least(key, ms)
  if redis.call('PTTL', key) < tonumber(ms) then
    redis.call('PEXPIRE', key, ms)
  end
end

-- The part of settling shared by every transport. A settlement in ARGV,
-- from `at`, is its action and the action's own arguments:
--   'done'   the done mark's TTL, ms: mark the idempotency key done
--   'skip'   (none): nothing more (the key was already done)
--   'retry'  the delay, ms, and the record (envelope and history): put it
--            on the delayed set, which then lives at least
--            limits.delayed_ttl ms more
--   'dead'   the dead letter: append it to the dead-letter stream, capped
--            at limits.dlq_max entries, TTL limits.dlq_ttl ms
-- Carries it out only when `owned` (the caller proved it still holds the
-- message). Returns 'ok' or 'stale', and where the next settlement starts.
local courier_settle_width = {done = 2, skip = 1, retry = 3, dead = 2}
local function courier_settle(owned, done_key, delayed, dlq, at, limits)
  local action = ARGV[at]
  local width = courier_settle_width[action]
  if width == nil then
    error('unknown settle action ' .. tostring(action))
  end
  if not owned then
    return 'stale', at + width
  end
  if action == 'done' then
    redis.call('SET', done_key, '1', 'PX', ARGV[at + 1])
  elseif action == 'retry' then
    redis.call('ZADD', delayed, courier_now_ms() + tonumber(ARGV[at + 1]), ARGV[at + 2])
    courier_live_at_least(delayed, limits.delayed_ttl)
  elseif action == 'dead' then
    redis.call('XADD', dlq, 'MAXLEN', '~', limits.dlq_max, '*', 'd', ARGV[at + 1])
    redis.call('PEXPIRE', dlq, limits.dlq_ttl)
  end
  return 'ok', at + width
end
