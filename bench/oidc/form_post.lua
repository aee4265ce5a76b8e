-- wrk script: POST an application/x-www-form-urlencoded body with HTTP Basic client
-- authentication (client_secret_basic). Set BENCH_BODY (the form, already encoded) and
-- BENCH_BASIC (base64 of "client_id:client_secret") in the environment.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")
wrk.body = os.getenv("BENCH_BODY")
