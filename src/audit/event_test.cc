#include "audit/event.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/time_format.h"
#include "crypto/random.h"

namespace custos::audit {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::MatchesRegex;
using ::testing::UnorderedElementsAre;

std::vector<std::string> Keys(const OrderedJson& object) {
  std::vector<std::string> keys;
  for (auto it = object.begin(); it != object.end(); ++it) keys.push_back(it.key());
  return keys;
}

RequestContext FullContext() {
  RequestContext context;
  context.actor = {.id = "00uadmin0000000000a",
                   .type = "User",
                   .alternate_id = "admin@example.com",
                   .display_name = "Ada Admin"};
  context.request_id = "req-123";
  context.ip_address = "203.0.113.7";
  context.user_agent =
      "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/121.0.0.0 Safari/537.36";
  context.url = "/t/acme/api/v1/users?activate=true";
  context.external_session_id = "102sessionabc";
  return context;
}

EventSpec CreateUserSpec() {
  EventSpec spec;
  spec.event_type = "user.lifecycle.create";
  spec.display_message = "Create okta user";
  spec.targets.push_back({.id = "00ujane000000000000",
                          .type = "User",
                          .alternate_id = "jane@example.com",
                          .display_name = "Jane Doe"});
  spec.debug_data = {{"requestUri", "/forged"}, {"source", "api"}};
  spec.credential_type = "PASSWORD";
  return spec;
}

class EventTest : public ::testing::Test {
 protected:
  OrderedJson Make(const RequestContext& context, const EventSpec& spec) {
    record_ = MakeEvent(TenantId("00otenant0000000000"), context, spec, clock_, random_);
    return OrderedJson::parse(record_.json);
  }

  FakeClock clock_{absl::FromUnixMicros(1767225600123456)};  // 2026-01-01T00:00:00.123456Z
  crypto::SeededRandom random_{7};
  store::EventRecord record_;
};

TEST_F(EventTest, HasEveryTopLevelFieldOfTheFormat) {
  OrderedJson event = Make(FullContext(), CreateUserSpec());
  EXPECT_THAT(Keys(event),
              UnorderedElementsAre("uuid", "published", "eventType", "version", "severity",
                                   "legacyEventType", "displayMessage", "actor", "client",
                                   "request", "device", "authenticationContext", "outcome",
                                   "target", "transaction", "debugContext", "securityContext"));
  EXPECT_THAT(Keys(event["actor"]),
              UnorderedElementsAre("id", "type", "alternateId", "displayName", "detailEntry"));
  EXPECT_THAT(Keys(event["client"]), UnorderedElementsAre("userAgent", "zone", "device", "id",
                                                          "ipAddress", "geographicalContext"));
  EXPECT_THAT(Keys(event["client"]["userAgent"]),
              UnorderedElementsAre("rawUserAgent", "os", "browser"));
  EXPECT_THAT(
      Keys(event["authenticationContext"]),
      UnorderedElementsAre("authenticationProvider", "credentialProvider", "credentialType",
                           "issuer", "interface", "authenticationStep", "externalSessionId"));
  EXPECT_THAT(Keys(event["outcome"]), UnorderedElementsAre("result", "reason"));
  EXPECT_THAT(Keys(event["transaction"]), UnorderedElementsAre("type", "id", "detail"));
  EXPECT_THAT(Keys(event["securityContext"]),
              UnorderedElementsAre("asNumber", "asOrg", "isp", "domain", "isProxy"));
  ASSERT_EQ(event["target"].size(), 1u);
  EXPECT_THAT(Keys(event["target"][0]),
              UnorderedElementsAre("id", "type", "alternateId", "displayName", "detailEntry"));
}

// The stored text is the log entry, so it must be RFC 8785 canonical: keys sorted at every
// level, no whitespace, nothing re-serialisation would change, and no "custos" member.
void ExpectSortedKeys(const OrderedJson& j) {
  if (j.is_object()) {
    std::vector<std::string> keys = Keys(j);
    EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end())) << j.dump();
    for (const auto& [key, value] : j.items()) ExpectSortedKeys(value);
  } else if (j.is_array()) {
    for (const auto& value : j) ExpectSortedKeys(value);
  }
}

