-- wrk reporter: one JSON line with the figures the bench table needs.
done = function(summary, latency, requests)
	local errors = summary.errors.connect + summary.errors.read + summary.errors.write
		+ summary.errors.status + summary.errors.timeout
	io.write(string.format(
		'{"requests":%d,"duration_us":%d,"rps":%.1f,"errors":%d,"p50_us":%d,"p99_us":%d}\n',
		summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
		errors, latency:percentile(50), latency:percentile(99)))
end
