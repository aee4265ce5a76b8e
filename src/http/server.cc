#include "http/server.h"

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility> (GCC 12).
#include <utility>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <exception>
#include <limits>
#include <optional>
#include <random>
#include <string_view>
#include <thread>

#include <sys/resource.h>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/errors.h"
#include "common/logging.h"
#include "common/rate_limiter.h"
#include "http/router.h"

namespace custos::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;

constexpr std::string_view kUnmatchedRoute = "unmatched";
// After an error response the server stops reading the request; it drains what the client is
// still sending for up to this long (and this much) before closing, so that the close does not
// turn into a TCP reset that destroys the response before the client reads it.
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr size_t kLingerBytes = 1 << 20;
// How often the drain checks whether the last connection has gone.
constexpr auto kDrainPoll = std::chrono::milliseconds(10);
// File descriptors kept for everything but client connections (store, logs, listener).
constexpr rlim_t kReservedFileDescriptors = 128;
constexpr std::string_view kSignInRoutePrefix = "/t/{tenant}/api/v1/authn";
constexpr std::string_view kRateLimitSummary =
    "API call exceeded rate limit due to too many requests.";

// Beast 1.74 speaks boost::string_view.
std::string_view SV(beast::string_view s) { return {s.data(), s.size()}; }

std::chrono::nanoseconds ToChrono(absl::Duration d) { return absl::ToChronoNanoseconds(d); }

// Request ids are for correlation, not secrets: a per-thread PRNG seeded from the
// kernel is enough.
std::string RandomBase62(size_t n) {
  static constexpr char kAlphabet[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out(n, '0');
  for (char& c : out) c = kAlphabet[rng() % 62];
  return out;
}

// Always the server's own: the id ends up in System Log events (transaction.id, errorId), so a
// client must not be able to choose it and make its requests look like someone else's.
std::string NewRequestId() { return RandomBase62(20); }

bool IsTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// A handler's header is sent only if it cannot split the response.
bool ValidHeader(std::string_view name, std::string_view value) {
  if (name.empty() || !std::all_of(name.begin(), name.end(), IsTokenChar)) return false;
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Decodes the %XX escapes that are well formed and keeps the rest as they are: a path the router
// refuses still says where it was going.
std::string DecodeWhatDecodes(std::string_view in) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
      out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

// Whether the request target's path is `prefix` or below it, by whole segments.
bool TargetUnder(std::string_view target, std::string_view prefix) {
  auto under = [prefix](std::string_view path) {
    return path.starts_with(prefix) && (path.size() == prefix.size() || path[prefix.size()] == '/');
  };
  const std::string_view path = target.substr(0, target.find('?'));
  return under(path) || under(DecodeWhatDecodes(path));
}

// RFC 9110 IMF-fixdate, which clients compare with X-Rate-Limit-Reset.
std::string HttpDate(absl::Time t) {
  return absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", t, absl::UTCTimeZone());
}

int64_t CeilSeconds(absl::Duration d) {
  return static_cast<int64_t>(std::ceil(absl::ToDoubleSeconds(d)));
}

// Lets the process hold `connections` client sockets besides its own files, if the hard limit
// allows. Returns the connections the soft limit leaves room for.
rlim_t RaiseOpenFileLimit(rlim_t connections) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return connections;
  rlim_t wanted = connections + kReservedFileDescriptors;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < wanted) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, limit.rlim_max);
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= wanted) return connections;
  return limit.rlim_cur > kReservedFileDescriptors ? limit.rlim_cur - kReservedFileDescriptors : 0;
}

// Where a route's handler runs.
enum class Placement {
  kNetworkThread,  // cheap and non-blocking: answered without any queue
  kReadinessThread,
  kWorkerPool,
};

Placement PlacementOf(const api::Route& route) {
  if (route.method == "GET" && (route.pattern == "/healthz" || route.pattern == "/metrics")) {
    return Placement::kNetworkThread;
  }
  if (route.method == "GET" && route.pattern == "/readyz") return Placement::kReadinessThread;
  return Placement::kWorkerPool;
}

std::string MethodLabel(std::string_view method) {
  for (std::string_view m : {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}) {
    if (method == m) return std::string(m);
  }
  return "OTHER";
}

struct ErrorReply {
  api::Response response;
  std::string error_id;
};

