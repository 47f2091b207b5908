-- Refresh with rotation: every request presents a refresh token never presented before.
-- Each thread starts with its share of the pre-minted tokens in TOKENS_FILE (one a line;
-- thread i takes lines i, i+THREADS, ...) and puts the successor from every answer back
-- into its pool. A connection has at most one request in flight, so a pool that starts
-- with at least as many tokens as the thread has connections never runs dry unless a
-- refresh fails (which is counted as an error). CLIENT_ID, if set, names the public client
-- the tokens belong to.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
local pool = {}
local threads = tonumber(os.getenv("THREADS") or "1")
non2xx = 0

function init(args)
  local i = 0
  for line in io.lines(os.getenv("TOKENS_FILE")) do
    if i % threads == (id or 0) and line ~= "" then
      table.insert(pool, line)
    end
    i = i + 1
  end
end

local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
local client = os.getenv("CLIENT_ID")
local suffix = (client and client ~= "") and ("&client_id=" .. client) or ""

function request()
  local token = table.remove(pool) or "exhausted"
  return wrk.format("POST", nil, headers, "grant_type=refresh_token&refresh_token=" .. token .. suffix)
end

function response(status, hdrs, body)
  if status ~= 200 then
    non2xx = non2xx + 1
    return
  end
  local successor = string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
  if successor then
    table.insert(pool, successor)
  else
    non2xx = non2xx + 1
  end
end
