-- wrk reporter shared by every bench script: counts each response whose
-- status is not 2xx (wrk itself counts only >= 400) and prints one JSON line
-- with the figures the bench table needs. Other scripts load it with
-- dofile() and add their own request().
local threads = {}
local bad = 0      -- this thread's non-2xx responses
local statuses = {} -- this thread's non-2xx responses by status

function setup(thread)
	thread:set("tid", #threads + 1)
	table.insert(threads, thread)
end

function response(status, headers, body)
	if status < 200 or status > 299 then
		bad = bad + 1
		statuses[status] = (statuses[status] or 0) + 1
		-- A string, because thread:get() copies plain values only.
		local parts = {}
		for s, n in pairs(statuses) do
			table.insert(parts, s .. ":" .. n)
		end
		non2xx = table.concat(parts, ",")
	end
	nbad = bad
end

function done(summary, latency, requests)
	local non2xx, byst = 0, {}
	for _, t in ipairs(threads) do
		non2xx = non2xx + (t:get("nbad") or 0)
		for s, n in string.gmatch(t:get("non2xx") or "", "(%d+):(%d+)") do
			byst[s] = (byst[s] or 0) + tonumber(n)
		end
	end
	local parts = {}
	for s, n in pairs(byst) do
		table.insert(parts, string.format('"%s":%d', s, n))
	end
	-- Transport errors plus every non-2xx response (>= 400 ones are in both
	-- wrk's status count and ours: count them once).
	local errors = summary.errors.connect + summary.errors.read + summary.errors.write
		+ summary.errors.timeout + non2xx
	io.write(string.format(
		'{"requests":%d,"duration_us":%d,"rps":%.1f,"errors":%d,"statuses":{%s},'
		.. '"p50_us":%d,"p99_us":%d}\n',
		summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
		errors, table.concat(parts, ","), latency:percentile(50), latency:percentile(99)))
end
