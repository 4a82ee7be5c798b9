-- device_auth: what one device's check needs from Redis, in one round trip.
--
-- Every key here has the device's {SN} hash tag: one Redis Cluster slot.
-- The edge caches what "f" (fetch) reads: it sends CLIENT CACHING yes
-- before this script, so Redis tracks those keys for it and pushes their
-- invalidation when anyone changes them.  "s" (sight) records where the
-- device is and counts its places, fleet-wide and atomically; "e" (event)
-- rate-limits a decision's event, which the edge then adds to the events
-- stream itself (the stream lives in another slot).
--
-- KEYS[1] P{SN}:revoked     reason; a TTL makes a quarantine
-- KEYS[2] P{SN}:registered  present: the serial was built; its value may
--                           bind the chip's key (spki_sha256=<hex>)
-- KEYS[3] P{SN}:seen        zset: place -> last seen (ms, Redis' clock)
-- KEYS[4] P{SN}:evrl        hash: event type -> last sent (ms)
-- KEYS[5] P{SN}:edges       zset: edge -> last sighting there (ms)
--
-- ARGV[1] serial (the reply's tag)  ARGV[2] what: f, fs or e (s reads
-- the facts as f does)
-- ARGV[3] place  ARGV[4] window (ms)  ARGV[5] limit  ARGV[6] action (log,
-- deny, quarantine)  ARGV[7] event rate (ms)  ARGV[8] event type (for e)
-- ARGV[9] the edge's name (device_auth_edge_name)
--
-- Returns { serial, fetched (1/0), revoked value or false, its PTTL (ms,
-- -1: none), registered value or false, sighting (ok, duplicate,
-- quarantined or ''), places, reason, event due ('' or its type), the
-- edges that sighted a clone within the window ('' otherwise), own }.
--
-- own: how many invalidations of P{SN}:seen this script makes Redis send
-- the caller.  The caller tracks the places it reads (not NOLOOP): each
-- write that follows a read of them here sends one, and the key is no
-- longer tracked until read again.  The edge then knows which of the
-- invalidations that follow are its own, and does not sight again for
-- them.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local what = ARGV[2]
local rl = tonumber(ARGV[7])

local fetched, revoked, pttl, registered = 0, false, -1, false
local sight, places, reason, event, edges, own = '', 0, '', '', '', 0

-- at most one event per serial and type per rl ms, fleet-wide
local function due(kind)
    local last = tonumber(redis.call('HGET', KEYS[4], kind) or '0')
    if now - last < rl then
        return ''
    end
    redis.call('HSET', KEYS[4], kind, now)
    redis.call('PEXPIRE', KEYS[4], rl)
    return kind
end

-- a sighting reads the facts too: a revoked device is never sighted, and
-- its revocation never overwritten by a quarantine
if string.find(what, 'f', 1, true) or string.find(what, 's', 1, true) then
    -- GET: a key of the wrong type must fail (and the fail mode decide),
    -- never read as absent; the registration's value binds a key
    fetched = 1
    revoked = redis.call('GET', KEYS[1])
    if revoked then
        pttl = redis.call('PTTL', KEYS[1])
    end
    registered = redis.call('GET', KEYS[2])
end

-- a revoked device is refused whatever its places: no sighting
if string.find(what, 's', 1, true) and not revoked then
    local loc = ARGV[3]
    local window = tonumber(ARGV[4])
    local limit = tonumber(ARGV[5])

    -- a place seen again within a tenth of the window is only counted:
    -- the entries, the trimming and the TTL written then still hold
    local last = redis.call('ZSCORE', KEYS[3], loc)

    if last and now - tonumber(last) < window / 10 then
        places = redis.call('ZCOUNT', KEYS[3], now - window, '+inf')

    else
        -- trimmed to the window and to the 100 newest places, with a TTL
        redis.call('ZADD', KEYS[3], now, loc)
        redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now - window))
        redis.call('PEXPIRE', KEYS[3], window)
        own = 1

        places = redis.call('ZCARD', KEYS[3])
        if places > 100 then
            redis.call('ZREMRANGEBYRANK', KEYS[3], 0, places - 101)
            places = 100
            own = 2
        end
    end

    -- which edges saw it, for a clone's event: trimmed as the places
    redis.call('ZADD', KEYS[5], now, ARGV[9])
    redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. (now - window))
    redis.call('PEXPIRE', KEYS[5], window)
    if redis.call('ZCARD', KEYS[5]) > 100 then
        redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -101)
    end

    sight = 'ok'

    if places > limit then
        edges = table.concat(redis.call('ZREVRANGE', KEYS[5], 0, 9), ', ')

        local seen = redis.call('ZREVRANGE', KEYS[3], 0, 9)
        reason = 'seen at ' .. places .. ' places within '
                 .. math.floor(window / 1000) .. 's: '
                 .. table.concat(seen, ', ')

        if ARGV[6] == 'quarantine' then
            -- every edge learns it as the invalidation of this key; the
            -- edge that writes it, from this reply
            revoked = 'quarantined: cloned device ' .. reason
            pttl = window
            redis.call('SET', KEYS[1], revoked, 'PX', window)
            sight = 'quarantined'
            event = due('quarantined')
        else
            sight = 'duplicate'
            event = due('duplicate')
        end
    end
end

if string.find(what, 'e', 1, true) then
    event = due(ARGV[8])
end

return { ARGV[1], fetched, revoked, pttl, registered, sight, places,
         reason, event, edges, own }
