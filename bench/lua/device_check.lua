-- The Lua peer of bench/run.sh (variant 5): the device checks of
-- ngx_device_auth_module written the way a user would write them without
-- the module, with Debian's libnginx-mod-http-lua and lua-nginx-redis
-- (resty.redis, installed as "nginx.redis").
--
-- The chain is verified by stock nginx (ssl_verify_client on, the root and
-- the signer in ssl_client_certificate).  Then, per request:
--   serial    from $ssl_client_s_dn ("CN=sn" + 18 hex digits, upper-cased)
--   signer id FIXED: the SHA-256 of the bench signer certificate, set in
--             init_by_lua.  nginx gives Lua the issuer's name
--             ($ssl_client_i_dn) but not the issuer's certificate, so a
--             user would map issuer names to ids in a table; with one
--             signer that is this constant, and the same keys are read
--             as by the module.
--   Redis     one pooled connection (set_keepalive), ONE round trip: a
--             pipeline (init_pipeline/commit_pipeline) of
--               MGET P{SN}:revoked P{SN}:registered
--                    Psigner:<id>:revoked Psigner:<id>:compromised
--               ZADD P{SN}:seen <now ms> <$remote_addr>
--               ZREMRANGEBYSCORE P{SN}:seen -inf <now - window>
--               PEXPIRE P{SN}:seen <window>
--               ZCARD P{SN}:seen
--             A pipeline is the fair peer: a command per round trip
--             would be 5 round trips.  Unlike the module's script it is
--             not atomic, takes the time from the edge's clock, records
--             the sighting of a refused device too (the decision comes
--             after the pipeline), and writes no events stream.
--   verdict   revoked ("quarantined:" prefix) -> 403, signer revoked ->
--             403, unregistered under a compromised signer -> 403,
--             registry required and unregistered -> 403, places > limit
--             -> duplicate (logged, let through as the module's
--             "duplicate_action log"); each refusal logged at warn.
--   headers   X-Device-Serial, -Signer, -Fingerprint ($ssl_client_
--             fingerprint, SHA-1: what nginx offers), -Status for the
--             upstream, as the module adds them.
--
-- It runs as rewrite_by_lua with rewrite_by_lua_no_postpone on, not as
-- access_by_lua: the bench's upstream is "return 200", which answers in
-- the rewrite phase, before any access-phase handler; the module's check
-- runs first in the rewrite phase for the same reason.  The Lua entry
-- (one coroutine per request) costs the same in either phase.

local redis = require "nginx.redis"
local conf = require "devauth_conf"

local null = ngx.null
local var = ngx.var
local prefix = conf.prefix
local signer_revoked = prefix .. "signer:" .. conf.signer .. ":revoked"
local signer_compromised = prefix .. "signer:" .. conf.signer
                           .. ":compromised"

local function refuse(status, serial, reason)
    ngx.log(ngx.WARN, "device rejected with 403 (", status, "): serial ",
            serial, ", reason: ", reason)
    return ngx.exit(ngx.HTTP_FORBIDDEN)
end

local dn = var.ssl_client_s_dn
local serial = dn and dn:match("CN=sn(0123%x+)")
if not serial or #serial ~= 18 then
    ngx.log(ngx.WARN, "device rejected: no ATECC608 serial in \"",
            tostring(dn), "\"")
    return ngx.exit(ngx.HTTP_FORBIDDEN)
end
serial = serial:upper()

local red = redis:new()
red:set_timeouts(conf.timeout, conf.timeout, conf.timeout)

local ok, err = red:connect(conf.host, conf.port)
if not ok then
    ngx.log(ngx.ERR, "redis connect: ", err)
    return ngx.exit(ngx.HTTP_SERVICE_UNAVAILABLE)
end

local key = prefix .. "{" .. serial .. "}"
local seen = key .. ":seen"
local now = math.floor(ngx.now() * 1000)
local place = var.remote_addr

red:init_pipeline(5)
red:mget(key .. ":revoked", key .. ":registered", signer_revoked,
         signer_compromised)
red:zadd(seen, now, place)
red:zremrangebyscore(seen, "-inf", now - conf.window)
red:pexpire(seen, conf.window)
red:zcard(seen)
local res
res, err = red:commit_pipeline()
if not res then
    ngx.log(ngx.ERR, "redis: ", err)
    red:close()
    return ngx.exit(ngx.HTTP_SERVICE_UNAVAILABLE)
end

local state, places = res[1], res[5]
if type(state) ~= "table" or type(places) ~= "number" then
    ngx.log(ngx.ERR, "redis: unexpected reply")
    red:close()
    return ngx.exit(ngx.HTTP_SERVICE_UNAVAILABLE)
end

red:set_keepalive(conf.idle_ms, conf.pool)

local signer_hex = conf.signer
local reason = state[1]
if reason ~= null then
    if reason:sub(1, 12) == "quarantined:" then
        return refuse("quarantined", serial, reason)
    end
    return refuse("revoked", serial, reason)
end
reason = state[3]
if reason ~= null then
    return refuse("signer_revoked", serial, reason)
end
if state[2] == null then
    if state[4] ~= null then
        return refuse("unregistered", serial, "signer compromised ("
                      .. state[4] .. ") and serial not in the registry")
    end
    if conf.registry then
        return refuse("unregistered", serial,
                      "serial not in the manufacturing registry")
    end
end

local status = "ok"
if conf.limit > 0 and places > conf.limit then
    status = "duplicate"
    ngx.log(ngx.WARN, "device allowed with 200 (duplicate): serial ",
            serial, ", seen at ", places, " places")
end

ngx.req.set_header("X-Device-Serial", serial)
ngx.req.set_header("X-Device-Signer", signer_hex)
ngx.req.set_header("X-Device-Fingerprint", var.ssl_client_fingerprint)
ngx.req.set_header("X-Device-Status", status)
