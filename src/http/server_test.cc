#include "http/server.h"

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility> (GCC 12).
#include <utility>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace custos::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

using Res = bhttp::response<bhttp::string_body>;

double MillisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// A blocking HTTP/1.1 client on one connection. Reads give up after 5 s so that a broken
// server fails the test instead of hanging it.
class Client {
 public:
  // `source` picks the client's own address (any of 127.0.0.0/8 works on Linux loopback).
  explicit Client(int port, std::string_view source = "") : socket_(ioc_) {
    if (!source.empty()) {
      socket_.open(tcp::v4());
      socket_.bind(tcp::endpoint(asio::ip::make_address(std::string(source)), 0));
    }
    socket_.connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  }

  Res Send(std::string_view method, std::string_view target, std::string body = "",
           std::vector<std::pair<std::string, std::string>> headers = {}) {
    beast::string_view m(method.data(), method.size());
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(m),
                                           beast::string_view(target.data(), target.size()), 11};
    if (req.method() == bhttp::verb::unknown) req.method_string(m);
    req.set(bhttp::field::host, "127.0.0.1");
    for (auto& [name, value] : headers) req.set(name, value);
    req.body() = std::move(body);
    req.prepare_payload();
    bhttp::write(socket_, req);
    return Read();
  }

  void WriteRaw(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes)); }

  Res Read() {
    Res res;
    beast::error_code ec =
        WithDeadline([&](auto done) { bhttp::async_read(socket_, buffer_, res, std::move(done)); });
    if (ec) throw std::runtime_error("read failed: " + ec.message());
    return res;
  }

  // True when the server closed the connection (EOF or reset) before sending anything more.
  bool ReadsEof() {
    char byte;
    if (buffer_.size() > 0) return false;
    beast::error_code ec = WithDeadline(
        [&](auto done) { socket_.async_read_some(asio::buffer(&byte, 1), std::move(done)); });
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

 private:
  // Runs the read that `start` begins, cancelling it after 5 s. (A receive timeout on the socket
  // would not do: Asio's blocking reads wait in poll() once recv() times out.)
  template <typename Start>
  beast::error_code WithDeadline(Start start) {
    beast::error_code ec;
    bool timed_out = false;
    asio::steady_timer timer(ioc_, std::chrono::seconds(5));
    timer.async_wait([&](const beast::error_code& e) {
      if (e) return;
      timed_out = true;
      socket_.cancel();
    });
    start([&](const beast::error_code& e, size_t) {
      ec = e;
      timer.cancel();
    });
    ioc_.restart();
    ioc_.run();
    return timed_out ? beast::error_code(asio::error::timed_out) : ec;
  }

  asio::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

bool CanConnect(int port) {
  asio::io_context ioc;
  tcp::socket s(ioc);
  beast::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)),
            ec);
  return !ec;
}

class ServerTest : public ::testing::Test {
 protected:
  ServerTest() {
    options_.listen_address = "127.0.0.1";
    options_.port = 0;
    options_.network_threads = 1;
    options_.worker_threads = 2;
    options_.request_timeout = absl::Seconds(5);
    options_.idle_timeout = absl::Seconds(5);
    options_.shutdown_grace = absl::Seconds(5);
  }

  ~ServerTest() override {
    StopServer();
    // Tests may have pointed the logger at a stream of theirs.
    (void)InitLogging("error", "text");
  }

  void StartServer(std::vector<api::Route> routes) {
    server_ = std::make_unique<Server>(options_, std::move(routes), metrics_);
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->port(), 0);
    run_thread_ = std::thread([this] { server_->Run(); });
  }

  void StopServer() {
    if (server_ != nullptr) server_->Shutdown();
    if (run_thread_.joinable()) run_thread_.join();
  }

  int port() const { return server_->port(); }

  ServerOptions options_;
  Metrics metrics_;
  std::unique_ptr<Server> server_;
  std::thread run_thread_;
};

api::Route EchoRoute(std::string method, std::string pattern) {
  return {std::move(method), std::move(pattern), [](api::Request& req) {
            Json j;
            j["method"] = req.method;
            j["path"] = req.path;
            j["params"] = req.path_params;
            j["query"] = req.query;
            j["request_id"] = req.request_id;
            j["base_url"] = req.base_url;
            j["body"] = req.body;
            j["remote_ip"] = req.remote_ip;
            j["x_custom"] = req.Header("x-custom");
            return api::Response::MakeJson(200, j);
          }};
}

Json BodyJson(const Res& res) {
  auto j = ParseJson(res.body());
  EXPECT_TRUE(j.ok()) << res.body();
  return j.ok() ? *j : Json();
}

