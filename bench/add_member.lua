-- PUT add user to group: a membership that does not exist yet, every request.
--
-- The paths are read from the file as they are needed, each wrk thread taking every
-- n-th line (n = GATEHOUSE_THREADS), rather than loaded into a table: a table of a
-- million strings per thread made LuaJIT's garbage collector pause the load generator
-- for up to half a second, which wrk then counted as server latency.
dofile(os.getenv("GATEHOUSE_LUA_DIR") .. "/common.lua")

local started = 0
function setup(thread)
  thread:set("thread_index", started)
  started = started + 1
end

local lines, stride
function init(args)
  lines = io.lines(os.getenv("GATEHOUSE_PATHS") .. "/add_member.paths")
  stride = tonumber(os.getenv("GATEHOUSE_THREADS")) or 1
  for _ = 1, thread_index do lines() end
end

request = function()
  local path = lines()
  assert(path, "add_member.paths ran out: seed more add paths")
  for _ = 2, stride do lines() end
  return authed("PUT", path)
end
