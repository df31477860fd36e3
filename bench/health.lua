request = function() return wrk.format("GET", "/health") end