TEST_F(EventTest, StoredTextIsCanonicalJson) {
  RequestContext ctx = FullContext();
  ctx.user_agent = "Mozilla/5.0 \"quoted\" \\ tab\t caf\u00e9 \xe2\x9c\x93";
  store::EventRecord record =
      MakeEvent(TenantId("00oacme"), ctx, CreateUserSpec(), clock_, random_);
  OrderedJson parsed = OrderedJson::parse(record.json);
  ExpectSortedKeys(parsed);
  EXPECT_EQ(DumpJson(parsed), record.json) << "not the canonical serialisation";
  EXPECT_FALSE(parsed.contains("custos"));
  EXPECT_EQ(record.json.find('\n'), std::string::npos);
  EXPECT_NE(record.json.find("caf\xc3\xa9"), std::string::npos) << "UTF-8 stays as it is";
  EXPECT_NE(record.json.find("\\t"), std::string::npos) << "control characters are escaped";
}

TEST_F(EventTest, HugeInputsAreCutSoTheEventFitsALogEntry) {
  RequestContext ctx = FullContext();
  ctx.user_agent = std::string(100000, 'a') + "\xc3\xa9";
  ctx.url = "/" + std::string(100000, 'u');
  EventSpec spec = CreateUserSpec();
  spec.targets[0].display_name = std::string(70000, 'n');
  spec.debug_data["note"] = std::string(70000, 'd');
  store::EventRecord record = MakeEvent(TenantId("00oacme"), ctx, spec, clock_, random_);
  EXPECT_LT(record.json.size(), 65535u);
  OrderedJson parsed = OrderedJson::parse(record.json);
  EXPECT_EQ(parsed["client"]["userAgent"]["rawUserAgent"].get<std::string>().size(), 1024u);
  EXPECT_EQ(parsed["target"][0]["displayName"].get<std::string>().size(), 1024u);
}

TEST_F(EventTest, CarriesTheRequestAndSpecValues) {
  OrderedJson event = Make(FullContext(), CreateUserSpec());
  EXPECT_EQ(event["published"], "2026-01-01T00:00:00.123Z");
  EXPECT_EQ(event["eventType"], "user.lifecycle.create");
  EXPECT_EQ(event["version"], "0");
  EXPECT_EQ(event["severity"], "INFO");
  EXPECT_EQ(event["displayMessage"], "Create okta user");
  EXPECT_EQ(event["actor"]["alternateId"], "admin@example.com");
  EXPECT_EQ(event["client"]["ipAddress"], "203.0.113.7");
  EXPECT_EQ(event["client"]["zone"], "null");
  EXPECT_EQ(event["client"]["device"], "Computer");
  EXPECT_EQ(event["client"]["userAgent"]["browser"], "CHROME");
  EXPECT_EQ(event["client"]["userAgent"]["os"], "Mac OS X");
  EXPECT_EQ(event["request"]["ipChain"][0]["ip"], "203.0.113.7");
  EXPECT_EQ(event["request"]["ipChain"][0]["version"], "V4");
  EXPECT_EQ(event["authenticationContext"]["credentialType"], "PASSWORD");
  EXPECT_EQ(event["authenticationContext"]["authenticationStep"], 0);
  EXPECT_EQ(event["authenticationContext"]["externalSessionId"], "102sessionabc");
  EXPECT_EQ(event["outcome"]["result"], "SUCCESS");
  EXPECT_EQ(event["target"][0]["alternateId"], "jane@example.com");
  EXPECT_EQ(event["transaction"]["type"], "WEB");
  EXPECT_EQ(event["transaction"]["id"], "req-123");
  EXPECT_EQ(event["transaction"]["detail"], OrderedJson::object());
  const OrderedJson& debug = event["debugContext"]["debugData"];
  EXPECT_EQ(debug["requestId"], "req-123");
  EXPECT_EQ(debug["requestUri"], "/t/acme/api/v1/users") << "a module cannot forge request facts";
  EXPECT_EQ(debug["url"], "/t/acme/api/v1/users?activate=true");
  EXPECT_EQ(debug["source"], "api");
}

