dofile(os.getenv("GATEHOUSE_LUA_DIR") .. "/common.lua")
local paths = load_paths("get_user")
local i = 0
request = function()
  i = i % #paths + 1
  return authed("GET", paths[i])
end
