#include "support/redaction.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace custos::support {
namespace {

using ::testing::ElementsAre;

Json User() {
  return Json::parse(R"({
    "id": "00u1", "status": "ACTIVE", "created": "2026-01-01T00:00:00.000Z",
    "activated": null, "statusChanged": "2026-01-01T00:00:00.000Z", "lastLogin": null,
    "lastUpdated": "2026-01-01T00:00:00.000Z", "passwordChanged": null,
    "type": {"id": "oty_default"},
    "profile": {"login": "jane.doe@example.com", "email": "jane.doe@example.com",
                "firstName": "Jane", "lastName": "Doe", "mobilePhone": "+1 (555) 010-0199",
                "ssn": "078-05-1120", "employeeNumber": "4711"},
    "credentials": {"password": {}, "provider": {"type": "OKTA", "name": "OKTA"}}
  })");
}

TEST(RedactionTest, UserShowsOnlyTheDeclaredFieldsMasked) {
  RedactedView r = Redact(User(), kUserFields);
  EXPECT_EQ(r.view["id"], "00u1");
  EXPECT_EQ(r.view["profile"]["email"], "j***@example.com");
  EXPECT_EQ(r.view["profile"]["login"], "j***@example.com");
  EXPECT_EQ(r.view["profile"]["firstName"], "Jane");
  EXPECT_EQ(r.view["profile"]["lastName"], "D.");
  EXPECT_EQ(r.view["profile"]["mobilePhone"], "***99");
  // Custom attributes and credentials are not on the allow-list.
  EXPECT_FALSE(r.view["profile"].contains("ssn"));
  EXPECT_FALSE(r.view["profile"].contains("employeeNumber"));
  EXPECT_FALSE(r.view.contains("credentials"));
  EXPECT_FALSE(r.view.contains("type"));
  EXPECT_EQ(r.view.dump().find("078-05"), std::string::npos);
  EXPECT_EQ(r.view.dump().find("jane.doe"), std::string::npos);
}

TEST(RedactionTest, ListsWhatWasShownAndHowInRuleOrder) {
  Json user = Json::parse(R"({"id": "00u1", "profile": {"email": "a@b.example", "x": 1}})");
  RedactedView r = Redact(user, kUserFields);
  EXPECT_THAT(r.shown, ElementsAre("id", "profile.email (masked)"));
}

TEST(RedactionTest, AMaskedFieldThatIsNotAStringIsLeftOut) {
  Json user = Json::parse(R"({"profile": {"email": {"nested": "jane@example.com"},
                                          "mobilePhone": 5550100199}})");
  RedactedView r = Redact(user, kUserFields);
  EXPECT_TRUE(r.view.empty()) << r.view.dump();
  EXPECT_TRUE(r.shown.empty());
}

TEST(RedactionTest, FactorsShowNoSecretAndAMaskedCredentialId) {
  Json factor = Json::parse(R"({"id": "uft1", "factorType": "token:software:totp",
    "provider": "GOOGLE", "status": "ACTIVE", "profile": {"credentialId": "jane@example.com"},
    "_embedded": {"activation": {"sharedSecret": "JBSWY3DPEHPK3PXP"}}})");
  RedactedView r = Redact(factor, kFactorFields);
  EXPECT_EQ(r.view["profile"]["credentialId"], "j***@example.com");
  EXPECT_EQ(r.view.dump().find("JBSWY3DP"), std::string::npos);
}

TEST(RedactionTest, MasksKeepTooLittleToIdentify) {
  EXPECT_EQ(MaskEmail("jane@example.com"), "j***@example.com");
  EXPECT_EQ(MaskEmail("a@b"), "a***@b");
  EXPECT_EQ(MaskEmail("no-at-sign"), "***");
  EXPECT_EQ(MaskEmail("@example.com"), "***");
  EXPECT_EQ(MaskEmail("\xc3\xa9lodie@example.fr"), "\xc3\xa9***@example.fr")
      << "the first character stays whole in UTF-8";
  EXPECT_EQ(MaskPhone("+1 555 0199"), "***99");
  EXPECT_EQ(MaskPhone("123"), "***") << "two of three digits would say too much";
  EXPECT_EQ(MaskPhone(""), "***");
  EXPECT_EQ(Initial("Doe"), "D.");
  EXPECT_EQ(Initial("\xc3\x96zt\xc3\xbcrk"), "\xc3\x96.");
  EXPECT_EQ(Initial(""), "");
}

}  // namespace
}  // namespace custos::support