// The management API's error shape, which clients of that API already parse. The errorId is
// derived from the request id as api/ derives it, so either finds the request's log line.
ErrorReply MakeError(int status, std::string_view code, std::string_view summary,
                     std::string_view request_id) {
  ErrorReply out;
  out.error_id = fmt::format("oae{}", request_id);
  OrderedJson j;
  j["errorCode"] = code;
  j["errorSummary"] = summary;
  j["errorLink"] = code;
  j["errorId"] = out.error_id;
  j["errorCauses"] = OrderedJson::array();
  out.response.status = status;
  out.response.body = DumpJson(j);
  out.response.AddHeader("Content-Type", "application/json");
  return out;
}

// One accepted connection. All members are used only on the connection's strand.
struct Connection {
  explicit Connection(tcp::socket socket)
      : stream(std::move(socket)), delay_timer(stream.get_executor()) {}

  void Close() {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.close();
    delay_timer.cancel();
  }

  beast::tcp_stream stream;
  asio::steady_timer delay_timer;
  // True while waiting for the first byte of a request: the only state in which a shutdown
  // may close the connection without cutting a request short.
  bool idle = true;
  std::string remote_ip;
  std::string rate_limit_key;
};

}  // namespace

ServerOptions ServerOptionsFromConfig(const Config& config) {
  ServerOptions o;
  o.listen_address = config.listen_address;
  o.port = config.port;
  o.network_threads = config.network_threads;
  o.worker_threads = config.worker_threads;
  o.max_body_bytes = config.max_body_bytes;
  o.request_timeout = config.request_timeout;
  o.idle_timeout = config.idle_timeout;
  o.shutdown_grace = config.shutdown_grace;
  o.public_base_url = config.public_base_url;
  o.max_connections = config.max_connections;
  o.max_pending_requests = config.max_pending_requests;
  // Sign-in, and the support plane's endpoints that anyone may call before holding an account
  // credential (operator token exchange, device enrolment and posture reports).
  o.rate_limited_route_prefixes = {std::string(kSignInRoutePrefix), "/t/{tenant}/oauth2/v1/login",
                                   "/provider/oauth2/v1/token", "/provider/api/v1/devices/enroll",
                                   "/provider/api/v1/devices/{deviceId}/posture"};
  o.rate_limit_per_second = config.authn_rate_per_ip;
  o.rate_limit_burst = config.authn_burst_per_ip;
  return o;
}

class Server::Impl {
 public:
  Impl(const ServerOptions& options, std::vector<api::Route> routes, Metrics& metrics)
      : options_(options),
        routes_(std::move(routes)),
        metrics_(metrics),
        requests_total_(metrics.AddCounter("custos_http_requests_total",
                                           "HTTP requests answered, by route pattern.",
                                           {"route", "method", "status"})),
        request_seconds_(metrics.AddHistogram(
            "custos_http_request_duration_seconds",
            "Time from the first byte of a request to the last byte of its response.",
            {"route", "method"})),
        connections_refused_(metrics.AddCounter(
            "custos_http_connections_refused_total",
            "Connections closed on accept because server.max_connections were open.", {})),
        requests_rejected_(metrics.AddCounter(
            "custos_http_requests_rejected_total",
            "Requests refused without calling their handler: max_pending_requests (503) or "
            "rate_limit (429).",
            {"reason"})),
        clock_(options.clock != nullptr ? *options.clock : SystemClock::Get()),
        builtin_rate_limiter_(
            {.rate_per_second = options.rate_limit_per_second, .burst = options.rate_limit_burst},
            clock_),
        rate_limiter_(options.rate_limiter != nullptr ? *options.rate_limiter
                                                      : builtin_rate_limiter_),
        max_connections_(static_cast<size_t>(std::max(options.max_connections, 1))),
        control_(asio::make_strand(ioc_)),
        acceptor_(control_),
        readiness_pool_(1),
        pool_(WorkerCount(options.worker_threads)) {
    // Zero series from the start, so that a rate over them is defined before the first refusal.
    connections_refused_.Increment({}, 0);
    requests_rejected_.Increment({"max_pending_requests"}, 0);
    requests_rejected_.Increment({"rate_limit"}, 0);
  }

  ~Impl() {
    // Run() normally joined the pools; this covers a Server destroyed without running.
    pool_.stop();
    pool_.join();
    readiness_pool_.stop();
    readiness_pool_.join();
  }

