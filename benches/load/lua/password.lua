-- Password grant, cycling through USERS accounts named bench0..bench{USERS-1} that share
-- PASSWORD (urlencoded).
dofile(os.getenv("LUA_DIR") .. "/common.lua")
local users = tonumber(os.getenv("USERS") or "1")
local password = os.getenv("PASSWORD")
local n = 0

function init(args)
  n = id or 0
end

function request()
  n = n + 1
  local body = "grant_type=password&username=bench" .. (n % users) .. "&password=" .. password
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