TEST_F(EventTest, RecordAgreesWithItsJson) {
  OrderedJson event = Make(FullContext(), CreateUserSpec());
  EXPECT_EQ(record_.seq, 0);
  EXPECT_EQ(record_.tenant_id, TenantId("00otenant0000000000"));
  EXPECT_EQ(record_.uuid, event["uuid"]);
  EXPECT_THAT(record_.uuid,
              MatchesRegex("019b76da-a87b-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"))
      << "a version 7 UUID starting with the published millisecond";
  EXPECT_EQ(record_.event_type, "user.lifecycle.create");
  // The stored instant is the one the JSON shows, to the millisecond.
  EXPECT_EQ(record_.published, absl::FromUnixMillis(1767225600123));
  EXPECT_EQ(FormatRfc3339(record_.published), event["published"]);
}

TEST_F(EventTest, EmptyValuesBecomeNullWhereTheFormatHasNull) {
  EventSpec spec;
  spec.event_type = "system.api_token.create";
  RequestContext context;
  context.actor = SystemPrincipal();
  OrderedJson event = Make(context, spec);
  EXPECT_TRUE(event["displayMessage"].is_null());
  EXPECT_TRUE(event["legacyEventType"].is_null());
  EXPECT_TRUE(event["device"].is_null());
  EXPECT_EQ(event["actor"]["type"], "SystemPrincipal");
  EXPECT_TRUE(event["actor"]["detailEntry"].is_null());
  EXPECT_TRUE(event["client"]["ipAddress"].is_null());
  EXPECT_TRUE(event["client"]["device"].is_null());
  EXPECT_TRUE(event["client"]["id"].is_null());
  EXPECT_TRUE(event["client"]["geographicalContext"].is_null());
  EXPECT_TRUE(event["client"]["userAgent"]["rawUserAgent"].is_null());
  EXPECT_TRUE(event["client"]["userAgent"]["os"].is_null());
  EXPECT_TRUE(event["client"]["userAgent"]["browser"].is_null());
  EXPECT_EQ(event["request"]["ipChain"], OrderedJson::array());
  EXPECT_TRUE(event["authenticationContext"]["credentialType"].is_null());
  EXPECT_TRUE(event["authenticationContext"]["externalSessionId"].is_null());
  EXPECT_TRUE(event["authenticationContext"]["issuer"].is_null());
  EXPECT_TRUE(event["outcome"]["reason"].is_null());
  EXPECT_EQ(event["target"], OrderedJson::array());
  EXPECT_EQ(event["transaction"]["type"], "JOB");
  EXPECT_TRUE(event["transaction"]["id"].is_null());
  EXPECT_TRUE(event["debugContext"]["debugData"]["requestId"].is_null());
  EXPECT_TRUE(event["debugContext"]["debugData"]["requestUri"].is_null());
  for (const char* key : {"asNumber", "asOrg", "isp", "domain", "isProxy"}) {
    EXPECT_TRUE(event["securityContext"][key].is_null()) << key;
  }
}

TEST_F(EventTest, FailureCarriesReasonAndSeverity) {
  EventSpec spec;
  spec.event_type = "user.session.start";
  spec.severity = "WARN";
  spec.outcome = std::string(kFailure);
  spec.reason = "INVALID_CREDENTIALS";
  RequestContext context = FullContext();
  context.ip_address = "2001:db8::1";
  OrderedJson event = Make(context, spec);
  EXPECT_EQ(event["severity"], "WARN");
  EXPECT_EQ(event["outcome"]["result"], "FAILURE");
  EXPECT_EQ(event["outcome"]["reason"], "INVALID_CREDENTIALS");
  EXPECT_EQ(event["request"]["ipChain"][0]["version"], "V6");
}

TEST_F(EventTest, JsonIsCompactAndRoundTrips) {
  Make(FullContext(), CreateUserSpec());
  EXPECT_EQ(record_.json.find('\n'), std::string::npos);
  EXPECT_EQ(DumpJson(OrderedJson::parse(record_.json)), record_.json);
  // The unordered type reads it too (filters and API handlers use either).
  EXPECT_EQ(Json::parse(record_.json)["actor"]["id"], "00uadmin0000000000a");
}

TEST_F(EventTest, SameSeedAndClockGiveTheSameEventAndNewDrawsGiveNewUuids) {
  crypto::SeededRandom a(99);
  crypto::SeededRandom b(99);
  TenantId tenant("00otenant0000000000");
  store::EventRecord first = MakeEvent(tenant, FullContext(), CreateUserSpec(), clock_, a);
  store::EventRecord same = MakeEvent(tenant, FullContext(), CreateUserSpec(), clock_, b);
  store::EventRecord next = MakeEvent(tenant, FullContext(), CreateUserSpec(), clock_, a);
  EXPECT_EQ(first.json, same.json);
  EXPECT_NE(first.uuid, next.uuid);
}

