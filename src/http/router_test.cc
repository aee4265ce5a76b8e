#include "http/router.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace custos::http {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

api::Route R(std::string method, std::string pattern) {
  std::string tag = method + " " + pattern;
  return {std::move(method), std::move(pattern),
          [tag](api::Request&) { return api::Response::MakeJson(200, tag); }};
}

std::string Tag(const RouteMatch& m) {
  api::Request req;
  return m.route->handler(req).body;
}

Router MakeRouter(std::vector<api::Route> routes) {
  auto router = Router::Create(std::move(routes));
  EXPECT_TRUE(router.ok()) << router.status();
  return *std::move(router);
}

TEST(RouterTest, MatchesLiteralsAndBindsParams) {
  Router router = MakeRouter({R("GET", "/t/{tenant}/api/v1/users/{id}"), R("GET", "/healthz")});
  auto m = router.Match("GET", "/t/acme/api/v1/users/00u1");
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m->route->pattern, "/t/{tenant}/api/v1/users/{id}");
  EXPECT_THAT(m->path_params, UnorderedElementsAre(Pair("tenant", "acme"), Pair("id", "00u1")));

  EXPECT_EQ(router.Match("GET", "/healthz")->kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(router.Match("GET", "/healthz/")->kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(router.Match("GET", "/t/acme/api/v1/users")->kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(router.Match("GET", "/t/acme/api/v1/users/1/x")->kind, RouteMatch::Kind::kNotFound);
  // A parameter never matches an empty segment.
  EXPECT_EQ(router.Match("GET", "/t//api/v1/users/1")->kind, RouteMatch::Kind::kNotFound);
}

TEST(RouterTest, LiteralBeatsParameterWhateverTheOrder) {
  Router router = MakeRouter({R("GET", "/users/{id}"), R("GET", "/users/me"),
                              R("GET", "/{a}/groups"), R("GET", "/users/{id2}/x")});
  EXPECT_EQ(Tag(*router.Match("GET", "/users/me")), "\"GET /users/me\"");
  EXPECT_EQ(Tag(*router.Match("GET", "/users/you")), "\"GET /users/{id}\"");
  EXPECT_EQ(Tag(*router.Match("GET", "/users/groups")), "\"GET /users/{id}\"");
  EXPECT_EQ(Tag(*router.Match("GET", "/x/groups")), "\"GET /{a}/groups\"");
}

TEST(RouterTest, RestParameterTakesTheRemainingSegments) {
  Router router =
      MakeRouter({R("GET", "/t/{tenant}/log/{path...}"), R("GET", "/t/{tenant}/log/checkpoint")});
  auto m = router.Match("GET", "/t/acme/log/tile/0/x001/002.p/7");
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->kind, RouteMatch::Kind::kFound);
  EXPECT_THAT(m->path_params,
              UnorderedElementsAre(Pair("tenant", "acme"), Pair("path", "tile/0/x001/002.p/7")));
  // An exact pattern beats the rest parameter; the rest needs at least one segment.
  EXPECT_EQ(Tag(*router.Match("GET", "/t/acme/log/checkpoint")),
            "\"GET /t/{tenant}/log/checkpoint\"");
  EXPECT_EQ(router.Match("GET", "/t/acme/log")->kind, RouteMatch::Kind::kNotFound);
  EXPECT_FALSE(Router::Create({R("GET", "/a/{rest...}/b")}).ok());
}

TEST(RouterTest, MethodNotAllowedListsAllowedMethods) {
  Router router = MakeRouter({R("GET", "/users/{id}"), R("DELETE", "/users/{id}"),
                              R("POST", "/users/me"), R("PUT", "/users/{id}")});
  auto m = router.Match("PATCH", "/users/me");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->kind, RouteMatch::Kind::kMethodNotAllowed);
  EXPECT_THAT(m->allowed_methods, ElementsAre("DELETE", "GET", "POST", "PUT"));
  // The method picks among the patterns that match the path.
  EXPECT_EQ(Tag(*router.Match("GET", "/users/me")), "\"GET /users/{id}\"");
  EXPECT_EQ(Tag(*router.Match("POST", "/users/me")), "\"POST /users/me\"");
}

TEST(RouterTest, DecodesSegmentsAfterSplitting) {
  Router router = MakeRouter({R("GET", "/files/{name}"), R("GET", "/a b")});
  auto m = router.Match("GET", "/files/a%2Fb%20c");
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m->path_params.at("name"), "a/b c");
  EXPECT_EQ(m->decoded_path, "/files/a/b c");
  EXPECT_EQ(router.Match("GET", "/a%20b")->kind, RouteMatch::Kind::kFound);
  // '+' is literal in a path.
  EXPECT_EQ(router.Match("GET", "/files/a+b")->path_params.at("name"), "a+b");
}

TEST(RouterTest, RejectsBadPaths) {
  Router router = MakeRouter({R("GET", "/files/{name}")});
  EXPECT_EQ(router.Match("GET", "/files/%zz").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(router.Match("GET", "/files/%2").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(router.Match("GET", "/files/%00").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(router.Match("GET", "files").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(router.Match("GET", "").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RouterTest, RejectsBadPatterns) {
  EXPECT_FALSE(Router::Create({R("GET", "users")}).ok());
  EXPECT_FALSE(Router::Create({R("GET", "/users/{}")}).ok());
  EXPECT_FALSE(Router::Create({R("GET", "/users/x{id}")}).ok());
  EXPECT_FALSE(Router::Create({R("GET", "/users/{id}/{id}")}).ok());
  EXPECT_FALSE(Router::Create({R("", "/users")}).ok());
  EXPECT_FALSE(Router::Create({R("GET", "/users/{id}"), R("GET", "/users/{other}")}).ok());
  EXPECT_TRUE(Router::Create({R("GET", "/users/{id}"), R("PUT", "/users/{other}")}).ok());
}

TEST(QueryTest, DecodesPlusAndPercentFirstValueWins) {
  auto q = ParseQuery("q=a+b%20c&limit=5&limit=6&flag&=x&&e%3Dq=%26");
  ASSERT_TRUE(q.ok());
  EXPECT_THAT(*q, UnorderedElementsAre(Pair("q", "a b c"), Pair("limit", "5"), Pair("flag", ""),
                                       Pair("e=q", "&")));
  EXPECT_TRUE(ParseQuery("")->empty());
  EXPECT_FALSE(ParseQuery("a=%G1").ok());
}

}  // namespace
}  // namespace custos::http
