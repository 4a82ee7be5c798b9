-- device_auth: the whole device check in one Redis round trip.
--
-- KEYS[1] P{SN}:revoked                  reason; a TTL makes a quarantine
-- KEYS[2] P{SN}:registered               present: the serial was built
-- KEYS[3] Psigner:<id>:revoked           reason
-- KEYS[4] Psigner:<id>:compromised       reason
-- KEYS[5] P{SN}:seen                     zset: location -> last seen (ms)
-- KEYS[6] Pevents                        stream of decisions
-- KEYS[7] P{SN}:evrl                     hash: event type -> last sent (ms)
--
-- ARGV[1] location, ARGV[2] window (ms), ARGV[3] limit (0: no clone
-- detection), ARGV[4] action (log, deny, quarantine), ARGV[5] registry
-- required (1/0), ARGV[6] edge, ARGV[7] serial, ARGV[8] signer id,
-- ARGV[9] event rate limit (ms), ARGV[10] events stream MAXLEN
--
-- Returns { status, reason, places, cause }.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local loc = ARGV[1]
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local action = ARGV[4]
local registry = ARGV[5] == '1'
local rl = tonumber(ARGV[9])

-- a stream entry per decision, at most one per serial and type per rl ms
local function event(kind, reason)
    local last = tonumber(redis.call('HGET', KEYS[7], kind) or '0')
    if now - last < rl then
        return
    end
    redis.call('HSET', KEYS[7], kind, now)
    redis.call('PEXPIRE', KEYS[7], rl)
    redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[10], '*',
               'type', kind, 'serial', ARGV[7], 'signer', ARGV[8],
               'location', loc, 'edge', ARGV[6], 'reason', reason)
end

-- GET, not MGET: a key of the wrong type must fail (and the fail mode
-- decide), never read as absent
local reason = redis.call('GET', KEYS[1])
if reason then
    if string.sub(reason, 1, 12) == 'quarantined:' then
        event('quarantined', reason)
        return { 'quarantined', reason, 0, '' }
    end
    event('revoked', reason)
    return { 'revoked', reason, 0, '' }
end

reason = redis.call('GET', KEYS[3])
if reason then
    event('signer_revoked', reason)
    return { 'signer_revoked', reason, 0, '' }
end

if redis.call('EXISTS', KEYS[2]) == 0 then
    -- a leaked factory key: only the units already shipped keep working
    reason = redis.call('GET', KEYS[4])
    if reason then
        reason = 'signer compromised (' .. reason
                 .. ') and serial not in the manufacturing registry'
        event('unregistered', reason)
        return { 'unregistered', reason, 0, 'signer_compromised' }
    end

    if registry then
        reason = 'serial not in the manufacturing registry'
        event('unregistered', reason)
        return { 'unregistered', reason, 0, 'registry' }
    end
end

if limit == 0 then
    return { 'ok', '', 0, '' }
end

-- sightings: trimmed to the window and to 100 places, with a TTL
redis.call('ZADD', KEYS[5], now, loc)
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - window)
redis.call('PEXPIRE', KEYS[5], window)

local places = redis.call('ZCARD', KEYS[5])
if places > 100 then
    redis.call('ZREMRANGEBYRANK', KEYS[5], 0, places - 101)
    places = 100
end
if places <= limit then
    return { 'ok', '', places, '' }
end

local seen = redis.call('ZREVRANGE', KEYS[5], 0, 9)
reason = 'seen at ' .. places .. ' places within '
         .. math.floor(window / 1000) .. 's: ' .. table.concat(seen, ', ')

if action == 'quarantine' then
    redis.call('SET', KEYS[1], 'quarantined: cloned device ' .. reason,
               'PX', window)
    event('quarantined', reason)
    return { 'quarantined', reason, places, '' }
end

event('duplicate', reason)
return { 'duplicate', reason, places, '' }
