-- GET with "Authorization: Bearer $BENCH_TOKEN" (an access token of a user).
dofile(string.match(debug.getinfo(1, "S").source, "^@(.*/)") .. "report.lua")

wrk.headers["Authorization"] = "Bearer " .. assert(os.getenv("BENCH_TOKEN"), "BENCH_TOKEN")