TEST_F(ServerTest, RoutesWithDecodedParamsQueryAndStandardHeaders) {
  StartServer({EchoRoute("GET", "/t/{tenant}/things/{id}")});
  Client client(port());
  Res res = client.Send("GET", "/t/acme/things/a%20b?q=x+y%21&limit=5&limit=6", "",
                        {{"X-Custom", "one"}});
  ASSERT_EQ(res.result_int(), 200);
  Json j = BodyJson(res);
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["path"], "/t/acme/things/a b");
  EXPECT_EQ(j["params"]["tenant"], "acme");
  EXPECT_EQ(j["params"]["id"], "a b");
  EXPECT_EQ(j["query"]["q"], "x y!");
  EXPECT_EQ(j["query"]["limit"], "5");
  EXPECT_EQ(j["x_custom"], "one");
  EXPECT_EQ(j["remote_ip"], "127.0.0.1");
  EXPECT_EQ(j["base_url"], "http://127.0.0.1:" + std::to_string(port()));
  EXPECT_EQ(res[bhttp::field::content_type], "application/json");
  EXPECT_EQ(res[bhttp::field::cache_control], "no-store");
  EXPECT_EQ(res[bhttp::field::server], "custos");
  EXPECT_EQ(res["X-Content-Type-Options"], "nosniff");
  EXPECT_FALSE(res["X-Request-Id"].empty());
  EXPECT_EQ(j["request_id"], std::string(res["X-Request-Id"]));
}

TEST_F(ServerTest, HandlerHeadersAreSentButCannotSplitTheResponse) {
  StartServer({{"GET", "/h", [](api::Request&) {
                  api::Response r = api::Response::MakeJson(201, Json::object());
                  r.AddHeader("Cache-Control", "max-age=60");
                  r.AddHeader("Set-Cookie", "a=1");
                  r.AddHeader("Set-Cookie", "b=2");
                  r.AddHeader("X-Evil", "v\r\nInjected: yes");
                  r.AddHeader("Content-Length", "9999");
                  return r;
                }}});
  Client client(port());
  Res res = client.Send("GET", "/h");
  EXPECT_EQ(res.result_int(), 201);
  EXPECT_EQ(res[bhttp::field::cache_control], "max-age=60");
  EXPECT_EQ(res.count(bhttp::field::set_cookie), 2u);
  EXPECT_EQ(res.count("X-Evil"), 0u);
  EXPECT_EQ(res.count("Injected"), 0u);
  EXPECT_EQ(res.body(), "{}");
}

TEST_F(ServerTest, RequestIdsAreTheServersOwn) {
  StartServer({EchoRoute("GET", "/e")});
  Client client(port());
  // A client cannot choose the id that System Log events will carry.
  std::string got(client.Send("GET", "/e", "", {{"X-Request-Id", "abc-123_X"}})["X-Request-Id"]);
  EXPECT_NE(got, "abc-123_X");
  EXPECT_THAT(got, MatchesRegex("[A-Za-z0-9]{20}"));
  std::string a(client.Send("GET", "/e")["X-Request-Id"]);
  std::string b(client.Send("GET", "/e")["X-Request-Id"]);
  EXPECT_NE(a, b);
}

TEST_F(ServerTest, NotFoundAndMethodNotAllowedAreJsonErrors) {
  StartServer(
      {EchoRoute("GET", "/t/{tenant}/things/{id}"), EchoRoute("PUT", "/t/{tenant}/things/{id}")});
  Client client(port());
  Res res = client.Send("GET", "/x/y%20z?token=abc");
  EXPECT_EQ(res.result_int(), 404);
  EXPECT_EQ(res[bhttp::field::content_type], "application/json");
  Json j = BodyJson(res);
  EXPECT_EQ(j["errorCode"], "E0000007");
  EXPECT_EQ(j["errorSummary"], "Not found: Resource not found: /x/y z (path)");
  EXPECT_EQ(j["errorLink"], "E0000007");
  EXPECT_EQ(j["errorId"], "oae" + std::string(res["X-Request-Id"]));
  EXPECT_EQ(j["errorCauses"], Json::array());

  res = client.Send("POST", "/t/acme/things/1", "{}");
  EXPECT_EQ(res.result_int(), 405);
  EXPECT_EQ(res[bhttp::field::allow], "GET, PUT");
  EXPECT_EQ(BodyJson(res)["errorCode"], "E0000022");
  // Errors of the request do not cost the connection.
  EXPECT_EQ(client.Send("GET", "/t/acme/things/1").result_int(), 200);
}

