dofile(os.getenv("GATEHOUSE_LUA_DIR") .. "/common.lua")
local paths = load_paths("member_check")
local i = 0
request = function()
  i = i % #paths + 1
  return authed("HEAD", paths[i])
end
