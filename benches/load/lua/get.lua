-- A plain GET of the URL given to wrk.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
