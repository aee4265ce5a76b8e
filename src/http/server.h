#pragma once

// The HTTP/1.1 server: Boost.Beast on Asio with C++20 coroutines. The only code that knows the
// HTTP library; handlers see api::Request and api::Response.
//
// Threads: `network_threads` run the I/O (accepting, parsing, writing, timers) and never block.
// Every handler runs on a separate pool of `worker_threads`, where it may block (store, password
// hashing); the connection waits for it without holding a network thread. A positive
// Response::delay is waited out on a timer, holding no thread.
//
// Every response carries X-Request-Id (the client's own when it is 1-64 characters of
// [A-Za-z0-9_-], else a generated one, also in Request::request_id), Server: custos, and,
// unless the handler set them, Cache-Control: no-store and X-Content-Type-Options: nosniff.
// Handler headers that could split the response (CR, LF, NUL, a bad name) are dropped and
// logged; Content-Length, Transfer-Encoding and Connection are the server's. Errors the server
// produces itself (400, 404, 405, 413, 431, 500) are JSON in the management API's error shape.
//
// Built-in routes: GET /healthz, GET /readyz (503 when the readiness check fails),
// GET /metrics (Prometheus text). Each request adds to custos_http_requests_total{route,method,
// status} and custos_http_request_duration_seconds{route,method} (route is the matched pattern,
// or "unmatched") and writes one access log line (common/logging.h LogAccess).
//
// Shutdown (Shutdown(), or SIGINT/SIGTERM under RunUntilSignal): stop accepting, close idle
// keep-alive connections, let in-flight requests finish and answer them with
// "Connection: close"; connections still open after `shutdown_grace` are closed. Run() returns
// once the handler pool has joined, so the caller may then close the store.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "api/http_types.h"
#include "common/config.h"
#include "common/metrics.h"

namespace custos::http {

struct ServerOptions {
  std::string listen_address = "127.0.0.1";  // IPv4 or IPv6 literal
  int port = 8080;                           // 0 picks a free port; see Server::port()
  int network_threads = 1;
  int worker_threads = 0;               // 0: std::thread::hardware_concurrency()
  int64_t max_body_bytes = 1 << 20;     // larger bodies get 413
  int64_t max_header_bytes = 16 << 10;  // request line plus headers; larger get 431
  // Whole request (headers and body) must arrive within this, and each response be written.
  absl::Duration request_timeout = absl::Seconds(30);
  // A keep-alive connection with no request started is closed after this.
  absl::Duration idle_timeout = absl::Seconds(60);
  absl::Duration shutdown_grace = absl::Seconds(20);
  std::string public_base_url;  // empty: http://<listen_address>:<port>
};

// The [server] settings of the configuration.
ServerOptions ServerOptionsFromConfig(const Config& config);

// Thread-safety: construct, SetReadinessCheck and Start from one thread; then Run (or
// RunUntilSignal) blocks that thread or another. Shutdown() and port() may be called from any
// thread, including from a handler. A Server runs once: after Run returns it cannot be
// restarted.
class Server {
 public:
  // `routes` are served alongside the built-in ones (which a route may not redeclare).
  // `metrics` must outlive the Server.
  Server(const ServerOptions& options, std::vector<api::Route> routes, Metrics& metrics);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Called on a worker thread for each GET /readyz; 503 when it returns an error (whose message
  // is logged, not shown). Without one, /readyz answers 200 once the server runs.
  void SetReadinessCheck(std::function<absl::Status()> check);

  // Validates the routes and binds the listening socket. After OK, port() is the bound port.
  absl::Status Start();
  int port() const;
  // The public base URL given to handlers as Request::base_url.
  const std::string& base_url() const;

  // Serves until Shutdown; returns after the drain described above. Requires a successful
  // Start.
  void Run();
  // Run, with SIGINT and SIGTERM calling Shutdown.
  void RunUntilSignal();
  // Begins the graceful shutdown; returns at once. Idempotent; before Run, makes Run return
  // promptly.
  void Shutdown();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace custos::http
