-- Shared by the wrk scripts: the admin token and a rotating list of request paths.
local token = os.getenv("GATEHOUSE_TOKEN")
local dir = os.getenv("GATEHOUSE_PATHS")

function load_paths(name)
  local paths = {}
  for line in io.lines(dir .. "/" .. name .. ".paths") do paths[#paths + 1] = line end
  return paths
end

function authed(method, path, body, content_type)
  local headers = { ["Authorization"] = "Bearer " .. token }
  if content_type then headers["Content-Type"] = content_type end
  return wrk.format(method, path, headers, body)
end
