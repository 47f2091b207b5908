-- The same form POST every time: BODY is the urlencoded body, AUTH an optional
-- Authorization header value.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local auth = os.getenv("AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