TEST_F(ServerTest, EveryAnswerUnderAPathPrefixCarriesItsHeaders) {
  options_.max_body_bytes = 64;
  options_.path_headers = {
      {"/app", {{"Content-Security-Policy", "default-src 'none'"}, {"X-Frame-Options", "DENY"}}}};
  api::Handler serve_page = [](api::Request&) {
    api::Response r;
    r.body = "page";
    r.AddHeader("x-frame-options", "SAMEORIGIN");  // the handler's own wins
    return r;
  };
  StartServer({{"GET", "/app/", serve_page},
               {"GET", "/app/{path...}", serve_page},
               EchoRoute("GET", "/apple")});
  struct Case {
    std::string method;
    std::string target;
    std::string body;
    int status;
  };
  for (const Case& c : std::vector<Case>{
           {"GET", "/app/%zz", "", 400},  // does not decode: the router refuses it
           {"GET", "/app/%zz?x=1", "", 400},
           {"GET", "/%61pp/%zz", "", 400},  // "/app/..." once decoded
           {"POST", "/app/", "{}", 405},    // no handler for the method
           {"HEAD", "/app/", "", 405},
           {"GET", "/app", "", 404},  // no route at all
           {"PUT", "/app/x", std::string(100, 'b'), 413},
       }) {
    Client client(port());
    Res res = client.Send(c.method, c.target, c.body);
    EXPECT_EQ(res.result_int(), c.status) << c.method << " " << c.target;
    EXPECT_EQ(res["Content-Security-Policy"], "default-src 'none'") << c.method << " " << c.target;
    EXPECT_EQ(res["X-Frame-Options"], "DENY") << c.method << " " << c.target;
  }
  Client client(port());
  Res page = client.Send("GET", "/app/x");
  EXPECT_EQ(page.result_int(), 200);
  EXPECT_EQ(page["Content-Security-Policy"], "default-src 'none'");
  EXPECT_EQ(page.count("X-Frame-Options"), 1u);
  EXPECT_EQ(page["X-Frame-Options"], "SAMEORIGIN");
  // Whole segments only, and nothing outside the prefix.
  for (const std::string target : {"/apple", "/apple/%zz", "/other/%zz"}) {
    Client other(port());
    Res res = other.Send("GET", target);
    EXPECT_EQ(res.count("Content-Security-Policy"), 0u) << target;
  }
}

TEST_F(ServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  std::atomic<int> calls = 0;
  StartServer({{"GET", "/n", [&](api::Request&) {
                  return api::Response::MakeJson(200, {{"n", ++calls}});
                }}});
  Client client(port());
  Res first = client.Send("GET", "/n");
  EXPECT_TRUE(first.keep_alive());
  Res second = client.Send("GET", "/n");
  EXPECT_EQ(BodyJson(first)["n"], 1);
  EXPECT_EQ(BodyJson(second)["n"], 2);
}

