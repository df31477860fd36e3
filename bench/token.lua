request = function()
  return wrk.format("POST", "/authenticate/connect/token",
    { ["Content-Type"] = "application/x-www-form-urlencoded" },
    "grant_type=contensis_classic&username=loadtester&password=Load-Tester-42")
end
