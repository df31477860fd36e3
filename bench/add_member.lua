dofile(os.getenv("GATEHOUSE_LUA_DIR") .. "/common.lua")
local paths = load_paths("add_member")
local i = 0
request = function()
  i = i % #paths + 1
  return authed("PUT", paths[i])
end