  void SetReadinessCheck(std::function<absl::Status()> check) { readiness_ = std::move(check); }

  absl::Status Start() {
    if (router_.has_value()) return absl::FailedPreconditionError("server already started");
    std::vector<api::Route> routes = std::move(routes_);
    AddBuiltinRoutes(routes);
    absl::StatusOr<Router> router = Router::Create(std::move(routes));
    if (!router.ok()) return router.status();

    beast::error_code ec;
    asio::ip::address address = asio::ip::make_address(options_.listen_address, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          fmt::format("listen address '{}' is not an IP address", options_.listen_address));
    }
    if (options_.port < 0 || options_.port > 65535) {
      return absl::InvalidArgumentError(fmt::format("port {} is out of range", options_.port));
    }
    tcp::endpoint endpoint(address, static_cast<unsigned short>(options_.port));
    auto fail = [&](std::string_view what) {
      return absl::UnavailableError(fmt::format(
          "cannot {} {}:{}: {}", what, options_.listen_address, options_.port, ec.message()));
    };
    if (acceptor_.open(endpoint.protocol(), ec); ec) return fail("open socket for");
    if (acceptor_.set_option(asio::socket_base::reuse_address(true), ec); ec) {
      return fail("set SO_REUSEADDR on");
    }
    if (acceptor_.bind(endpoint, ec); ec) return fail("bind");
    if (acceptor_.listen(asio::socket_base::max_listen_connections, ec); ec) {
      return fail("listen on");
    }
    port_ = acceptor_.local_endpoint(ec).port();
    if (ec) return fail("read the port of");

    if (rlim_t room = RaiseOpenFileLimit(max_connections_); room < max_connections_) {
      Log(LogLevel::kWarn, "the open-file limit is lower than server.max_connections needs",
          {{"max_connections", max_connections_}, {"room_for", room}});
    }

