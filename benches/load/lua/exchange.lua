-- Authorization code exchange (grant_type=authorization_code, PKCE): every request spends
-- one code minted by authorize.lua. The codes of the MINT_THREADS files CODES_FILE.0, .1, …
-- are dealt round-robin to this run's THREADS threads; a thread that runs out sends a
-- placeholder, refused and counted as an error, as is every answer but 200.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
local codes = {}
local next_code = 1
local threads = tonumber(os.getenv("THREADS") or "1")
non2xx = 0

function init(args)
  local i = 0
  for n = 0, tonumber(os.getenv("MINT_THREADS") or "1") - 1 do
    local f = io.open(os.getenv("CODES_FILE") .. "." .. n)
    if f then
      for line in f:lines() do
        if line ~= "" then
          if i % threads == (id or 0) then
            table.insert(codes, line)
          end
          i = i + 1
        end
      end
      f:close()
    end
  end
end

local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
local tail = "&redirect_uri=" .. os.getenv("REDIRECT_URI") .. "&code_verifier=" ..
  os.getenv("VERIFIER") .. "&client_id=" .. os.getenv("CLIENT_ID")

function request()
  local code = codes[next_code] or "exhausted"
  next_code = next_code + 1
  return wrk.format("POST", nil, headers, "grant_type=authorization_code&code=" .. code .. tail)
end

function response(status, hdrs, body)
  if status ~= 200 then
    non2xx = non2xx + 1
  end
end
