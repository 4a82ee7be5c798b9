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
-- ARGV[1] window (ms), ARGV[2] limit (0: no clone detection), ARGV[3]
-- action (log, deny, quarantine), ARGV[4] registry required (1/0),
-- ARGV[5] edge, ARGV[6] event rate limit (ms), ARGV[7] events stream
-- MAXLEN (those of the location, formatted once), then ARGV[8] location,
-- ARGV[9] serial, ARGV[10] signer id
--
-- Returns { status, reason, places, cause, serial }: the serial tells the
-- edge that the reply is the one of its lookup.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local action = ARGV[3]
local registry = ARGV[4] == '1'
local rl = tonumber(ARGV[6])
local loc = ARGV[8]

-- a stream entry per decision, at most one per serial and type per rl ms
local function event(kind, reason)
    local last = tonumber(redis.call('HGET', KEYS[7], kind) or '0')
    if now - last < rl then
        return
    end
    redis.call('HSET', KEYS[7], kind, now)
    redis.call('PEXPIRE', KEYS[7], rl)
    redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[7], '*',
               'type', kind, 'serial', ARGV[9], 'signer', ARGV[10],
               'location', loc, 'edge', ARGV[5], 'reason', reason)
end

-- GET, not MGET: a key of the wrong type must fail (and the fail mode
-- decide), never read as absent
local reason = redis.call('GET', KEYS[1])
if reason then
    if string.sub(reason, 1, 12) == 'quarantined:' then
        event('quarantined', reason)
        return { 'quarantined', reason, 0, '', ARGV[9] }
    end
    event('revoked', reason)
    return { 'revoked', reason, 0, '', ARGV[9] }
end

reason = redis.call('GET', KEYS[3])
if reason then
    event('signer_revoked', reason)
    return { 'signer_revoked', reason, 0, '', ARGV[9] }
end

if redis.call('EXISTS', KEYS[2]) == 0 then
    -- a leaked factory key: only the units already shipped keep working
    reason = redis.call('GET', KEYS[4])
    if reason then
        reason = 'signer compromised (' .. reason
                 .. ') and serial not in the manufacturing registry'
        event('unregistered', reason)
        return { 'unregistered', reason, 0, 'signer_compromised', ARGV[9] }
    end

    if registry then
        reason = 'serial not in the manufacturing registry'
        event('unregistered', reason)
        return { 'unregistered', reason, 0, 'registry', ARGV[9] }
    end
end

if limit == 0 then
    return { 'ok', '', 0, '', ARGV[9] }
end

-- sightings.  A place seen again within a tenth of the window is only
-- counted: the entries, the trimming and the TTL written then still hold.
local places
local last = redis.call('ZSCORE', KEYS[5], loc)

if last and now - tonumber(last) < window / 10 then
    places = redis.call('ZCOUNT', KEYS[5], now - window, '+inf')

else
    -- trimmed to the window and to the 100 newest places, with a TTL
    redis.call('ZADD', KEYS[5], now, loc)
    redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. (now - window))
    redis.call('PEXPIRE', KEYS[5], window)

    places = redis.call('ZCARD', KEYS[5])
    if places > 100 then
        redis.call('ZREMRANGEBYRANK', KEYS[5], 0, places - 101)
        places = 100
    end
end

if places <= limit then
    return { 'ok', '', places, '', ARGV[9] }
end

local seen = redis.call('ZREVRANGE', KEYS[5], 0, 9)
reason = 'seen at ' .. places .. ' places within '
         .. math.floor(window / 1000) .. 's: ' .. table.concat(seen, ', ')

if action == 'quarantine' then
    redis.call('SET', KEYS[1], 'quarantined: cloned device ' .. reason,
               'PX', window)
    event('quarantined', reason)
    return { 'quarantined', reason, places, '', ARGV[9] }
end

event('duplicate', reason)
return { 'duplicate', reason, places, '', ARGV[9] }
