dofile(os.getenv("GATEHOUSE_LUA_DIR") .. "/common.lua")
request = function() return authed("GET", "/api/security/users") end
