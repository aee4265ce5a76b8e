#include "audit/filter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/status/status.h"
#include "common/json.h"

namespace custos::audit {
namespace {

using ::testing::HasSubstr;

// An event in the System Log shape, trimmed to what the filters below look at.
const Json& Event() {
  static const Json* const event = new Json(Json::parse(R"({
    "uuid": "f790999f-fe87-467a-9880-6982a583986c",
    "published": "2026-01-01T10:00:00.000Z",
    "eventType": "user.session.start",
    "displayMessage": "User login to Okta",
    "actor": {"id": "00uadmin", "type": "User", "alternateId": "Admin@Example.com",
              "displayName": null},
    "client": {"ipAddress": "203.0.113.7", "zone": "null"},
    "authenticationContext": {"authenticationStep": 0, "externalSessionId": ""},
    "outcome": {"result": "FAILURE", "reason": "INVALID_CREDENTIALS"},
    "target": [{"id": "00ujane", "type": "User"}, {"id": "0oaapp", "type": "AppInstance"}],
    "transaction": {"type": "WEB", "id": "req-1", "detail": {}},
    "debugContext": {"debugData": {"quote": "say \"hi\"", "path": "C:\\temp",
                                   "risk": 7.5, "big": 18446744073709551615}},
    "flags": {"verified": true, "locked": false}
  })"));
  return *event;
}

// Parses or fails the test.
Filter Parse(std::string_view text) {
  absl::StatusOr<Filter> filter = ParseFilter(text);
  EXPECT_TRUE(filter.ok()) << text << ": " << filter.status();
  return filter.ok() ? *filter : Filter();
}

bool Match(std::string_view text) { return Parse(text).Matches(Event()); }

std::string ErrorOf(std::string_view text) {
  absl::StatusOr<Filter> filter = ParseFilter(text);
  if (filter.ok()) return "parsed as " + filter->ToString();
  EXPECT_EQ(filter.status().code(), absl::StatusCode::kInvalidArgument) << text;
  return std::string(filter.status().message());
}

TEST(FilterTest, DefaultFilterMatchesEverything) {
  Filter all;
  EXPECT_TRUE(all.Matches(Event()));
  EXPECT_TRUE(all.Matches(Json()));
  EXPECT_EQ(all.ToString(), "");
}

TEST(FilterTest, EqualityIsExactAndCaseSensitive) {
  EXPECT_TRUE(Match(R"(eventType eq "user.session.start")"));
  EXPECT_FALSE(Match(R"(eventType eq "USER.SESSION.START")"));
  EXPECT_FALSE(Match(R"(eventType eq "user.session")"));
  EXPECT_TRUE(Match(R"(outcome.result eq "FAILURE")"));
  EXPECT_TRUE(Match(R"(actor.alternateId eq "Admin@Example.com")"));
  EXPECT_FALSE(Match(R"(actor.alternateId eq "admin@example.com")"));
}

TEST(FilterTest, NotEqualIsTheNegationOfEqual) {
  EXPECT_TRUE(Match(R"(actor.id ne "00uother")"));
  EXPECT_FALSE(Match(R"(actor.id ne "00uadmin")"));
  // No target is 00ujane? False: one is.
  EXPECT_FALSE(Match(R"(target.id ne "00ujane")"));
  EXPECT_TRUE(Match(R"(target.id ne "00unobody")"));
  EXPECT_TRUE(Match(R"(missing.attribute ne "x")"));
}

TEST(FilterTest, StringOperatorsIgnoreCase) {
  EXPECT_TRUE(Match(R"(eventType sw "USER.session")"));
  EXPECT_TRUE(Match(R"(eventType co "Session")"));
  EXPECT_TRUE(Match(R"(eventType ew ".START")"));
  EXPECT_FALSE(Match(R"(eventType sw "session")"));
  EXPECT_FALSE(Match(R"(eventType ew "session")"));
  EXPECT_FALSE(Match(R"(eventType co "sessions")"));
  EXPECT_TRUE(Match(R"(actor.alternateId ew "@example.COM")"));
  EXPECT_TRUE(Match(R"(eventType co "")"));
}

TEST(FilterTest, ArraysMatchWhenAnyElementMatches) {
  EXPECT_TRUE(Match(R"(target.id eq "00ujane")"));
  EXPECT_TRUE(Match(R"(target.id eq "0oaapp")"));
  EXPECT_TRUE(Match(R"(target.id eq "00ujane" and target.id eq "0oaapp")"));
  EXPECT_FALSE(Match(R"(target.id eq "00unobody")"));
  EXPECT_TRUE(Match(R"(target.type sw "app")"));
  // Each comparison looks at the targets on its own (as in the reference API).
  EXPECT_TRUE(Match(R"(target.id eq "00ujane" and target.type eq "AppInstance")"));
  EXPECT_TRUE(Parse(R"(tags eq "b")").Matches(Json::parse(R"({"tags": ["a", "b"]})")));
  EXPECT_TRUE(Parse(R"(a.b eq 1)").Matches(Json::parse(R"({"a": [[{"b": 2}], [{"b": 1}]]})")));
  EXPECT_FALSE(Parse(R"(a.b eq 1)").Matches(Json::parse(R"({"a": []})")));
}

TEST(FilterTest, NumbersBooleansAndNull) {
  EXPECT_TRUE(Match("authenticationContext.authenticationStep eq 0"));
  EXPECT_TRUE(Match("authenticationContext.authenticationStep eq -0"));
  EXPECT_TRUE(Match("authenticationContext.authenticationStep eq 0.0"));
  EXPECT_FALSE(Match(R"(authenticationContext.authenticationStep eq "0")"));
  EXPECT_TRUE(Match("debugContext.debugData.risk gt 7"));
  EXPECT_TRUE(Match("debugContext.debugData.risk le 7.5"));
  EXPECT_TRUE(Match("debugContext.debugData.risk lt 1e1"));
  EXPECT_FALSE(Match("debugContext.debugData.risk ge 7.6"));
  EXPECT_TRUE(Match("debugContext.debugData.big gt 9223372036854775807"));
  EXPECT_TRUE(Match("debugContext.debugData.big gt -1"));
  EXPECT_TRUE(Match("flags.verified eq true"));
  EXPECT_TRUE(Match("flags.locked eq FALSE"));
  EXPECT_FALSE(Match("flags.locked eq true"));
  EXPECT_TRUE(Match("actor.displayName eq null"));
  EXPECT_TRUE(Match("nothing.here eq null"));
  EXPECT_FALSE(Match("actor.id eq null"));
  EXPECT_TRUE(Match("actor.id ne Null"));
}

TEST(FilterTest, OrderingComparesDateTimesByInstant) {
  EXPECT_TRUE(Match(R"(published ge "2026-01-01T10:00:00Z")"));
  EXPECT_TRUE(Match(R"(published le "2026-01-01T11:00:00+01:00")"));
  EXPECT_FALSE(Match(R"(published gt "2026-01-01T10:00:00Z")"));
  EXPECT_TRUE(Match(R"(published lt "2026-01-01T10:00:00.001Z")"));
  // Other strings order by bytes.
  EXPECT_TRUE(Match(R"(eventType gt "user.a")"));
  EXPECT_FALSE(Match(R"(eventType lt "user.a")"));
  // Different types never compare.
  EXPECT_FALSE(Match(R"(debugContext.debugData.risk gt "1")"));
}

TEST(FilterTest, PresenceIgnoresNullEmptyStringsAndEmptyObjects) {
  EXPECT_TRUE(Match("outcome.reason pr"));
  EXPECT_TRUE(Match("target pr"));
  EXPECT_TRUE(Match("authenticationContext.authenticationStep pr"));
  EXPECT_TRUE(Match("flags.locked pr"));
  EXPECT_FALSE(Match("actor.displayName pr"));
  EXPECT_FALSE(Match("authenticationContext.externalSessionId pr"));
  EXPECT_FALSE(Match("transaction.detail pr"));
  EXPECT_FALSE(Match("missing pr"));
  EXPECT_FALSE(Parse("tags pr").Matches(Json::parse(R"({"tags": []})")));
}

TEST(FilterTest, KeywordsAreCaseInsensitiveAttributeNamesPreferAnExactMatch) {
  EXPECT_TRUE(Match(R"(EVENTTYPE EQ "user.session.start" AND Outcome.Result Eq "FAILURE")"));
  EXPECT_TRUE(Match(R"(NOT (eventType Sw "group"))"));
  Json both = Json::parse(R"({"Name": "upper", "name": "lower"})");
  EXPECT_TRUE(Parse(R"(name eq "lower")").Matches(both));
  EXPECT_TRUE(Parse(R"(Name eq "upper")").Matches(both));
  EXPECT_TRUE(Parse(R"(NAME eq "upper" or NAME eq "lower")").Matches(both));
}

TEST(FilterTest, PrecedenceIsNotThenAndThenOr) {
  EXPECT_EQ(Parse(R"(a eq 1 or b eq 2 and c eq 3)").ToString(),
            R"((a eq 1 or (b eq 2 and c eq 3)))");
  EXPECT_EQ(Parse(R"(a eq 1 and b eq 2 or c eq 3)").ToString(),
            R"(((a eq 1 and b eq 2) or c eq 3))");
  EXPECT_EQ(Parse(R"(not a eq 1 and b pr)").ToString(), R"((not (a eq 1) and b pr))");
  EXPECT_EQ(Parse(R"(not (a eq 1 or b pr))").ToString(), R"(not (a eq 1 or b pr))");
  EXPECT_EQ(Parse(R"((a eq 1 or b eq 2) and c eq 3)").ToString(),
            R"(((a eq 1 or b eq 2) and c eq 3))");
  EXPECT_EQ(Parse(R"(a eq 1 and b eq 2 and c eq 3 or d eq 4 or e eq 5)").ToString(),
            R"(((a eq 1 and b eq 2 and c eq 3) or d eq 4 or e eq 5))");
  EXPECT_EQ(Parse(R"(((a pr)))").ToString(), "a pr");

  // Behaviour, not only shape: true or (false and false) is true; (true or false) and false
  // is false.
  EXPECT_TRUE(Match(R"(eventType pr or missing pr and missing pr)"));
  EXPECT_FALSE(Match(R"((eventType pr or missing pr) and missing pr)"));
  EXPECT_TRUE(Match(R"(not missing pr and eventType pr)"));
  EXPECT_FALSE(Match(R"(not (missing pr or eventType pr))"));
  EXPECT_TRUE(Match(R"(not not eventType pr)"));
}

TEST(FilterTest, StringEscapes) {
  EXPECT_TRUE(Match(R"(debugContext.debugData.quote eq "say \"hi\"")"));
  EXPECT_TRUE(Match(R"(debugContext.debugData.path eq "C:\\temp")"));
  EXPECT_TRUE(Match(R"(eventType eq "user\u002esession.start")"));
  Json unicode = Json::parse(R"({"name": "Zoë 😀"})");
  EXPECT_TRUE(Parse(R"(name eq "Zo\u00eb \ud83d\ude00")").Matches(unicode));
  EXPECT_TRUE(Parse(R"(name eq "Zoë 😀")").Matches(unicode));
  EXPECT_EQ(Parse(R"(a eq "q\"b\\s\n")").ToString(), R"(a eq "q\"b\\s\n")");
}

TEST(FilterTest, WorksOverUserProfilesToo) {
  OrderedJson user = OrderedJson::parse(R"({
    "id": "00u1", "status": "ACTIVE", "lastUpdated": "2026-02-01T00:00:00.000Z",
    "profile": {"login": "jane@example.com", "firstName": "Jane", "department": "R&D"}})");
  EXPECT_TRUE(Parse(R"(profile.login eq "jane@example.com")").Matches(user));
  EXPECT_TRUE(Parse(R"(status eq "ACTIVE" and profile.firstName sw "ja")").Matches(user));
  EXPECT_TRUE(Parse(R"(lastUpdated gt "2026-01-31T00:00:00Z")").Matches(user));
  EXPECT_FALSE(Parse(R"(status eq "SUSPENDED" or profile.department eq "Sales")").Matches(user));
}

TEST(FilterTest, ErrorsNameThePositionAndWhatWasExpected) {
  EXPECT_EQ(ErrorOf("eventType"),
            "filter: expected an operator after 'eventType' at position 9, found the end of the "
            "filter (operators: eq ne gt ge lt le sw co ew pr)");
  EXPECT_EQ(ErrorOf(R"(eventType eqq "x")"),
            "filter: expected an operator after 'eventType' at position 10, found 'eqq' "
            "(operators: eq ne gt ge lt le sw co ew pr)");
  EXPECT_EQ(ErrorOf("eventType eq"),
            "filter: expected a value (a \"string\", a number, true, false or null) after 'eq' "
            "at position 12, found the end of the filter");
  EXPECT_EQ(ErrorOf("eventType eq user"),
            "filter: expected a value (a \"string\", a number, true, false or null) after 'eq' "
            "at position 13, found 'user'");
  EXPECT_EQ(ErrorOf(""),
            "filter: expected an attribute path, '(' or 'not' at position 0, found the end of the "
            "filter");
  EXPECT_EQ(ErrorOf("a pr and"),
            "filter: expected an attribute path, '(' or 'not' after 'and' at position 8, found "
            "the end of the filter");
  EXPECT_EQ(ErrorOf("a pr or or b pr"),
            "filter: expected an attribute path, '(' or 'not' after 'or' at position 8, found "
            "'or'");
  EXPECT_EQ(ErrorOf("a pr b pr"),
            "filter: expected 'and', 'or' or the end of the filter at position 5, found 'b'");
  EXPECT_EQ(ErrorOf("a pr)"), "filter: unexpected ')' at position 4");
  EXPECT_EQ(ErrorOf("(a pr"),
            "filter: expected 'and', 'or' or ')' at position 5, found the end of the filter (to "
            "close the '(' at position 0)");
  EXPECT_EQ(ErrorOf("()"),
            "filter: expected an attribute path, '(' or 'not' after '(' at position 1, found "
            "')'");
  EXPECT_EQ(ErrorOf(R"(a eq "open)"), "filter: unterminated string starting at position 5");
  EXPECT_EQ(ErrorOf(R"(a eq "bad \q")"), "filter: invalid escape '\\q' at position 10");
  EXPECT_EQ(ErrorOf(R"(a eq "\u12")"), "filter: invalid \\u escape at position 6");
  EXPECT_EQ(ErrorOf(R"(a eq "\ud83d")"),
            "filter: unpaired UTF-16 surrogate in \\u escape at position 6");
  EXPECT_EQ(ErrorOf("a eq 01"), "filter: invalid number '01' at position 5");
  EXPECT_EQ(ErrorOf("a eq 1.x"), "filter: invalid number '1.x' at position 5");
  EXPECT_EQ(ErrorOf("a eq 12abc"), "filter: invalid number '12abc' at position 5");
  EXPECT_EQ(ErrorOf("a eq -"), "filter: invalid number '-' at position 5");
  EXPECT_EQ(ErrorOf("a eq 'x'"), "filter: unexpected character ''' at position 5");
  EXPECT_EQ(ErrorOf("a [b eq 1]"), "filter: unexpected character '[' at position 2");
  EXPECT_EQ(ErrorOf("a..b pr"), "filter: invalid attribute path 'a..b' at position 0");
  EXPECT_EQ(ErrorOf("a. pr"), "filter: invalid attribute path 'a.' at position 0");
  EXPECT_EQ(ErrorOf("a.1b pr"), "filter: invalid attribute path 'a.1b' at position 0");
  EXPECT_EQ(ErrorOf("a sw 1"), "filter: 'sw' needs a string value at position 5");
  EXPECT_EQ(ErrorOf("a co null"), "filter: 'co' needs a string value at position 5");
  EXPECT_EQ(ErrorOf("a gt true"), "filter: 'gt' needs a string or number value at position 5");
  EXPECT_EQ(ErrorOf("a pr eq 1"),
            "filter: expected 'and', 'or' or the end of the filter at position 5, found 'eq'");
  EXPECT_EQ(ErrorOf("and pr"),
            "filter: expected an attribute path, '(' or 'not' at position 0, found 'and'");
}

TEST(FilterTest, LimitsLengthAndDepth) {
  std::string long_value(kMaxFilterLength - 7, 'x');
  EXPECT_TRUE(ParseFilter("a eq \"" + long_value + "\"").ok());  // exactly 2048
  EXPECT_EQ(ErrorOf("a eq \"" + long_value + "x\""), "filter: longer than 2048 characters");

  auto nested = [](int levels) {
    return std::string(levels, '(') + "a pr" + std::string(levels, ')');
  };
  EXPECT_TRUE(ParseFilter(nested(kMaxFilterDepth)).ok());
  EXPECT_EQ(ErrorOf(nested(kMaxFilterDepth + 1)),
            "filter: nested deeper than 32 levels at position 32");
  std::string nots;
  for (int i = 0; i <= kMaxFilterDepth; ++i) nots += "not ";
  EXPECT_THAT(ErrorOf(nots + "a pr"), HasSubstr("nested deeper than 32 levels"));

  // Long flat chains are not nesting.
  std::string chain = "a0 pr";
  for (int i = 1; i < 150; ++i) chain += " and a" + std::to_string(i) + " pr";
  EXPECT_TRUE(ParseFilter(chain).ok());
}

TEST(FilterTest, CopiesMatchLikeTheOriginal) {
  Filter original = Parse(R"(target.id eq "00ujane" and not (outcome.result eq "SUCCESS"))");
  Filter copy = original;
  Filter moved = std::move(original);
  EXPECT_TRUE(copy.Matches(Event()));
  EXPECT_TRUE(moved.Matches(Event()));
  EXPECT_EQ(copy.ToString(), moved.ToString());
}

}  // namespace
}  // namespace custos::audit
