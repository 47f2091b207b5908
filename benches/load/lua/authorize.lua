-- Mints authorization codes for the code exchange scenario: GET /oauth/authorize (the URL
-- given to wrk) with a signed-in browser session (SESSION, the tessera_session cookie) for
-- a first-party client, so every answer is a 303 to the redirect URI with a new code.
-- Thread i writes its codes to CODES_FILE.i, one a line; an answer without a code counts as
-- an error.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
local out
non2xx = 0

wrk.headers["Cookie"] = "tessera_session=" .. os.getenv("SESSION")

function init(args)
  out = assert(io.open(os.getenv("CODES_FILE") .. "." .. (id or 0), "w"))
end

function response(status, headers, body)
  local location = headers["Location"] or headers["location"]
  local code = location and string.match(location, "[?&]code=([^&]+)")
  if status == 303 and code then
    out:write(code, "\n")
    out:flush()
  else
    non2xx = non2xx + 1
  end
end
