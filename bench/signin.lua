-- wrk script: POST /t/<tenant>/api/v1/authn with a valid username and password.
-- Set BENCH_USER and BENCH_PASSWORD in the environment.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"username":"%s","password":"%s"}', os.getenv("BENCH_USER"),
                         os.getenv("BENCH_PASSWORD"))