    if (!options_.public_base_url.empty()) {
      base_url_ = options_.public_base_url;
      while (base_url_.ends_with('/')) base_url_.pop_back();
    } else if (address.is_v6()) {
      base_url_ = fmt::format("http://[{}]:{}", options_.listen_address, port_);
    } else {
      base_url_ = fmt::format("http://{}:{}", options_.listen_address, port_);
    }
    router_ = *std::move(router);
    return absl::OkStatus();
  }

  int port() const { return port_; }
  const std::string& base_url() const { return base_url_; }

  void Run() {
    asio::co_spawn(control_, AcceptLoop(), asio::detached);
    Log(LogLevel::kInfo, "listening", {{"address", options_.listen_address}, {"port", port_}});
    std::vector<std::thread> threads;
    for (int i = 1; i < options_.network_threads; ++i) {
      threads.emplace_back([this] { RunIoContext(); });
    }
    RunIoContext();
    for (std::thread& t : threads) t.join();
    // In-flight handlers finished before the io_context ran out of work, unless the grace
    // period ran out first; either way the pool must be idle before the caller closes the store.
    pool_.join();
    readiness_pool_.join();
    Log(LogLevel::kInfo, "stopped");
  }

  void RunUntilSignal() {
    signals_.emplace(control_, SIGINT, SIGTERM);
    signals_->async_wait([this](const beast::error_code& ec, int signal) {
      if (ec) return;
      Log(LogLevel::kInfo, "shutting down on signal", {{"signal", signal}});
      Shutdown();
    });
    Run();
  }

  void Shutdown() {
    if (stopping_.exchange(true)) return;
    asio::co_spawn(control_, Drain(), asio::detached);
  }

 private:
  static int WorkerCount(int configured) {
    if (configured > 0) return configured;
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }

  void RunIoContext() {
    // Our coroutines catch their own errors; this guards against a library throwing from a
    // completion handler, which would otherwise end the thread.
    while (true) {
      try {
        ioc_.run();
        return;
      } catch (const std::exception& e) {
        Log(LogLevel::kError, "network thread caught an exception", {{"what", e.what()}});
      }
    }
  }

  void AddBuiltinRoutes(std::vector<api::Route>& routes) {
    routes.push_back({"GET", "/healthz", [](api::Request&) {
                        return api::Response::MakeJson(200, {{"status", "ok"}});
                      }});
    routes.push_back(
        {"GET", "/readyz", [this](api::Request&) {
           if (readiness_) {
             absl::Status st = readiness_();
             if (!st.ok()) {
               Log(LogLevel::kWarn, "not ready", {{"reason", std::string(st.message())}});
               return api::Response::MakeJson(503, {{"status", "unavailable"}});
             }
           }
           return api::Response::MakeJson(200, {{"status", "ok"}});
         }});
    routes.push_back({"GET", "/metrics", [this](api::Request&) {
                        api::Response r;
                        r.body = metrics_.TextExposition() + GaugeText();
                        r.AddHeader("Content-Type", std::string(Metrics::kContentType));
                        return r;
                      }});
  }

  // The registry has no gauges; these two are rendered here, in the same text format.
  std::string GaugeText() {
    return fmt::format(
        "# HELP custos_http_connections_open Client connections open.\n"
        "# TYPE custos_http_connections_open gauge\n"
        "custos_http_connections_open {}\n"
        "# HELP custos_http_pending_requests Handler calls waiting for or running on the worker "
        "pool.\n"
        "# TYPE custos_http_pending_requests gauge\n"
        "custos_http_pending_requests {}\n",
        ConnectionCount(), pending_.load());
  }

  void Register(const std::shared_ptr<Connection>& c) {
    absl::MutexLock lock(&connections_mu_);
    connections_.emplace(c.get(), c);
  }
  void Unregister(Connection* c) {
    absl::MutexLock lock(&connections_mu_);
    connections_.erase(c);
  }
  size_t ConnectionCount() {
    absl::MutexLock lock(&connections_mu_);
    return connections_.size();
  }
  // Posts `fn` to each live connection's strand.
  template <typename Fn>
  void ForEachConnection(Fn fn) {
    std::vector<std::shared_ptr<Connection>> live;
    {
      absl::MutexLock lock(&connections_mu_);
      for (const auto& [ptr, weak] : connections_) {
        if (auto c = weak.lock()) live.push_back(std::move(c));
      }
    }
    for (auto& c : live) {
      asio::post(c->stream.get_executor(), [c, fn] { fn(*c); });
    }
  }

  awaitable<void> AcceptLoop() {
    while (!stopping_) {
      beast::error_code ec;
      auto socket = co_await acceptor_.async_accept(asio::make_strand(ioc_),
                                                    asio::redirect_error(use_awaitable, ec));
      if (stopping_ || ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
      if (ec) {
        // E.g. out of file descriptors: back off instead of spinning on the error.
        Log(LogLevel::kWarn, "accept failed", {{"error", ec.message()}});
        asio::steady_timer backoff(control_, std::chrono::milliseconds(50));
        co_await backoff.async_wait(asio::redirect_error(use_awaitable, ec));
        continue;
      }
      if (ConnectionCount() >= max_connections_) {
        // Accepting and closing keeps the backlog moving, so the refusal is quick and clients
        // do not sit in a full backlog until they time out.
        connections_refused_.Increment({});
        socket.close(ec);
        continue;
      }
      auto connection = std::make_shared<Connection>(std::move(socket));
      tcp::endpoint peer = connection->stream.socket().remote_endpoint(ec);
      if (!ec) {
        connection->remote_ip = peer.address().to_string();
        connection->rate_limit_key = RateLimitKeyOf(peer.address().to_string());
      }
      Register(connection);
      asio::co_spawn(connection->stream.get_executor(), Serve(connection), asio::detached);
    }
  }

  awaitable<void> Drain() {
    beast::error_code ec;
    acceptor_.close(ec);
    if (signals_.has_value()) signals_->cancel(ec);
    // Runs on each connection's strand, so it cannot interleave with Serve deciding to read
    // the next request: either Serve sees stopping_ first, or it is idle here.
    ForEachConnection([](Connection& c) {
      if (c.idle) c.Close();
    });
    asio::steady_timer timer(control_);
    auto deadline = std::chrono::steady_clock::now() + ToChrono(options_.shutdown_grace);
    while (ConnectionCount() > 0 && std::chrono::steady_clock::now() < deadline) {
      timer.expires_after(kDrainPoll);
      co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    }
    if (size_t n = ConnectionCount(); n > 0) {
      Log(LogLevel::kWarn, "closing connections after the shutdown grace period",
          {{"connections", n}});
      ForEachConnection([](Connection& c) { c.Close(); });
      // A connection whose handler is still running keeps the io_context busy until the
      // handler returns; stopping lets Run() go on to join the pool, which waits for it.
      timer.expires_after(std::chrono::milliseconds(100));
      co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
      if (ConnectionCount() > 0) ioc_.stop();
    }
  }

  awaitable<void> Serve(std::shared_ptr<Connection> c) {
    struct Unregisterer {
      Impl* impl;
      Connection* c;
      ~Unregisterer() { impl->Unregister(c); }
    } unregister{this, c.get()};

    try {
      beast::error_code ec;
      beast::flat_buffer buffer;
      while (true) {
        c->idle = true;
        if (stopping_) break;
        if (buffer.size() == 0) {
          c->stream.expires_after(ToChrono(options_.idle_timeout));
          size_t n = co_await c->stream.async_read_some(buffer.prepare(4096),
                                                        asio::redirect_error(use_awaitable, ec));
          if (ec) break;  // Closed by the client, idle timeout, or shutdown.
          buffer.commit(n);
        }
        c->idle = false;
        if (!co_await ServeOne(*c, buffer)) break;
      }
    } catch (const std::exception& e) {
      Log(LogLevel::kError, "connection failed", {{"what", e.what()}});
    }
    c->Close();
  }

  // Reads, handles and answers one request. Returns whether the connection stays open.
  awaitable<bool> ServeOne(Connection& c, beast::flat_buffer& buffer) {
    auto start = std::chrono::steady_clock::now();
    beast::error_code ec;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(
        std::clamp<int64_t>(options_.max_header_bytes, 1, std::numeric_limits<uint32_t>::max())));
    parser.body_limit(static_cast<uint64_t>(std::max<int64_t>(options_.max_body_bytes, 0)));

    c.stream.expires_after(ToChrono(options_.request_timeout));
    co_await bhttp::async_read_header(c.stream, buffer, parser,
                                      asio::redirect_error(use_awaitable, ec));
    if (!ec && !parser.is_done()) {
      if (bhttp::token_list(parser.get()[bhttp::field::expect]).exists("100-continue")) {
        bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
        co_await bhttp::async_write(c.stream, cont, asio::redirect_error(use_awaitable, ec));
      }
      if (!ec) {
        co_await bhttp::async_read(c.stream, buffer, parser,
                                   asio::redirect_error(use_awaitable, ec));
      }
    }
    RequestInfo info;
    info.start = start;
    info.remote_ip = c.remote_ip;
    if (ec) {
      // No response is possible after a timeout (the stream closed the socket) or when the
      // client went away; anything else the parser rejected gets an answer and a close.
      if (ec == beast::error::timeout || ec == bhttp::error::end_of_stream ||
          ec == bhttp::error::partial_message ||
          ec.category() != bhttp::make_error_code(bhttp::error::body_limit).category()) {
        co_return false;
      }
      // A body over the limit is refused once its headers are in; they still name the
      // request for the log.
      const auto& partial = parser.get();
      info.method = std::string(partial.method_string());
      info.target = std::string(partial.target());
      info.request_id = NewRequestId();
      if (ec == bhttp::error::body_limit || parser.is_header_done()) {
        info.user_agent = std::string(partial[bhttp::field::user_agent]);
        std::string_view target = info.target;
        absl::StatusOr<RouteMatch> match =
            router_->Match(info.method, target.substr(0, target.find('?')));
        if (match.ok() && match->kind == RouteMatch::Kind::kFound) {
          info.route = match->route->pattern;
        }
      }
      ErrorReply e =
          ec == bhttp::error::body_limit
              ? MakeError(413, kErrValidation, "Request body too large", info.request_id)
          : ec == bhttp::error::header_limit
              ? MakeError(431, kErrValidation, "Request header fields too large", info.request_id)
              : MakeError(400, kErrValidation, "Bad request: malformed HTTP request",
                          info.request_id);
      info.error_id = e.error_id;
      co_await Respond(c, info, std::move(e.response), /*keep_alive=*/false, 11);
      co_return false;
    }

    bhttp::request<bhttp::string_body> hreq = parser.release();
    api::Request req;
    req.method = std::string(hreq.method_string());
    req.target = std::string(hreq.target());
    for (const auto& field : hreq) {
      auto [it, inserted] =
          req.headers.try_emplace(Lower(SV(field.name_string())), std::string(field.value()));
      if (!inserted) {
        it->second += ", ";
        it->second += SV(field.value());
      }
    }
    req.body = std::move(hreq.body());
    req.remote_ip = c.remote_ip;
    req.request_id = NewRequestId();
    req.base_url = base_url_;
    info.method = req.method;
    info.target = req.target;
    info.request_id = req.request_id;
    info.user_agent = req.Header("user-agent");
    bool keep_alive = hreq.keep_alive();

    std::string_view target = req.target;
    size_t q = target.find('?');
    absl::StatusOr<RouteMatch> match = router_->Match(req.method, target.substr(0, q));
    absl::StatusOr<absl::flat_hash_map<std::string, std::string>> query =
        q == std::string_view::npos ? absl::flat_hash_map<std::string, std::string>()
                                    : ParseQuery(target.substr(q + 1));
    api::Response response;
    if (!match.ok() || !query.ok()) {
      ErrorReply e =
          MakeError(400, kErrValidation, "Bad request: malformed request target", req.request_id);
      info.error_id = e.error_id;
      response = std::move(e.response);
      keep_alive = false;
    } else if (match->kind == RouteMatch::Kind::kNotFound) {
      ErrorReply e =
          MakeError(404, kErrNotFound,
                    fmt::format("Not found: Resource not found: {} (path)", match->decoded_path),
                    req.request_id);
      info.error_id = e.error_id;
      response = std::move(e.response);
    } else if (match->kind == RouteMatch::Kind::kMethodNotAllowed) {
      ErrorReply e =
          MakeError(405, kErrMethod, "The endpoint does not support the provided HTTP method",
                    req.request_id);
      info.error_id = e.error_id;
      response = std::move(e.response);
      std::string allow;
      for (const std::string& m : match->allowed_methods) {
        if (!allow.empty()) allow += ", ";
        allow += m;
      }
      response.AddHeader("Allow", allow);
    } else {
      const api::Route& route = *match->route;
      info.route = route.pattern;
      req.path = std::move(match->decoded_path);
      req.query = *std::move(query);
      req.path_params = std::move(match->path_params);
      response = co_await Dispatch(c, route, req, info);
      if (response.delay > absl::ZeroDuration()) {
        c.delay_timer.expires_after(ToChrono(response.delay));
        co_await c.delay_timer.async_wait(asio::redirect_error(use_awaitable, ec));
        if (ec) co_return false;  // Closed by the end of the shutdown grace period.
      }
    }
    co_return co_await Respond(c, info, std::move(response), keep_alive, hreq.version());
  }

  struct RequestInfo {
    std::chrono::steady_clock::time_point start;
    std::string method;
    std::string target;
    std::string route{kUnmatchedRoute};
    std::string request_id;
    std::string remote_ip;
    std::string user_agent;
    std::string error_id;
  };

  // Runs the handler where its placement says, unless admission control refuses the request;
  // both refusals are decided here, on the network thread, before anything is queued.
  awaitable<api::Response> Dispatch(const Connection& c, const api::Route& route, api::Request& req,
                                    RequestInfo& info) {
    switch (PlacementOf(route)) {
      case Placement::kNetworkThread:
        co_return CallHandler(route, req, info);
      case Placement::kReadinessThread:
        co_return co_await asio::co_spawn(
            readiness_pool_.get_executor(),
            [&]() -> awaitable<api::Response> { co_return CallHandler(route, req, info); },
            use_awaitable);
      case Placement::kWorkerPool:
        break;
    }
    const bool rate_limited = IsRateLimited(route);
    if (rate_limited && !rate_limiter_.blocking()) {
      RateLimitDecision d = rate_limiter_.Acquire(c.rate_limit_key);
      if (!d.allowed) {
        requests_rejected_.Increment({"rate_limit"});
        co_return RateLimitedResponse(d, req, info);
      }
    }
    // Counted before queueing and released by the worker when the handler returns, so the
    // count covers both the queue and the running handlers.
    if (pending_.fetch_add(1) >= options_.max_pending_requests) {
      pending_.fetch_sub(1);
      requests_rejected_.Increment({"max_pending_requests"});
      ErrorReply e = MakeError(503, kErrInternal, "Service Unavailable", req.request_id);
      e.response.AddHeader("Retry-After", "1");
      info.error_id = e.error_id;
      co_return std::move(e.response);
    }
    co_return co_await asio::co_spawn(
        pool_.get_executor(),
        [&]() -> awaitable<api::Response> {
          struct Release {
            std::atomic<int>& pending;
            ~Release() { pending.fetch_sub(1); }
          } release{pending_};
          // A limit that waits on I/O (the store) is asked here, off the network threads.
          if (rate_limited && rate_limiter_.blocking()) {
            RateLimitDecision d = rate_limiter_.Acquire(c.rate_limit_key);
            if (!d.allowed) {
              requests_rejected_.Increment({"rate_limit"});
              co_return RateLimitedResponse(d, req, info);
            }
          }
          co_return CallHandler(route, req, info);
        },
        use_awaitable);
  }

  bool IsRateLimited(const api::Route& route) const {
    if (!rate_limiter_.enabled()) return false;
    return std::any_of(options_.rate_limited_route_prefixes.begin(),
                       options_.rate_limited_route_prefixes.end(), [&](const std::string& prefix) {
                         // Whole segments only: ".../devices/enroll" must not cover
                         // ".../enrollment_tokens".
                         return route.pattern == prefix || route.pattern.starts_with(prefix + "/");
                       });
  }

  api::Response RateLimitedResponse(const RateLimitDecision& d, const api::Request& req,
                                    RequestInfo& info) {
    absl::Time now = clock_.Now();
    ErrorReply e = MakeError(429, kErrRateLimit, kRateLimitSummary, req.request_id);
    api::Response& r = e.response;
    // Whole seconds, rounded up, so that a client waiting that long finds a token.
    int64_t reset = CeilSeconds(d.reset - absl::UnixEpoch());
    r.AddHeader("Retry-After", std::to_string(std::max<int64_t>(1, CeilSeconds(d.retry_after))));
    r.AddHeader("X-Rate-Limit-Limit", std::to_string(d.limit));
    r.AddHeader("X-Rate-Limit-Remaining", std::to_string(d.remaining));
    r.AddHeader("X-Rate-Limit-Reset", std::to_string(reset));
    // Okta's SDKs wait X-Rate-Limit-Reset minus Date before retrying.
    r.AddHeader("Date", HttpDate(now));
    info.error_id = e.error_id;
    return std::move(r);
  }

  // Runs on a worker thread, or for the cheap built-in routes, where PlacementOf says.
  api::Response CallHandler(const api::Route& route, api::Request& req, RequestInfo& info) {
    try {
      api::Response r = route.handler(req);
      if (r.status >= 100 && r.status <= 599) return r;
      Log(LogLevel::kError, "handler returned an invalid status",
          {{"route", route.pattern}, {"status", r.status}, {"request_id", req.request_id}});
    } catch (const std::exception& e) {
      Log(LogLevel::kError, "handler threw",
          {{"route", route.pattern}, {"what", e.what()}, {"request_id", req.request_id}});
    } catch (...) {
      Log(LogLevel::kError, "handler threw",
          {{"route", route.pattern}, {"request_id", req.request_id}});
    }
    ErrorReply e = MakeError(500, kErrInternal, "Internal Server Error", req.request_id);
    info.error_id = e.error_id;
    return std::move(e.response);
  }

  // Writes the response, records it, and closes the connection when it does not stay open.
  awaitable<bool> Respond(Connection& c, const RequestInfo& info, api::Response response,
                          bool keep_alive, unsigned version) {
    keep_alive = keep_alive && !stopping_;
    for (const PathHeaders& extra : options_.path_headers) {
      if (!TargetUnder(info.target, extra.prefix)) continue;
      for (const auto& [name, value] : extra.headers) {
        const std::string lower = Lower(name);
        const bool has = std::any_of(response.headers.begin(), response.headers.end(),
                                     [&](const auto& h) { return Lower(h.first) == lower; });
        if (!has) response.AddHeader(name, value);
      }
    }
    bhttp::response<bhttp::string_body> res;
    res.version(version == 10 ? 10 : 11);
    res.result(static_cast<unsigned>(response.status));
    bool has_cache_control = false;
    bool has_nosniff = false;
    for (const auto& [name, value] : response.headers) {
      std::string lower = Lower(name);
      // The server owns framing and connection management.
      if (lower == "content-length" || lower == "transfer-encoding" || lower == "connection" ||
          lower == "server" || lower == "x-request-id") {
        continue;
      }
      if (!ValidHeader(name, value)) {
        Log(LogLevel::kError, "dropped an invalid response header",
            {{"route", info.route}, {"header", name}, {"request_id", info.request_id}});
        continue;
      }
      has_cache_control = has_cache_control || lower == "cache-control";
      has_nosniff = has_nosniff || lower == "x-content-type-options";
      res.insert(name, value);
    }
    if (!has_cache_control) res.set(bhttp::field::cache_control, "no-store");
    if (!has_nosniff) res.set("X-Content-Type-Options", "nosniff");
    res.set(bhttp::field::server, "custos");
    res.set("X-Request-Id", info.request_id);
    res.body() = std::move(response.body);
    res.keep_alive(keep_alive);
    res.prepare_payload();

    beast::error_code ec;
    c.stream.expires_after(ToChrono(options_.request_timeout));
    co_await bhttp::async_write(c.stream, res, asio::redirect_error(use_awaitable, ec));
    Record(info, response.status);
    if (ec) co_return false;
    if (!keep_alive) {
      co_await LingeringClose(c);
      co_return false;
    }
    co_return true;
  }

  void Record(const RequestInfo& info, int status) {
    auto elapsed = std::chrono::steady_clock::now() - info.start;
    double seconds = std::chrono::duration<double>(elapsed).count();
    std::string method = MethodLabel(info.method);
    requests_total_.Increment({info.route, method, std::to_string(status)});
    request_seconds_.Observe({info.route, method}, seconds);
    LogAccess({.request_id = info.request_id,
               .method = info.method,
               .route = info.route,
               .target = info.target,
               .status = status,
               .duration_ms = seconds * 1000,
               .remote_ip = info.remote_ip,
               .user_agent = info.user_agent,
               .error_id = info.error_id});
  }

  awaitable<void> LingeringClose(Connection& c) {
    beast::error_code ec;
    c.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    c.stream.expires_after(
        std::min<std::chrono::nanoseconds>(kLingerTime, ToChrono(options_.request_timeout)));
    char discard[4096];
    size_t total = 0;
    while (!ec && total < kLingerBytes) {
      total += co_await c.stream.async_read_some(asio::buffer(discard),
                                                 asio::redirect_error(use_awaitable, ec));
    }
    c.Close();
  }

  const ServerOptions options_;
  std::vector<api::Route> routes_;  // until Start hands them to the router
  Metrics& metrics_;
  Counter& requests_total_;
  Histogram& request_seconds_;
  Counter& connections_refused_;
  Counter& requests_rejected_;
  const Clock& clock_;
  RateLimiter builtin_rate_limiter_;
  RateLimit& rate_limiter_;  // builtin_rate_limiter_ unless the options name another
  const size_t max_connections_;
  std::atomic<int> pending_{0};   // handler calls queued on or running in pool_
  std::optional<Router> router_;  // set by Start, immutable afterwards
  std::function<absl::Status()> readiness_;
  int port_ = 0;
  std::string base_url_;
  std::atomic<bool> stopping_{false};

  absl::Mutex connections_mu_;
  // Weak, so that a connection lives exactly as long as its coroutine.
  absl::flat_hash_map<Connection*, std::weak_ptr<Connection>> connections_
      ABSL_GUARDED_BY(connections_mu_);

  // Declared after the state above: destroying the io_context destroys suspended coroutines,
  // whose cleanup touches that state.
  asio::io_context ioc_;
  asio::strand<asio::io_context::executor_type> control_;  // acceptor, signals, drain
  tcp::acceptor acceptor_;
  std::optional<asio::signal_set> signals_;
  // Destroyed first: their threads post completions into the io_context.
  asio::thread_pool readiness_pool_;  // /readyz alone, so that it never waits behind handlers
  asio::thread_pool pool_;
};

Server::Server(const ServerOptions& options, std::vector<api::Route> routes, Metrics& metrics)
    : impl_(std::make_unique<Impl>(options, std::move(routes), metrics)) {}
Server::~Server() = default;
void Server::SetReadinessCheck(std::function<absl::Status()> check) {
  impl_->SetReadinessCheck(std::move(check));
}
absl::Status Server::Start() { return impl_->Start(); }
int Server::port() const { return impl_->port(); }
const std::string& Server::base_url() const { return impl_->base_url(); }
void Server::Run() { impl_->Run(); }
void Server::RunUntilSignal() { impl_->RunUntilSignal(); }
void Server::Shutdown() { impl_->Shutdown(); }

}  // namespace custos::http
