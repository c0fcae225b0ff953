-- POST /auth/login as the users bench-user-1..$BENCH_USERS@kiln.invalid in
-- turn, all with the password $BENCH_PASSWORD.
dofile(string.match(debug.getinfo(1, "S").source, "^@(.*/)") .. "report.lua")

local users = tonumber((assert(os.getenv("BENCH_USERS"), "BENCH_USERS")))
local password = assert(os.getenv("BENCH_PASSWORD"), "BENCH_PASSWORD")
local headers = {["Content-Type"] = "application/json"}
local n = 0

function request()
	n = n + 1
	local body = string.format('{"email":"bench-user-%d@kiln.invalid","password":"%s"}',
		(n + tid) % users + 1, password)
	return wrk.format("POST", nil, headers, body)
end