TEST_F(EventTest, ReadsCommonUserAgents) {
  struct Case {
    std::string ua, browser, os, device;
  };
  std::vector<Case> cases = {
      {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
       "Chrome/120.0 Safari/537.36 Edg/120.0",
       "EDGE", "Windows 10", "Computer"},
      {"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "FIREFOX", "Linux",
       "Computer"},
      {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
       "like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
       "SAFARI", "iOS", "Mobile"},
      {"okta-sdk-nodejs/7.0.0 node/20.10.0 linux/6.1", "UNKNOWN", "Unknown", "Unknown"},
  };
  std::vector<std::string> got, want;
  for (const Case& c : cases) {
    RequestContext context = FullContext();
    context.user_agent = c.ua;
    OrderedJson event = Make(context, CreateUserSpec());
    const OrderedJson& client = event["client"];
    got.push_back(client["userAgent"]["browser"].get<std::string>() + "|" +
                  client["userAgent"]["os"].get<std::string>() + "|" +
                  client["device"].get<std::string>());
    want.push_back(c.browser + "|" + c.os + "|" + c.device);
  }
  EXPECT_THAT(got, ElementsAreArray(want));
}

// MakeEvent writes its JSON directly rather than through a nlohmann tree; the bytes (hence the
// leaf hash in the log) must be exactly DumpJson of the tree, for any strings it is given.
TEST_F(EventTest, DirectJsonIsByteForByteTheTreesSerialisation) {
  std::mt19937 draws(11);  // fixed seed: the same inputs every run
  const std::vector<std::string> pieces = {
      "",
      "a",
      "req-1",
      "\"",
      "\\",
      "/",
      "\t",
      "\n",
      "\r",
      "\b",
      "\f",
      std::string(1, '\0'),
      "\x01",
      "\x1f",
      "\x7f",
      "caf\u00e9",
      "\xe2\x9c\x93",
      "\xf0\x9f\x98\x80",
      "requestId",
      "url",
      "requestUri",
      "zz",
      ":",
      "a:b",
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile Safari/604.1",
      std::string(1100, 'x'),
      std::string(1023, 'y') + "\xc3\xa9"};
  // Not valid UTF-8: the direct writer must hand these events to the tree.
  const std::vector<std::string> invalid = {"\xc3", "\xff", "\xed\xa0\x80", "\xc0\xaf"};
  bool allow_invalid = false;
  auto piece = [&] {
    if (allow_invalid && draws() % 50 == 0) return invalid[draws() % invalid.size()];
    return pieces[draws() % pieces.size()];
  };
  auto text = [&] { return piece() + piece(); };
  int direct = 0;
  for (int round = 0; round < 3000; ++round) {
    allow_invalid = round % 2 == 1;
    RequestContext ctx;
    ctx.actor = {text(), text(), text(), text()};
    ctx.request_id = text();
    ctx.ip_address = text();
    ctx.user_agent = text();
    ctx.url = text() + ((draws() % 2) == 0 ? "?" + text() : "");
    ctx.external_session_id = text();
    EventSpec spec;
    spec.event_type = text();
    spec.display_message = text();
    spec.severity = text();
    spec.outcome = text();
    spec.reason = text();
    spec.credential_type = text();
    for (size_t n = (draws() % 3); n > 0; --n)
      spec.targets.push_back({text(), text(), text(), text()});
    for (size_t n = (draws() % 5); n > 0; --n) spec.debug_data[text()] = text();
    store::EventRecord record = MakeEvent(TenantId("00oacme"), ctx, spec, clock_, random_);
    const std::string tree = DumpJson(internal::EventJsonTree(record, ctx, spec));
    ASSERT_EQ(record.json, tree) << "round " << round;
    std::optional<std::string> written = internal::EventJsonDirect(record, ctx, spec);
    if (written.has_value()) {
      ++direct;
      ASSERT_EQ(*written, tree) << "round " << round;
    }
  }
  EXPECT_GT(direct, 1500) << "the direct writer hardly ran";
  EXPECT_LT(direct, 3000) << "invalid UTF-8 never reached the tree";
}

}  // namespace
}  // namespace custos::audit