TEST_F(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  StartServer({EchoRoute("GET", "/p/{n}")});
  Client client(port());
  client.WriteRaw(
      "GET /p/1 HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /p/2 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(BodyJson(client.Read())["params"]["n"], "1");
  EXPECT_EQ(BodyJson(client.Read())["params"]["n"], "2");
}

TEST_F(ServerTest, BodyOverLimitGets413AndTheHandlerNeverRuns) {
  options_.max_body_bytes = 1024;
  std::atomic<int> calls = 0;
  StartServer({{"POST", "/upload", [&](api::Request& req) {
                  ++calls;
                  return api::Response::MakeJson(200, {{"size", req.body.size()}});
                }}});
  {
    Client client(port());
    EXPECT_EQ(BodyJson(client.Send("POST", "/upload", std::string(1024, 'a')))["size"], 1024);
  }
  {
    Client client(port());
    Res res = client.Send("POST", "/upload", std::string(4096, 'a'));
    EXPECT_EQ(res.result_int(), 413);
    EXPECT_FALSE(res.keep_alive());
    Json j = BodyJson(res);
    EXPECT_EQ(j["errorCode"], "E0000001");
    EXPECT_EQ(j["errorSummary"], "Request body too large");
    EXPECT_TRUE(client.ReadsEof());
  }
  {
    // Chunked bodies count too.
    Client client(port());
    client.WriteRaw("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                    fmt::format("{:x}\r\n", 2000) + std::string(2000, 'b') + "\r\n0\r\n\r\n");
    EXPECT_EQ(client.Read().result_int(), 413);
  }
  EXPECT_EQ(calls, 1);
}

TEST_F(ServerTest, HeadersOverLimitGet431) {
  options_.max_header_bytes = 2048;
  StartServer({EchoRoute("GET", "/e")});
  Client client(port());
  Res res = client.Send("GET", "/e", "", {{"X-Big", std::string(4000, 'h')}});
  EXPECT_EQ(res.result_int(), 431);
  EXPECT_FALSE(res.keep_alive());
}

TEST_F(ServerTest, MalformedRequestGets400AndClose) {
  StartServer({EchoRoute("GET", "/e")});
  {
    Client client(port());
    client.WriteRaw("NOT HTTP AT ALL\r\n\r\n");
    Res res = client.Read();
    EXPECT_EQ(res.result_int(), 400);
    EXPECT_EQ(BodyJson(res)["errorCode"], "E0000001");
    EXPECT_TRUE(client.ReadsEof());
  }
  {
    Client client(port());
    Res res = client.Send("GET", "/e%zz");
    EXPECT_EQ(res.result_int(), 400);
    EXPECT_TRUE(client.ReadsEof());
  }
  {
    Client client(port());
    EXPECT_EQ(client.Send("GET", "/e?a=%G0").result_int(), 400);
  }
}

TEST_F(ServerTest, ExpectContinueGetsInterimResponse) {
  StartServer({EchoRoute("POST", "/e")});
  Client client(port());
  client.WriteRaw(
      "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(client.Read().result_int(), 100);
  client.WriteRaw("hello");
  EXPECT_EQ(BodyJson(client.Read())["body"], "hello");
}

TEST_F(ServerTest, SlowClientIsCutOffAtRequestTimeout) {
  options_.request_timeout = absl::Milliseconds(300);
  StartServer({EchoRoute("GET", "/e")});
  Client client(port());
  auto start = Clock::now();
  client.WriteRaw("GET /e HTTP/1.1\r\nHost: x\r\n");  // Headers never finish.
  EXPECT_TRUE(client.ReadsEof());
  EXPECT_GE(MillisSince(start), 250);
  EXPECT_LT(MillisSince(start), 3000);
}

TEST_F(ServerTest, IdleKeepAliveConnectionIsClosedAtIdleTimeout) {
  options_.idle_timeout = absl::Milliseconds(300);
  StartServer({EchoRoute("GET", "/e")});
  Client client(port());
  EXPECT_EQ(client.Send("GET", "/e").result_int(), 200);
  auto start = Clock::now();
  EXPECT_TRUE(client.ReadsEof());
  EXPECT_GE(MillisSince(start), 250);
  EXPECT_LT(MillisSince(start), 3000);
}

TEST_F(ServerTest, HandlersRunOffTheNetworkThread) {
  options_.worker_threads = 2;
  std::atomic<std::thread::id> handler_thread;
  StartServer({{"GET", "/where",
                [&](api::Request&) {
                  handler_thread = std::this_thread::get_id();
                  return api::Response::NoContent();
                }},
               {"GET", "/block", [](api::Request&) {
                  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
                  return api::Response::NoContent();
                }}});
  Client client(port());
  EXPECT_EQ(client.Send("GET", "/where").result_int(), 204);
  // With one network thread, Run()'s thread is the network thread.
  EXPECT_NE(handler_thread.load(), run_thread_.get_id());

  // A blocking handler leaves the network thread free for other connections.
  std::thread blocked([&] { Client(port()).Send("GET", "/block"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto start = Clock::now();
  EXPECT_EQ(Client(port()).Send("GET", "/healthz").result_int(), 200);
  EXPECT_LT(MillisSince(start), 1000);
  blocked.join();
}

TEST_F(ServerTest, DelayIsHonouredWithoutHoldingAThread) {
  options_.worker_threads = 1;
  StartServer({{"POST", "/signin", [](api::Request&) {
                  api::Response r = api::Response::MakeJson(401, {{"ok", false}});
                  r.delay = absl::Milliseconds(1500);
                  return r;
                }}});
  double delayed_ms = 0;
  std::thread slow([&] {
    auto start = Clock::now();
    EXPECT_EQ(Client(port()).Send("POST", "/signin", "{}").result_int(), 401);
    delayed_ms = MillisSince(start);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  // The only worker and the only network thread are both free during the delay.
  auto start = Clock::now();
  EXPECT_EQ(Client(port()).Send("GET", "/healthz").result_int(), 200);
  EXPECT_LT(MillisSince(start), 1000);
  slow.join();
  EXPECT_GE(delayed_ms, 1500);
}

TEST_F(ServerTest, MetricsCountRequestsByRoutePattern) {
  StartServer({EchoRoute("GET", "/t/{tenant}/things/{id}")});
  Client client(port());
  for (const char* id : {"1", "2", "3"}) {
    EXPECT_EQ(client.Send("GET", fmt::format("/t/acme/things/{}", id)).result_int(), 200);
  }
  EXPECT_EQ(client.Send("GET", "/nope").result_int(), 404);
  // Requests on one connection are recorded before the next one is read.
  Res res = client.Send("GET", "/metrics");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[bhttp::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(res.body(), HasSubstr("# TYPE custos_http_requests_total counter\n"));
  EXPECT_THAT(res.body(), HasSubstr("custos_http_requests_total{route=\"/t/{tenant}/things/{id}\","
                                    "method=\"GET\",status=\"200\"} 3\n"));
  EXPECT_THAT(res.body(), HasSubstr("custos_http_requests_total{route=\"unmatched\","
                                    "method=\"GET\",status=\"404\"} 1\n"));
  EXPECT_THAT(res.body(), HasSubstr("custos_http_request_duration_seconds_count{route=\"/t/"
                                    "{tenant}/things/{id}\",method=\"GET\"} 3\n"));
  EXPECT_THAT(res.body(), HasSubstr("custos_http_request_duration_seconds_bucket{route=\"/t/"
                                    "{tenant}/things/{id}\",method=\"GET\",le=\"+Inf\"} 3\n"));
}

TEST_F(ServerTest, HealthAndReadiness) {
  std::atomic<bool> ready = true;
  options_.worker_threads = 1;
  server_ = std::make_unique<Server>(options_, std::vector<api::Route>{}, metrics_);
  server_->SetReadinessCheck([&]() -> absl::Status {
    return ready ? absl::OkStatus() : absl::UnavailableError("store: disk I/O error at /data/x");
  });
  ASSERT_TRUE(server_->Start().ok());
  run_thread_ = std::thread([this] { server_->Run(); });
  Client client(port());
  Res health = client.Send("GET", "/healthz");
  EXPECT_EQ(health.result_int(), 200);
  EXPECT_EQ(BodyJson(health)["status"], "ok");
  EXPECT_EQ(client.Send("GET", "/readyz").result_int(), 200);
  ready = false;
  Res not_ready = client.Send("GET", "/readyz");
  EXPECT_EQ(not_ready.result_int(), 503);
  EXPECT_THAT(not_ready.body(), Not(HasSubstr("disk")));
}

TEST_F(ServerTest, ThrowingHandlerGives500AndTheServerCarriesOn) {
  std::ostringstream log;
  ASSERT_TRUE(InitLoggingTo(log, "info", "json").ok());
  StartServer(
      {{"GET", "/boom", [](api::Request&) -> api::Response { throw std::runtime_error("kaboom"); }},
       {"GET", "/bad-status", [](api::Request&) {
          api::Response r;
          r.status = 1234;
          return r;
        }}});
  Client client(port());
  Res res = client.Send("GET", "/boom");
  EXPECT_EQ(res.result_int(), 500);
  Json j = BodyJson(res);
  EXPECT_EQ(j["errorCode"], "E0000009");
  EXPECT_EQ(j["errorSummary"], "Internal Server Error");
  EXPECT_THAT(res.body(), Not(HasSubstr("kaboom")));
  EXPECT_EQ(client.Send("GET", "/bad-status").result_int(), 500);
  EXPECT_EQ(client.Send("GET", "/healthz").result_int(), 200);
  StopServer();
  EXPECT_THAT(log.str(), HasSubstr("kaboom"));
  EXPECT_THAT(log.str(), HasSubstr(j["errorId"].get<std::string>()));
}

TEST_F(ServerTest, RouteConflictingWithBuiltinFailsStart) {
  server_ = std::make_unique<Server>(
      options_, std::vector<api::Route>{EchoRoute("GET", "/healthz")}, metrics_);
  EXPECT_EQ(server_->Start().code(), absl::StatusCode::kInvalidArgument);
  options_.listen_address = "not-an-ip";
  Server bad(options_, {}, metrics_);
  EXPECT_EQ(bad.Start().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ServerTest, GracefulShutdownFinishesInFlightAndClosesIdle) {
  absl::Notification handler_started;
  StartServer({EchoRoute("GET", "/e"), {"GET", "/slow", [&](api::Request&) {
                                          handler_started.Notify();
                                          std::this_thread::sleep_for(
                                              std::chrono::milliseconds(1500));
                                          return api::Response::MakeJson(200, {{"done", true}});
                                        }}});
  int server_port = port();
  Client idle(server_port);
  ASSERT_EQ(idle.Send("GET", "/e").result_int(), 200);

  Res slow_res;
  std::thread in_flight([&] {
    Client c(server_port);
    slow_res = c.Send("GET", "/slow");
  });
  handler_started.WaitForNotification();
  auto start = Clock::now();
  server_->Shutdown();
  // The idle keep-alive connection is closed at once, not at the end of the slow request.
  EXPECT_TRUE(idle.ReadsEof());
  EXPECT_LT(MillisSince(start), 1000);
  in_flight.join();
  run_thread_.join();
  EXPECT_EQ(slow_res.result_int(), 200);
  EXPECT_EQ(BodyJson(slow_res)["done"], true);
  EXPECT_FALSE(slow_res.keep_alive());
  EXPECT_LT(MillisSince(start), 4000);
  EXPECT_FALSE(CanConnect(server_port));
}

TEST_F(ServerTest, ShutdownGraceBoundsTheDrain) {
  options_.shutdown_grace = absl::Milliseconds(200);
  absl::Notification handler_started;
  StartServer({{"GET", "/stuck", [&](api::Request&) {
                  handler_started.Notify();
                  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
                  return api::Response::NoContent();
                }}});
  bool got_eof = false;
  std::thread in_flight([&] {
    Client c(port());
    c.WriteRaw("GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n");
    got_eof = c.ReadsEof();
  });
  handler_started.WaitForNotification();
  auto start = Clock::now();
  server_->Shutdown();
  in_flight.join();
  // The client is cut off after the grace period, before the handler finishes...
  EXPECT_TRUE(got_eof);
  EXPECT_LT(MillisSince(start), 800);
  // ...and Run() still waits for the handler before returning.
  run_thread_.join();
  EXPECT_GE(MillisSince(start), 900);
}

TEST_F(ServerTest, SigtermShutsDownRunUntilSignal) {
  server_ = std::make_unique<Server>(options_, std::vector<api::Route>{}, metrics_);
  ASSERT_TRUE(server_->Start().ok());
  std::atomic<bool> returned = false;
  run_thread_ = std::thread([this, &returned] {
    server_->RunUntilSignal();
    returned = true;
  });
  // Once a request is answered the signal handler is installed.
  EXPECT_EQ(Client(port()).Send("GET", "/healthz").result_int(), 200);
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  run_thread_.join();
  EXPECT_TRUE(returned);
  EXPECT_FALSE(CanConnect(port()));
}

TEST_F(ServerTest, ManyClientsOnSeveralNetworkThreads) {
  options_.network_threads = 3;
  options_.worker_threads = 3;
  StartServer({EchoRoute("GET", "/c/{n}")});
  constexpr int kClients = 8;
  constexpr int kRequests = 25;
  std::atomic<int> ok = 0;
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      Client client(port());
      for (int r = 0; r < kRequests; ++r) {
        std::string n = fmt::format("{}-{}", i, r);
        if (BodyJson(client.Send("GET", "/c/" + n))["params"]["n"] == n) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok, kClients * kRequests);
  StopServer();
  EXPECT_EQ(metrics_.AddCounter("custos_http_requests_total", "", {"route", "method", "status"})
                .Value({"/c/{n}", "GET", "200"}),
            kClients * kRequests);
}

TEST_F(ServerTest, ShutdownBeforeRunReturnsPromptly) {
  StartServer({});
  server_->Shutdown();
  run_thread_.join();
  SUCCEED();
}

// Releases a notification when the test leaves, even by an exception, so that a handler
// waiting on it cannot keep the server's shutdown waiting forever.
struct NotifyOnExit {
  absl::Notification& n;
  ~NotifyOnExit() {
    if (!n.HasBeenNotified()) n.Notify();
  }
};

TEST_F(ServerTest, PendingRequestsOverTheCapGet503AtOnce) {
  options_.worker_threads = 1;
  options_.max_pending_requests = 1;
  absl::Notification started;
  absl::Notification release;
  std::atomic<int> calls = 0;
  StartServer({{"GET", "/block", [&](api::Request&) {
                  if (++calls == 1) {
                    started.Notify();
                    // Bounded, so that a server that queues instead of refusing fails the
                    // test rather than hanging it.
                    release.WaitForNotificationWithTimeout(absl::Seconds(10));
                  }
                  return api::Response::NoContent();
                }}});
  NotifyOnExit release_on_exit{release};
  Res first;
  std::thread blocked([&] { first = Client(port()).Send("GET", "/block"); });
  started.WaitForNotification();

  Client client(port());
  auto start = Clock::now();
  Res res = client.Send("GET", "/block");
  EXPECT_LT(MillisSince(start), 1000);
  EXPECT_EQ(res.result_int(), 503);
  EXPECT_EQ(res["Retry-After"], "1");
  EXPECT_EQ(res[bhttp::field::content_type], "application/json");
  Json j = BodyJson(res);
  EXPECT_EQ(j["errorCode"], "E0000009");
  EXPECT_EQ(j["errorSummary"], "Service Unavailable");
  EXPECT_EQ(j["errorLink"], "E0000009");
  EXPECT_EQ(j["errorId"], "oae" + std::string(res["X-Request-Id"]));
  EXPECT_EQ(j["errorCauses"], Json::array());

  // The operational routes do not queue behind the saturated pool.
  start = Clock::now();
  EXPECT_EQ(client.Send("GET", "/healthz").result_int(), 200);
  EXPECT_EQ(client.Send("GET", "/readyz").result_int(), 200);
  Res metrics = client.Send("GET", "/metrics");
  EXPECT_LT(MillisSince(start), 1000);
  EXPECT_EQ(metrics.result_int(), 200);
  EXPECT_THAT(metrics.body(), HasSubstr("# TYPE custos_http_pending_requests gauge\n"
                                        "custos_http_pending_requests 1\n"));
  EXPECT_THAT(
      metrics.body(),
      HasSubstr("custos_http_requests_rejected_total{reason=\"max_pending_requests\"} 1\n"));
  EXPECT_EQ(calls, 1);

  release.Notify();
  blocked.join();
  EXPECT_EQ(first.result_int(), 204);
  // The finished handler gave its place back.
  EXPECT_EQ(client.Send("GET", "/block").result_int(), 204);
  EXPECT_EQ(calls, 2);
}

TEST_F(ServerTest, SignInRoutesAreRateLimitedPerClientAddress) {
  FakeClock clock(absl::FromUnixSeconds(1767225600));  // Thu, 01 Jan 2026 00:00:00 GMT
  options_.clock = &clock;
  options_.rate_limit_per_second = 1;
  options_.rate_limit_burst = 3;
  options_.rate_limited_route_prefixes = {"/t/{tenant}/api/v1/authn"};
  std::atomic<int> calls = 0;
  auto counted = [&](api::Request&) {
    ++calls;
    return api::Response::MakeJson(200, {{"status", "SUCCESS"}});
  };
  StartServer({{"POST", "/t/{tenant}/api/v1/authn", counted},
               {"POST", "/t/{tenant}/api/v1/authn/factors/{id}/verify", counted},
               EchoRoute("GET", "/t/{tenant}/api/v1/users")});
  Client client(port());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(client.Send("POST", "/t/acme/api/v1/authn", "{}").result_int(), 200) << i;
  }
  // Every route under the prefix draws on the same bucket.
  Res limited = client.Send("POST", "/t/acme/api/v1/authn/factors/f1/verify", "{}");
  EXPECT_EQ(limited.result_int(), 429);
  EXPECT_EQ(calls, 3);
  Json j = BodyJson(limited);
  EXPECT_EQ(j["errorCode"], "E0000047");
  EXPECT_EQ(j["errorSummary"], "API call exceeded rate limit due to too many requests.");
  EXPECT_EQ(j["errorId"], "oae" + std::string(limited["X-Request-Id"]));
  EXPECT_EQ(limited["Retry-After"], "1");
  EXPECT_EQ(limited["X-Rate-Limit-Limit"], "3");
  EXPECT_EQ(limited["X-Rate-Limit-Remaining"], "0");
  EXPECT_EQ(limited["X-Rate-Limit-Reset"], "1767225601");
  EXPECT_EQ(limited[bhttp::field::date], "Thu, 01 Jan 2026 00:00:00 GMT");
  EXPECT_TRUE(limited.keep_alive());

  // Other routes are not limited, on the same connection.
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(client.Send("GET", "/t/acme/api/v1/users").result_int(), 200) << i;
  }
  // Another client address has a bucket of its own.
  Client other(port(), "127.0.0.2");
  EXPECT_EQ(other.Send("POST", "/t/acme/api/v1/authn", "{}").result_int(), 200);
  EXPECT_EQ(calls, 4);

  // A second later, one more request is allowed, and only one.
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(client.Send("POST", "/t/acme/api/v1/authn", "{}").result_int(), 200);
  EXPECT_EQ(client.Send("POST", "/t/acme/api/v1/authn", "{}").result_int(), 429);
  EXPECT_EQ(calls, 5);
  EXPECT_THAT(client.Send("GET", "/metrics").body(),
              HasSubstr("custos_http_requests_rejected_total{reason=\"rate_limit\"} 2\n"));
}

TEST_F(ServerTest, RateLimitOfZeroLimitsNothing) {
  options_.rate_limit_per_second = 0;
  options_.rate_limit_burst = 1;
  options_.rate_limited_route_prefixes = {"/t/{tenant}/api/v1/authn"};
  StartServer({EchoRoute("POST", "/t/{tenant}/api/v1/authn")});
  Client client(port());
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(client.Send("POST", "/t/acme/api/v1/authn", "{}").result_int(), 200) << i;
  }
}

// Stands for a limit kept in the store: it blocks while `release` is not notified, and allows
// `allowed` requests.
class SlowRateLimit final : public RateLimit {
 public:
  explicit SlowRateLimit(int allowed) : allowed_(allowed) {}
  bool enabled() const override { return true; }
  bool blocking() const override { return true; }
  RateLimitDecision Acquire(std::string_view key) override {
    {
      absl::MutexLock lock(&mu_);
      keys_.emplace_back(key);
    }
    thread = std::this_thread::get_id();
    release.WaitForNotificationWithTimeout(absl::Seconds(10));
    RateLimitDecision d;
    d.limit = allowed_;
    d.allowed = ++calls <= allowed_;
    d.reset = absl::FromUnixSeconds(1767225602);
    if (!d.allowed) d.retry_after = absl::Seconds(2);
    return d;
  }

  std::vector<std::string> keys() const {
    absl::MutexLock lock(&mu_);
    return keys_;
  }

  absl::Notification release;
  std::atomic<int> calls = 0;
  std::atomic<std::thread::id> thread;

 private:
  const int allowed_;
  mutable absl::Mutex mu_;
  std::vector<std::string> keys_ ABSL_GUARDED_BY(mu_);
};

TEST_F(ServerTest, ABlockingRateLimitIsAskedOffTheNetworkThread) {
  FakeClock clock(absl::FromUnixSeconds(1767225600));
  options_.clock = &clock;
  SlowRateLimit limit(/*allowed=*/1);
  options_.rate_limiter = &limit;
  options_.rate_limited_route_prefixes = {"/t/{tenant}/api/v1/authn"};
  std::atomic<int> calls = 0;
  StartServer({{"POST", "/t/{tenant}/api/v1/authn", [&](api::Request&) {
                  ++calls;
                  return api::Response::NoContent();
                }}});

  // While the limit waits (on its store), the network thread serves others.
  std::thread first([&] {
    EXPECT_EQ(Client(port()).Send("POST", "/t/acme/api/v1/authn", "{}").result_int(), 204);
  });
  while (limit.thread.load() == std::thread::id()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto start = Clock::now();
  EXPECT_EQ(Client(port()).Send("GET", "/healthz").result_int(), 200);
  EXPECT_LT(MillisSince(start), 1000);
  limit.release.Notify();
  first.join();
  EXPECT_NE(limit.thread.load(), run_thread_.get_id());
  EXPECT_EQ(limit.keys(), std::vector<std::string>{"127.0.0.1"});

  // Its refusal is the server's 429, and the handler is not called.
  Res limited = Client(port()).Send("POST", "/t/acme/api/v1/authn", "{}");
  EXPECT_EQ(limited.result_int(), 429);
  EXPECT_EQ(limited["Retry-After"], "2");
  EXPECT_EQ(limited["X-Rate-Limit-Reset"], "1767225602");
  EXPECT_EQ(calls, 1);
}

TEST_F(ServerTest, ServerOptionsFromConfigRateLimitsTheSignInRoutes) {
  Config config;
  config.max_connections = 77;
  config.max_pending_requests = 5;
  config.authn_rate_per_ip = 3;
  config.authn_burst_per_ip = 9;
  ServerOptions o = ServerOptionsFromConfig(config);
  EXPECT_EQ(o.max_connections, 77);
  EXPECT_EQ(o.max_pending_requests, 5);
  EXPECT_EQ(o.rate_limit_per_second, 3);
  EXPECT_EQ(o.rate_limit_burst, 9);
  EXPECT_EQ(
      o.rate_limited_route_prefixes,
      (std::vector<std::string>{"/t/{tenant}/api/v1/authn", "/t/{tenant}/oauth2/v1/login",
                                "/provider/oauth2/v1/token", "/provider/api/v1/devices/enroll",
                                "/provider/api/v1/devices/{deviceId}/posture"}));
}

TEST_F(ServerTest, ConnectionsOverTheCapAreClosedAtOnce) {
  options_.max_connections = 2;
  StartServer({EchoRoute("GET", "/e")});
  auto first = std::make_unique<Client>(port());
  Client second(port());
  // Answered requests show that both connections are registered.
  ASSERT_EQ(first->Send("GET", "/e").result_int(), 200);
  ASSERT_EQ(second.Send("GET", "/e").result_int(), 200);

  Client extra(port());
  auto start = Clock::now();
  EXPECT_TRUE(extra.ReadsEof());
  EXPECT_LT(MillisSince(start), 1000);
  EXPECT_GE(metrics_.AddCounter("custos_http_connections_refused_total", "", {}).Value({}), 1);

  // Once the server has seen a connection close, its place is free for a new one.
  first.reset();
  bool served = false;
  for (int attempt = 0; attempt < 100 && !served; ++attempt) {
    try {
      Client next(port());
      Res res = next.Send("GET", "/metrics");
      served = true;
      EXPECT_THAT(res.body(), HasSubstr("custos_http_connections_open 2\n"));
    } catch (const std::exception&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  EXPECT_TRUE(served);
  // The existing connection was never disturbed.
  EXPECT_EQ(second.Send("GET", "/e").result_int(), 200);
}

TEST_F(ServerTest, AccessLogCarriesNoSecrets) {
  std::ostringstream log;
  ASSERT_TRUE(InitLoggingTo(log, "info", "json").ok());
  options_.max_body_bytes = 1024;
  StartServer({EchoRoute("POST", "/t/{tenant}/api/v1/authn")});
  {
    Client client(port());
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Authorization", "SSWS auth-header-secret"},
        {"Cookie", "sid=cookie-secret"},
        {"User-Agent", "okta-sdk-nodejs/8"},
        {"X-Request-Id", "trace-me-1"}};
    EXPECT_EQ(client
                  .Send("POST", "/t/acme/api/v1/authn?token=query-secret&limit=2",
                        R"({"username":"u","password":"body-secret"})", headers)
                  .result_int(),
              200);
    EXPECT_EQ(client
                  .Send("POST", "/t/acme/api/v1/authn",
                        R"({"password":"big-body-secret)" + std::string(2000, 'x') + "\"}", headers)
                  .result_int(),
              413);
  }
  StopServer();
  std::string text = log.str();
  for (const char* secret :
       {"auth-header-secret", "cookie-secret", "query-secret", "body-secret", "SSWS"}) {
    EXPECT_THAT(text, Not(HasSubstr(secret))) << text;
  }
  std::istringstream lines(text);
  std::string line;
  int access_lines = 0;
  while (std::getline(lines, line)) {
    auto j = ParseJson(line);
    ASSERT_TRUE(j.ok()) << line;
    if ((*j)["msg"] != "request") continue;
    ++access_lines;
    EXPECT_NE((*j)["request_id"], "trace-me-1");
    EXPECT_EQ((*j)["route"], "/t/{tenant}/api/v1/authn");
    EXPECT_EQ((*j)["method"], "POST");
    EXPECT_EQ((*j)["user_agent"], "okta-sdk-nodejs/8");
    EXPECT_EQ((*j)["remote_ip"], "127.0.0.1");
    EXPECT_TRUE((*j)["duration_ms"].is_number());
    if (access_lines == 1) {
      EXPECT_EQ((*j)["path"], "/t/acme/api/v1/authn?token=REDACTED&limit=2");
      EXPECT_EQ((*j)["status"], 200);
    } else {
      EXPECT_EQ((*j)["status"], 413);
      EXPECT_TRUE(j->contains("error_id"));
    }
  }
  EXPECT_EQ(access_lines, 2);
}

}  // namespace
}  // namespace custos::http
