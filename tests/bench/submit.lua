-- POST a submission (the request path of wrk's URL) with the token in
-- $BENCH_TOKEN and an Idempotency-Key unique to this run ($BENCH_NONCE),
-- thread and request, so every request is a new write, never a replay.
dofile(string.match(debug.getinfo(1, "S").source, "^@(.*/)") .. "report.lua")

local nonce = assert(os.getenv("BENCH_NONCE"), "BENCH_NONCE")
local headers = {
	["Authorization"] = "Bearer " .. assert(os.getenv("BENCH_TOKEN"), "BENCH_TOKEN"),
	["Content-Type"] = "application/json",
}
local body = '{"answer":"bench answer"}'
local n = 0

function request()
	n = n + 1
	headers["Idempotency-Key"] = nonce .. "-" .. tid .. "-" .. n
	return wrk.format("POST", nil, headers, body)
end
