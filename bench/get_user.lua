-- wrk script: GET /t/<tenant>/api/v1/users/<id> with an SSWS token.
-- Set BENCH_TOKEN in the environment; the URL given to wrk names the user.
wrk.method = "GET"
wrk.headers["Authorization"] = "SSWS " .. os.getenv("BENCH_TOKEN")
