#include "support/plane.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/errors.h"
#include "common/status_macros.h"
#include "common/time_format.h"
#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "store/sqlite/temp_sqlite_store.h"
#include "support/jwk.h"

namespace custos::support {
namespace {

using ::testing::Contains;
using ::testing::Not;

const TenantId kProvider{std::string(store::kProviderLogId)};

// A device key held by the test, as `custos device enroll` would hold it (Ed25519 here).
struct TestKey {
  std::string seed;
  Json jwk;
  std::string jkt;
};

struct EnrolledDevice {
  store::DeviceRecord record;
  TestKey key;
};

// A working operator: provider user, operator record, an enrolled compliant device, a context.
struct Worker {
  store::UserRecord user;
  store::VendorRecord vendor;
  EnrolledDevice device;
  OperatorContext ctx;
};

class SupportPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    store_ = &temp_->store();
    ASSERT_TRUE(EnsureProviderTenant(*store_, clock_, random_).ok());
    plane_ = std::make_unique<SupportPlane>(*store_, config_, clock_, random_);
    admin_.actor = {"00Tprovideradmin0001", "ApiToken", "provider-admin", "Provider admin"};
    admin_.request_id = "req-admin";
    admin_.ip_address = "198.51.100.9";
    acme_ = AddTenant("acme");
    globex_ = AddTenant("globex");
    tenant_admin_.actor = {"00Tacmeadmin00000001", "ApiToken", "acme-admin", "Acme admin"};
    tenant_admin_.request_id = "req-tenant";
    tenant_admin_.ip_address = "192.0.2.44";
    vendor_ = *plane_->CreateVendor(admin_, {"Acme Support Ltd", "Acme Support Ltd", "gb"});
  }
  void TearDown() override { temp_.reset(); }

  store::TenantRecord AddTenant(const std::string& name) {
    store::TenantRecord tenant{TenantId(random_.Id(kTenantIdPrefix)), name, clock_.Now()};
    EXPECT_TRUE(Write([&](store::Transaction& tx) { return tx.Tenants().Insert(tenant); }).ok());
    return tenant;
  }

  absl::Status Write(absl::FunctionRef<absl::Status(store::Transaction&)> fn) {
    return store_->Write(fn);
  }

  store::TenantRecord Tenant(const TenantId& id) {
    return *store::ReadResult(*store_,
                              [&](store::Transaction& tx) { return tx.Tenants().Get(id); });
  }

  store::UserRecord AddProviderUser(const std::string& login) {
    const absl::Time now = clock_.Now();
    store::UserRecord user;
    user.id = UserId(random_.Id(kUserIdPrefix));
    user.tenant_id = kProvider;
    user.status = std::string(store::kUserActive);
    user.login = login;
    user.profile_json =
        DumpJson(Json{{"login", login}, {"firstName", "Grace"}, {"lastName", "Hopper"}});
    user.created = user.status_changed = user.last_updated = now;
    EXPECT_TRUE(Write([&](store::Transaction& tx) { return tx.Users().Insert(user); }).ok());
    return user;
  }

  // A provider-tenant session; returns its token.
  std::string AddSession(const store::UserRecord& user, const std::string& amr = "pwd otp") {
    const std::string token = random_.Token(32);
    const absl::Time now = clock_.Now();
    store::SessionRecord session{.id = SessionId(random_.Id(kSessionIdPrefix)),
                                 .tenant_id = kProvider,
                                 .user_id = user.id,
                                 .token_hash = crypto::Sha256Hex(token),
                                 .created = now,
                                 .last_active = now,
                                 .expires = now + absl::Hours(24),
                                 .amr = amr};
    EXPECT_TRUE(Write([&](store::Transaction& tx) { return tx.Sessions().Insert(session); }).ok());
    return token;
  }

  bool SessionExists(const std::string& token) {
    return store::ReadResult(*store_,
                             [&](store::Transaction& tx) {
                               return tx.Sessions().FindByHash(kProvider, crypto::Sha256Hex(token));
                             })
        .ok();
  }

  TestKey NewKey() {
    TestKey key;
    key.seed = crypto::ed25519::GenerateSeed(random_);
    key.jwk = {{"kty", "OKP"},
               {"crv", "Ed25519"},
               {"x", crypto::Base64UrlEncode(*crypto::ed25519::PublicKeyFromSeed(key.seed))}};
    key.jkt = Thumbprint(*ParsePublicJwk(key.jwk));
    return key;
  }

  std::string SignReport(const TestKey& key, const std::string& device_id, const Posture& posture,
                         absl::Time iat) {
    const Json header = {{"alg", "EdDSA"}, {"typ", std::string(kPostureJwtType)}};
    const std::string input = crypto::Base64UrlEncode(DumpJson(header)) + "." +
                              crypto::Base64UrlEncode(DumpJson(
                                  PostureReportClaims(device_id, posture, iat, random_.Token(16))));
    return input + "." + crypto::Base64UrlEncode(*crypto::ed25519::Sign(key.seed, input));
  }

  static Posture GoodPosture() {
    return Posture{.os_name = "Debian GNU/Linux",
                   .os_version = "12",
                   .disk_encrypted = true,
                   .screen_lock = true,
                   .edr_running = true,
                   .last_patch = "2026-01-01"};
  }

  // Enrols a device of `vendor` and, when `report` is set, reports `posture` for it.
  EnrolledDevice Enrol(const store::VendorRecord& vendor, const std::string& name,
                       bool report = true, Posture posture = GoodPosture()) {
    EnrolledDevice device;
    device.key = NewKey();
    auto token = plane_->CreateEnrollmentToken(admin_, vendor.id, name);
    EXPECT_TRUE(token.ok()) << token.status();
    auto record = plane_->EnrollDevice(device_ctx_, token->token, device.key.jwk, device.key.jkt);
    EXPECT_TRUE(record.ok()) << record.status();
    device.record = *record;
    if (report) {
      auto reported =
          plane_->ReportPosture(device_ctx_, device.record.id,
                                SignReport(device.key, device.record.id, posture, clock_.Now()));
      EXPECT_TRUE(reported.ok()) << reported.status();
      device.record = *reported;
    }
    return device;
  }

  OperatorContext ContextOf(const store::UserRecord& user, const store::DeviceRecord& device) {
    OperatorContext op;
    op.op = *plane_->GetOperator(user.id);
    op.login = user.login;
    op.display_name = "Grace Hopper";
    op.vendor = *plane_->GetVendor(op.op.vendor_id);
    op.device = *plane_->GetDevice(device.id);
    op.request.actor = {user.id.value(), "User", user.login, op.display_name};
    op.request.request_id = "req-operator";
    op.request.ip_address = "203.0.113.7";
    op.request.user_agent = "custos-device/1.0";
    op.request.external_session_id = "102session";
    return op;
  }

  Worker AddWorker(const std::string& login, const store::VendorRecord& vendor) {
    Worker w;
    w.user = AddProviderUser(login);
    w.vendor = vendor;
    EXPECT_TRUE(plane_->CreateOperator(admin_, w.user.id, vendor.id).ok());
    w.device = Enrol(vendor, login + "-laptop");
    w.ctx = ContextOf(w.user, w.device.record);
    return w;
  }

  store::SupportCaseRecord TenantCase(const store::TenantRecord& tenant) {
    auto opened = plane_->OpenCase(tenant_admin_, nullptr, tenant, "Users cannot sign in");
    EXPECT_TRUE(opened.ok()) << opened.status();
    return *opened;
  }

  AccessRequestInfo Ask(const Worker& w, const store::TenantRecord& tenant,
                        const std::string& case_id, std::vector<std::string> scope = {"read"},
                        std::optional<absl::Duration> duration = absl::Hours(4)) {
    auto info = plane_->RequestAccess(
        w.ctx, {tenant.name, case_id, std::string(kJustificationCustomerInitiated),
                std::move(scope), duration});
    EXPECT_TRUE(info.ok()) << info.status();
    return *info;
  }

  // An approved grant for `w` in `tenant`.
  store::GrantRecord Granted(const Worker& w, const store::TenantRecord& tenant) {
    AccessRequestInfo asked = Ask(w, tenant, TenantCase(tenant).id);
    auto approved = plane_->Approve(tenant_admin_, tenant, asked.request.id, std::nullopt, "ok");
    EXPECT_TRUE(approved.ok()) << approved.status();
    return *approved->grant;
  }

  std::vector<Json> Events(const TenantId& log, std::string_view type = {}) {
    std::vector<Json> out;
    EXPECT_TRUE(store_
                    ->Read([&](store::Transaction& tx) -> absl::Status {
                      store::EventQuery q;
                      q.limit = 10000;
                      auto events = tx.Events().Query(log, q);
                      if (!events.ok()) return events.status();
                      for (const auto& e : *events) {
                        if (type.empty() || e.event_type == type) {
                          out.push_back(Json::parse(e.json));
                        }
                      }
                      return absl::OkStatus();
                    })
                    .ok());
    return out;
  }

  std::string AllEventText() {
    std::string text;
    for (const TenantId& log : {kProvider, acme_.id, globex_.id}) {
      for (const Json& e : Events(log)) text += e.dump();
    }
    return text;
  }

  static std::string Outcome(const Json& event) { return event["outcome"]["result"]; }
  static std::string Reason(const Json& event) {
    return event["outcome"]["reason"].is_string() ? event["outcome"]["reason"].get<std::string>()
                                                  : "";
  }
  static const Json& Debug(const Json& event) { return event["debugContext"]["debugData"]; }

  store::AccessRequestRecord RequestRow(const TenantId& tenant, const std::string& id) {
    return *store::ReadResult(
        *store_, [&](store::Transaction& tx) { return tx.Support().GetAccessRequest(tenant, id); });
  }
  store::GrantRecord GrantRow(const TenantId& tenant, const std::string& id) {
    return *store::ReadResult(
        *store_, [&](store::Transaction& tx) { return tx.Support().GetGrant(tenant, id); });
  }

  std::unique_ptr<store::TempSqliteStore> temp_;
  store::Store* store_ = nullptr;
  Config config_;
  FakeClock clock_;
  crypto::SeededRandom random_{42};
  std::unique_ptr<SupportPlane> plane_;
  audit::RequestContext admin_;
  audit::RequestContext tenant_admin_;
  audit::RequestContext device_ctx_{.actor = {"unknown", "Device", "", ""},
                                    .ip_address = "203.0.113.7"};
  store::TenantRecord acme_;
  store::TenantRecord globex_;
  store::VendorRecord vendor_;
};

TEST_F(SupportPlaneTest, ProviderTenantIsCreatedOnce) {
  ASSERT_TRUE(EnsureProviderTenant(*store_, clock_, random_).ok());
  store::TenantRecord provider = Tenant(kProvider);
  EXPECT_EQ(provider.name, kProviderTenantName);
  EXPECT_EQ(Events(kProvider, "tenant.lifecycle.create").size(), 1u);
}

TEST_F(SupportPlaneTest, VendorsAreCreatedListedAndNamesAreUnique) {
  EXPECT_EQ(vendor_.country, "GB");
  EXPECT_EQ(vendor_.status, store::kStatusActive);
  EXPECT_EQ(vendor_.id.substr(0, 3), store::kVendorIdPrefix);
  EXPECT_EQ(vendor_.id.size(), 20u);
  auto other = plane_->CreateVendor(admin_, {"Globex Helpdesk", "Globex SRL", "ro"});
  ASSERT_TRUE(other.ok());

  auto duplicate = plane_->CreateVendor(admin_, {"Acme Support Ltd", "Someone else", "US"});
  EXPECT_EQ(duplicate.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ErrorCodeOf(duplicate.status()), kErrValidation);
  auto bad = plane_->CreateVendor(admin_, {"", "X", "GBR"});
  EXPECT_EQ(ErrorCodeOf(bad.status()), kErrValidation);
  EXPECT_EQ(ErrorCausesOf(bad.status()).size(), 2u);

  auto vendors = plane_->ListVendors();
  ASSERT_TRUE(vendors.ok());
  EXPECT_EQ(vendors->size(), 2u);
  EXPECT_EQ(plane_->GetVendor(other->id)->name, "Globex Helpdesk");
  EXPECT_TRUE(absl::IsNotFound(plane_->GetVendor("vnd00000000000000000").status()));

  auto created = Events(kProvider, "support.vendor.create");
  ASSERT_EQ(created.size(), 3u);
  EXPECT_EQ(Outcome(created[0]), "SUCCESS");
  EXPECT_EQ(created[0]["target"][0]["id"], vendor_.id);
  EXPECT_EQ(Outcome(created[2]), "FAILURE");
  EXPECT_EQ(VendorView(vendor_)["employingEntity"], "Acme Support Ltd");
}

TEST_F(SupportPlaneTest, KillSwitchEndsEverythingOfTheVendorInOneCall) {
  Worker w = AddWorker("grace@acme-support.test", vendor_);
  EnrolledDevice spare = Enrol(vendor_, "spare", /*report=*/false);
  const std::string session = AddSession(w.user);
  const std::string second_session = AddSession(w.user);
  auto token = plane_->IssueOperatorToken(device_ctx_, session, w.device.key.jkt);
  ASSERT_TRUE(token.ok()) << token.status();
  store::GrantRecord in_acme = Granted(w, acme_);
  store::GrantRecord in_globex = Granted(w, globex_);
  // Another vendor's work goes on.
  store::VendorRecord other = *plane_->CreateVendor(admin_, {"Other Co", "Other Co", "DE"});
  Worker bystander = AddWorker("linus@other.test", other);
  store::GrantRecord bystander_grant = Granted(bystander, acme_);

  auto result = plane_->SuspendVendor(admin_, vendor_.id, "workstation compromised");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->vendor.status, store::kStatusSuspended);
  EXPECT_EQ(result->sessions, 2);
  EXPECT_EQ(result->tokens, 1);
  EXPECT_EQ(result->grants, 2);
  EXPECT_EQ(result->devices, 2);

  EXPECT_FALSE(SessionExists(session));
  EXPECT_FALSE(SessionExists(second_session));
  auto stored_token = store::ReadResult(*store_, [&](store::Transaction& tx) {
    return tx.Support().FindOperatorTokenByHash(crypto::Sha256Hex(token->token));
  });
  ASSERT_TRUE(stored_token.ok());
  EXPECT_TRUE(stored_token->revoked.has_value());
  for (const auto& [tenant, grant] : {std::pair{acme_, in_acme}, std::pair{globex_, in_globex}}) {
    store::GrantRecord row = GrantRow(tenant.id, grant.id);
    EXPECT_EQ(row.status, store::kGrantRevoked);
    EXPECT_EQ(row.end_reason, "vendor_suspended");
    auto revoked = Events(tenant.id, "user.session.impersonation.revoke");
    ASSERT_EQ(revoked.size(), 1u) << tenant.name;
    EXPECT_EQ(Debug(revoked[0])["grantId"], grant.id);
    EXPECT_EQ(Debug(revoked[0])["operatorId"], w.user.id.value());
    EXPECT_EQ(Debug(revoked[0])["vendorName"], vendor_.name);
    // Internal detail stays in the provider's copy.
    EXPECT_FALSE(Debug(revoked[0]).contains("operatorLogin"));
    EXPECT_FALSE(Debug(revoked[0]).contains("employingEntity"));
  }
  EXPECT_EQ(GrantRow(acme_.id, bystander_grant.id).status, store::kGrantActive);
  EXPECT_EQ(plane_->GetDevice(w.device.record.id)->status, store::kDeviceRevoked);
  EXPECT_EQ(plane_->GetDevice(spare.record.id)->status, store::kDeviceRevoked);
  EXPECT_EQ(plane_->GetDevice(bystander.device.record.id)->status, store::kDeviceActive);

  auto provider_revokes = Events(kProvider, "user.session.impersonation.revoke");
  ASSERT_EQ(provider_revokes.size(), 2u);
  EXPECT_EQ(Debug(provider_revokes[0])["operatorLogin"], w.user.login);
  EXPECT_EQ(Debug(provider_revokes[0])["country"], "GB");
  auto suspended = Events(kProvider, "support.vendor.suspend");
  ASSERT_EQ(suspended.size(), 1u);
  EXPECT_EQ(Debug(suspended[0])["sessionsEnded"], "2");
  EXPECT_EQ(Debug(suspended[0])["tokensRevoked"], "1");
  EXPECT_EQ(Debug(suspended[0])["grantsRevoked"], "2");
  EXPECT_EQ(Debug(suspended[0])["devicesRevoked"], "2");
  EXPECT_EQ(Debug(suspended[0])["reason"], "workstation compromised");

  // Again: refused, recorded, nothing else changes.
  auto again = plane_->SuspendVendor(admin_, vendor_.id, "again");
  EXPECT_EQ(ErrorCodeOf(again.status()), kErrWrongStatus);
  suspended = Events(kProvider, "support.vendor.suspend");
  ASSERT_EQ(suspended.size(), 2u);
  EXPECT_EQ(Outcome(suspended[1]), "FAILURE");

  // Unsuspending brings the vendor back, not its devices or grants.
  auto back = plane_->UnsuspendVendor(admin_, vendor_.id);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->status, store::kStatusActive);
  EXPECT_EQ(plane_->GetDevice(w.device.record.id)->status, store::kDeviceRevoked);
  EXPECT_EQ(GrantRow(acme_.id, in_acme.id).status, store::kGrantRevoked);
  EXPECT_EQ(ErrorCodeOf(plane_->UnsuspendVendor(admin_, vendor_.id).status()), kErrWrongStatus);
}

TEST_F(SupportPlaneTest, KillSwitchVoidsEnrolmentTokensIssuedBeforeIt) {
  auto before = plane_->CreateEnrollmentToken(admin_, vendor_.id, "old-box");
  ASSERT_TRUE(before.ok()) << before.status();
  clock_.Advance(absl::Minutes(5));
  ASSERT_TRUE(plane_->SuspendVendor(admin_, vendor_.id, "workstation compromised").ok());
  clock_.Advance(absl::Minutes(5));
  ASSERT_TRUE(plane_->UnsuspendVendor(admin_, vendor_.id).ok());
  auto after = plane_->CreateEnrollmentToken(admin_, vendor_.id, "new-box");
  ASSERT_TRUE(after.ok()) << after.status();

  TestKey key = NewKey();
  auto voided = plane_->EnrollDevice(device_ctx_, before->token, key.jwk, key.jkt);
  EXPECT_EQ(voided.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ErrorCodeOf(voided.status()), kErrInvalidToken);
  // The same answer as for a token that never existed.
  auto unknown = plane_->EnrollDevice(device_ctx_, "cde_nope", key.jwk, key.jkt);
  EXPECT_EQ(voided.status().message(), unknown.status().message());

  auto device = plane_->EnrollDevice(device_ctx_, after->token, key.jwk, key.jkt);
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_EQ(device->name, "new-box");
  EXPECT_EQ(device->status, store::kDeviceActive);
  EXPECT_EQ(plane_->ListDevices(vendor_.id)->size(), 1u);

  auto enrolls = Events(kProvider, "support.device.enroll");
  ASSERT_EQ(enrolls.size(), 3u);
  EXPECT_EQ(Outcome(enrolls[0]), "FAILURE");
  EXPECT_EQ(Reason(enrolls[0]), "token_void");
  EXPECT_EQ(Debug(enrolls[0])["enrollmentTokenId"], before->record.id);
  EXPECT_EQ(Reason(enrolls[1]), "token_unknown");
  EXPECT_EQ(Outcome(enrolls[2]), "SUCCESS");
}

TEST_F(SupportPlaneTest, KillSwitchLeavesAnExpiredGrantToTheSweep) {
  Worker w = AddWorker("grace@acme-support.test", vendor_);
  store::GrantRecord lapsed = Granted(w, acme_);  // 4 h
  clock_.Advance(absl::Hours(5));
  store::GrantRecord live = Granted(w, globex_);

  auto result = plane_->SuspendVendor(admin_, vendor_.id, "workstation compromised");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->grants, 1);
  EXPECT_EQ(GrantRow(globex_.id, live.id).status, store::kGrantRevoked);
  store::GrantRecord untouched = GrantRow(acme_.id, lapsed.id);
  EXPECT_EQ(untouched.status, store::kGrantActive);
  EXPECT_EQ(untouched.end_reason, "");
  EXPECT_TRUE(Events(acme_.id, "user.session.impersonation.revoke").empty());

  EXPECT_EQ(*plane_->SweepExpired(), 1);
  store::GrantRecord ended = GrantRow(acme_.id, lapsed.id);
  EXPECT_EQ(ended.status, store::kGrantEnded);
  EXPECT_EQ(ended.end_reason, "expired");
  EXPECT_EQ(ended.ended, lapsed.expires);
  auto ends = Events(acme_.id, "user.session.impersonation.end");
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(Reason(ends[0]), "expired");
  EXPECT_EQ(GrantRow(globex_.id, live.id).status, store::kGrantRevoked);
}

TEST_F(SupportPlaneTest, EnrolmentTokenIsSingleUseAndExpires) {
  auto issued = plane_->CreateEnrollmentToken(admin_, vendor_.id, "build-box");
  ASSERT_TRUE(issued.ok());
  EXPECT_EQ(issued->token.substr(0, 4), "cde_");
  EXPECT_EQ(issued->token.size(), 47u);
  EXPECT_EQ(issued->record.expires, clock_.Now() + config_.enrollment_token_lifetime);

  TestKey key = NewKey();
  auto device = plane_->EnrollDevice(device_ctx_, issued->token, key.jwk, key.jkt);
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_EQ(device->status, store::kDeviceActive);
  EXPECT_EQ(device->name, "build-box");
  EXPECT_EQ(device->vendor_id, vendor_.id);
  EXPECT_EQ(device->jkt, key.jkt);
  EXPECT_EQ(DeviceView(*device, plane_->ComplianceOf(
                                    *device, *plane_->GetDevicePolicy()))["compliance"]["failures"],
            Json::array({"posture_missing"}));

  TestKey other = NewKey();
  auto reused = plane_->EnrollDevice(device_ctx_, issued->token, other.jwk, other.jkt);
  EXPECT_EQ(reused.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ErrorCodeOf(reused.status()), kErrInvalidToken);
  auto unknown = plane_->EnrollDevice(device_ctx_, "cde_nope", other.jwk, other.jkt);
  EXPECT_EQ(unknown.status().message(), reused.status().message());

  auto late = plane_->CreateEnrollmentToken(admin_, vendor_.id, "late-box");
  clock_.Advance(config_.enrollment_token_lifetime + absl::Seconds(1));
  auto expired = plane_->EnrollDevice(device_ctx_, late->token, other.jwk, other.jkt);
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(expired.status().message(), reused.status().message());

  auto enrolls = Events(kProvider, "support.device.enroll");
  ASSERT_EQ(enrolls.size(), 4u);
  EXPECT_EQ(Reason(enrolls[1]), "token_used");
  EXPECT_EQ(Reason(enrolls[2]), "token_unknown");
  EXPECT_EQ(Reason(enrolls[3]), "token_expired");
  EXPECT_EQ(plane_->ListDevices(vendor_.id)->size(), 1u);
  EXPECT_THAT(AllEventText(), Not(::testing::HasSubstr(issued->token)));
}

TEST_F(SupportPlaneTest, EnrolmentRefusesAnotherKeysProofAndAKeyAlreadyEnrolled) {
  TestKey key = NewKey();
  TestKey proof = NewKey();
  auto first = plane_->CreateEnrollmentToken(admin_, vendor_.id, "one");
  auto mismatch = plane_->EnrollDevice(device_ctx_, first->token, key.jwk, proof.jkt);
  EXPECT_EQ(ErrorCodeOf(mismatch.status()), kErrValidation);
  Json with_private = key.jwk;
  with_private["d"] = crypto::Base64UrlEncode(key.seed);
  auto private_key = plane_->EnrollDevice(device_ctx_, first->token, with_private, key.jkt);
  EXPECT_EQ(ErrorCodeOf(private_key.status()), kErrValidation);
  // Refusals leave the token usable.
  ASSERT_TRUE(plane_->EnrollDevice(device_ctx_, first->token, key.jwk, key.jkt).ok());

  auto second = plane_->CreateEnrollmentToken(admin_, vendor_.id, "two");
  auto duplicate = plane_->EnrollDevice(device_ctx_, second->token, key.jwk, key.jkt);
  EXPECT_EQ(ErrorCodeOf(duplicate.status()), kErrValidation);
  auto token_row = store::ReadResult(*store_, [&](store::Transaction& tx) {
    return tx.Support().FindEnrollmentTokenByHash(crypto::Sha256Hex(second->token));
  });
  EXPECT_FALSE(token_row->used.has_value());
  auto enrolls = Events(kProvider, "support.device.enroll");
  ASSERT_EQ(enrolls.size(), 4u);
  EXPECT_EQ(Reason(enrolls[0]), "proof_key_mismatch");
  EXPECT_EQ(Reason(enrolls[1]), "jwk_invalid");
  EXPECT_EQ(Outcome(enrolls[2]), "SUCCESS");
  EXPECT_EQ(Reason(enrolls[3]), "key_already_enrolled");

  ASSERT_TRUE(plane_->SuspendVendor(admin_, vendor_.id, "").ok());
  auto refused = plane_->CreateEnrollmentToken(admin_, vendor_.id, "three");
  EXPECT_EQ(ReasonOf(refused.status()), "vendor_suspended");
}

TEST_F(SupportPlaneTest, PostureReportsAreVerifiedAndMustBeNewer) {
  EnrolledDevice device = Enrol(vendor_, "laptop", /*report=*/false);
  const std::string id = device.record.id;
  auto accepted = plane_->ReportPosture(device_ctx_, id,
                                        SignReport(device.key, id, GoodPosture(), clock_.Now()));
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_EQ(accepted->posture_reported, clock_.Now());
  DevicePolicy policy = *plane_->GetDevicePolicy();
  EXPECT_TRUE(plane_->ComplianceOf(*accepted, policy).compliant);
  Json view = DeviceView(*accepted, plane_->ComplianceOf(*accepted, policy));
  EXPECT_EQ(view["posture"]["os_name"], "Debian GNU/Linux");
  EXPECT_EQ(view["compliance"]["compliant"], true);

  // The same time again, or older, is refused: a replay cannot roll posture back.
  auto replay = plane_->ReportPosture(device_ctx_, id,
                                      SignReport(device.key, id, GoodPosture(), clock_.Now()));
  EXPECT_EQ(ErrorCodeOf(replay.status()), kErrValidation);
  clock_.Advance(absl::Seconds(30));
  auto older = plane_->ReportPosture(
      device_ctx_, id, SignReport(device.key, id, GoodPosture(), clock_.Now() - absl::Seconds(40)));
  EXPECT_EQ(ErrorCodeOf(older.status()), kErrValidation);
  TestKey stranger = NewKey();
  auto forged =
      plane_->ReportPosture(device_ctx_, id, SignReport(stranger, id, GoodPosture(), clock_.Now()));
  EXPECT_EQ(forged.status().code(), absl::StatusCode::kUnauthenticated);
  auto stale = plane_->ReportPosture(
      device_ctx_, id, SignReport(device.key, id, GoodPosture(), clock_.Now() - absl::Hours(1)));
  EXPECT_EQ(ErrorCodeOf(stale.status()), kErrValidation);
  EXPECT_EQ(plane_->GetDevice(id)->posture_reported, accepted->posture_reported);

  // A failing posture is stored and shown, and makes the device noncompliant.
  Posture weak = GoodPosture();
  weak.disk_encrypted = false;
  auto noncompliant =
      plane_->ReportPosture(device_ctx_, id, SignReport(device.key, id, weak, clock_.Now()));
  ASSERT_TRUE(noncompliant.ok());
  Compliance compliance = plane_->ComplianceOf(*noncompliant, policy);
  EXPECT_FALSE(compliance.compliant);
  EXPECT_THAT(compliance.failures, Contains("disk_not_encrypted"));

  auto unknown = plane_->ReportPosture(device_ctx_, "dev00000000000000000", "x.y.z");
  EXPECT_TRUE(absl::IsNotFound(unknown.status()));

  auto postures = Events(kProvider, "support.device.posture");
  ASSERT_EQ(postures.size(), 6u);
  EXPECT_EQ(Debug(postures[0])["compliant"], "true");
  EXPECT_EQ(Reason(postures[1]), "report_not_newer");
  EXPECT_EQ(Reason(postures[2]), "report_not_newer");
  EXPECT_EQ(Reason(postures[3]), "signature_invalid");
  EXPECT_EQ(Outcome(postures[4]), "FAILURE");
  EXPECT_EQ(Debug(postures[5])["compliant"], "false");
  EXPECT_EQ(Debug(postures[5])["failures"], "disk_not_encrypted");
}

TEST_F(SupportPlaneTest, OperatorTokenIsIssuedForASecondFactorSessionOnACompliantDevice) {
  Worker w = AddWorker("grace@acme-support.test", vendor_);
  const std::string session = AddSession(w.user);
  clock_.Advance(absl::Minutes(5));
  auto issued = plane_->IssueOperatorToken(device_ctx_, session, w.device.key.jkt);
  ASSERT_TRUE(issued.ok()) << issued.status();
  EXPECT_EQ(issued->token.substr(0, 4), "cop_");
  EXPECT_EQ(issued->token.size(), 47u);
  EXPECT_EQ(issued->record.operator_id, w.user.id);
  EXPECT_EQ(issued->record.device_id, w.device.record.id);
  EXPECT_EQ(issued->record.jkt, w.device.key.jkt);
  EXPECT_EQ(issued->record.session_token_hash, crypto::Sha256Hex(session));
  EXPECT_EQ(issued->record.expires, clock_.Now() + config_.operator_token_lifetime);
  auto events = Events(kProvider, "support.token.issue");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["actor"]["id"], w.user.id.value());
  EXPECT_EQ(Debug(events[0])["tokenId"], issued->record.id);
  EXPECT_THAT(AllEventText(), Not(::testing::HasSubstr(issued->token)));
  EXPECT_THAT(AllEventText(), Not(::testing::HasSubstr(session)));
}

TEST_F(SupportPlaneTest, OperatorTokenRefusalsSayWhy) {
  Worker w = AddWorker("grace@acme-support.test", vendor_);
  const std::string& jkt = w.device.key.jkt;
  auto reason = [&](const std::string& session, const std::string& proof_jkt) {
    auto issued = plane_->IssueOperatorToken(device_ctx_, session, proof_jkt);
    EXPECT_EQ(issued.status().code(), absl::StatusCode::kUnauthenticated) << issued.status();
    return ReasonOf(issued.status());
  };
  const std::string good = AddSession(w.user);
  EXPECT_EQ(reason("no-such-session", jkt), "session_invalid");
  EXPECT_EQ(reason(AddSession(w.user, "pwd"), jkt), "second_factor_required");
  store::UserRecord plain = AddProviderUser("plain@provider.test");
  EXPECT_EQ(reason(AddSession(plain), jkt), "not_an_operator");
  EXPECT_EQ(reason(good, NewKey().jkt), "device_unknown");

  // A device of another vendor.
  store::VendorRecord other = *plane_->CreateVendor(admin_, {"Other Co", "Other Co", "DE"});
  EnrolledDevice foreign = Enrol(other, "foreign");
  EXPECT_EQ(reason(good, foreign.key.jkt), "device_wrong_vendor");
  // A device without posture.
  EnrolledDevice fresh = Enrol(vendor_, "fresh", /*report=*/false);
  EXPECT_EQ(reason(good, fresh.key.jkt), "device_noncompliant");

  ASSERT_TRUE(plane_->SetDeviceStatus(admin_, w.device.record.id, "lock").ok());
  EXPECT_EQ(reason(good, jkt), "device_locked");
  ASSERT_TRUE(plane_->SetDeviceStatus(admin_, w.device.record.id, "unlock").ok());
  ASSERT_TRUE(plane_->SuspendOperator(admin_, w.user.id, "").ok());
  const std::string after_suspension = AddSession(w.user);
  EXPECT_EQ(reason(after_suspension, jkt), "operator_suspended");
  ASSERT_TRUE(plane_->UnsuspendOperator(admin_, w.user.id).ok());
  ASSERT_TRUE(plane_->SetDeviceStatus(admin_, fresh.record.id, "revoke").ok());
  EXPECT_EQ(reason(after_suspension, fresh.key.jkt), "device_revoked");
  ASSERT_TRUE(plane_->SuspendVendor(admin_, vendor_.id, "").ok());
  const std::string after_kill = AddSession(w.user);
  EXPECT_EQ(reason(after_kill, jkt), "vendor_suspended");

  // Sessions that ended by time.
  ASSERT_TRUE(plane_->UnsuspendVendor(admin_, vendor_.id).ok());
  const std::string idle = AddSession(w.user);
  clock_.Advance(config_.session_idle_timeout);
  EXPECT_EQ(reason(idle, foreign.key.jkt), "session_invalid");

  auto events = Events(kProvider, "support.token.issue");
  ASSERT_EQ(events.size(), 11u);
  for (const Json& e : events) EXPECT_EQ(Outcome(e), "FAILURE");
  EXPECT_EQ(Reason(events[1]), "second_factor_required");
}

TEST_F(SupportPlaneTest, BlockedTenantRefusesRequestsAndStoresNothing) {
  Worker w = AddWorker("grace@acme-support.test", vendor_);
  store::SupportCaseRecord support_case = TenantCase(acme_);
  acme_ = *plane_->SetPolicy(tenant_admin_, acme_, store::kSupportPolicyBlocked);
  auto refused = plane_->RequestAccess(
      w.ctx, {"acme", support_case.id, std::string(kJustificationCustomerInitiated), {"read"}});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorCodeOf(refused.status()), kErrForbidden);
  EXPECT_EQ(ReasonOf(refused.status()), "policy_blocked");
  EXPECT_TRUE(plane_->ListAccessRequests(acme_.id, std::nullopt)->empty());
  EXPECT_TRUE(plane_->ListAccessRequestsOfOperator(w.user.id)->empty());
  for (const TenantId& log : {acme_.id, kProvider}) {
    auto events = Events(log, "support.access.request");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(Outcome(events[0]), "DENY");
    EXPECT_EQ(Reason(events[0]), "policy_blocked");
    EXPECT_EQ(Debug(events[0])["caseId"], support_case.id);
    EXPECT_EQ(Debug(events[0])["justification"], kJustificationCustomerInitiated);
    EXPECT_EQ(Debug(events[0])["deviceId"], w.device.record.id);
    EXPECT_FALSE(Debug(events[0]).contains("accessRequestId"));
    EXPECT_EQ(events[0]["client"]["ipAddress"], "203.0.113.7");
  }
  EXPECT_EQ(Debug(Events(kProvider, "support.access.request")[0])["tenantName"], "acme");
}

TEST_F(SupportPlaneTest, AutoApproveReadOnlyForReadOnCasesTheTenantOpened) {
  Worker w = AddWorker("grace@acme-support.test", vendor_);
  acme_ = *plane_->SetPolicy(tenant_admin_, acme_, store::kSupportPolicyAutoApproveRead);
  store::SupportCaseRecord tenant_case = TenantCase(acme_);
  auto provider_case = plane_->OpenCase(w.ctx.request, &w.ctx, acme_, "Proactive check");
  ASSERT_TRUE(provider_case.ok());
  EXPECT_EQ(provider_case->opened_by, store::kOpenedByProvider);
  EXPECT_EQ(provider_case->opened_by_id, w.user.id.value());

  AccessRequestInfo read = Ask(w, acme_, tenant_case.id);
  EXPECT_EQ(read.request.status, store::kRequestApproved);
  EXPECT_EQ(read.request.decided_by, "policy");
  ASSERT_TRUE(read.grant.has_value());
  EXPECT_EQ(read.grant->scope, "read");
  EXPECT_EQ(read.grant->expires, clock_.Now() + absl::Hours(4));
  EXPECT_EQ(AccessRequestView(read)["grant"]["id"], read.grant->id);

  AccessRequestInfo wider = Ask(w, acme_, tenant_case.id, {"read", "password_reset"});
  EXPECT_EQ(wider.request.status, store::kRequestPending);
  EXPECT_FALSE(wider.grant.has_value());
  AccessRequestInfo theirs = Ask(w, acme_, provider_case->id);
  EXPECT_EQ(theirs.request.status, store::kRequestPending);

  auto granted = Events(acme_.id, "user.session.impersonation.grant");
  ASSERT_EQ(granted.size(), 1u);
  EXPECT_EQ(Debug(granted[0])["grantId"], read.grant->id);
  EXPECT_EQ(Debug(granted[0])["decidedBy"], "policy");
  EXPECT_EQ(Events(acme_.id, "support.access.request").size(), 3u);
  auto opened = Events(acme_.id, "support.case.open");
  ASSERT_EQ(opened.size(), 2u);
  EXPECT_EQ(Debug(opened[1])["operatorId"], w.user.id.value());
}

TEST_F(SupportPlaneTest, AdminApprovesWithinWhatWasAskedAndNeverAfterExpiry) {
  Worker w = AddWorker("grace@acme-support.test", vendor_);
  store::SupportCaseRecord support_case = TenantCase(acme_);
  AccessRequestInfo asked = Ask(w, acme_, support_case.id, {"read", "mfa_reset"}, absl::Hours(4));
  EXPECT_EQ(asked.request.status, store::kRequestPending);
  EXPECT_EQ(asked.request.expires, clock_.Now() + config_.access_request_lifetime);
  Json view = AccessRequestView(asked);
  EXPECT_EQ(view["duration"], "4h");
  EXPECT_EQ(view["operator"]["name"], "Grace Hopper");
  EXPECT_EQ(view["device"]["compliant"], true);
  EXPECT_EQ(view["scope"], Json::array({"read", "mfa_reset"}));

  // Longer than asked: refused and recorded.
  auto longer = plane_->Approve(tenant_admin_, acme_, asked.request.id, absl::Hours(5), "");
  EXPECT_EQ(longer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RequestRow(acme_.id, asked.request.id).status, store::kRequestPending);

  auto approved = plane_->Approve(tenant_admin_, acme_, asked.request.id, absl::Hours(2), "go");
  ASSERT_TRUE(approved.ok()) << approved.status();
  EXPECT_EQ(approved->request.status, store::kRequestApproved);
  EXPECT_EQ(approved->request.decided_by, tenant_admin_.actor.id);
  ASSERT_TRUE(approved->grant.has_value());
  const store::GrantRecord& grant = *approved->grant;
  EXPECT_EQ(grant.operator_id, w.user.id);
  EXPECT_EQ(grant.device_id, w.device.record.id);
  EXPECT_EQ(grant.case_id, support_case.id);
  EXPECT_EQ(grant.scope, "read mfa_reset");
  EXPECT_EQ(grant.expires, clock_.Now() + absl::Hours(2));

  auto tenant_copy = Events(acme_.id, "user.session.impersonation.grant");
  auto provider_copy = Events(kProvider, "user.session.impersonation.grant");
  ASSERT_EQ(tenant_copy.size(), 1u);
  ASSERT_EQ(provider_copy.size(), 1u);
  for (const Json* e : {&tenant_copy[0], &provider_copy[0]}) {
    EXPECT_EQ(Debug(*e)["operatorId"], w.user.id.value());
    EXPECT_EQ(Debug(*e)["vendorId"], vendor_.id);
    EXPECT_EQ(Debug(*e)["vendorName"], vendor_.name);
    EXPECT_EQ(Debug(*e)["deviceId"], w.device.record.id);
    EXPECT_EQ(Debug(*e)["caseId"], support_case.id);
    EXPECT_EQ(Debug(*e)["justification"], kJustificationCustomerInitiated);
    EXPECT_EQ(Debug(*e)["accessRequestId"], asked.request.id);
    EXPECT_EQ(Debug(*e)["grantId"], grant.id);
    EXPECT_EQ(Debug(*e)["scope"], "read mfa_reset");
    EXPECT_EQ((*e)["actor"]["id"], tenant_admin_.actor.id);
  }
  EXPECT_FALSE(Debug(tenant_copy[0]).contains("operatorLogin"));
  EXPECT_FALSE(Debug(tenant_copy[0]).contains("tenantName"));
  EXPECT_EQ(Debug(provider_copy[0])["operatorLogin"], w.user.login);
  EXPECT_EQ(Debug(provider_copy[0])["employingEntity"], vendor_.employing_entity);
  EXPECT_EQ(Debug(provider_copy[0])["country"], "GB");
  EXPECT_EQ(Debug(provider_copy[0])["tenantId"], acme_.id.value());
  EXPECT_EQ(Debug(provider_copy[0])["tenantName"], "acme");

  // Decided once only.
  auto twice = plane_->Approve(tenant_admin_, acme_, asked.request.id, std::nullopt, "");
  EXPECT_EQ(ReasonOf(twice.status()), "request_not_pending");
  EXPECT_EQ(ErrorCodeOf(twice.status()), kErrWrongStatus);

  // An expired request is refused and left as it was.
  AccessRequestInfo late = Ask(w, acme_, support_case.id);
  clock_.Advance(config_.access_request_lifetime);
  const store::AccessRequestRecord before = RequestRow(acme_.id, late.request.id);
  auto expired = plane_->Approve(tenant_admin_, acme_, late.request.id, std::nullopt, "");
  EXPECT_EQ(ErrorCodeOf(expired.status()), kErrWrongStatus);
  EXPECT_EQ(ReasonOf(expired.status()), "request_expired");
  const store::AccessRequestRecord after = RequestRow(acme_.id, late.request.id);
  EXPECT_EQ(after.status, before.status);
  EXPECT_EQ(after.decided, before.decided);
  EXPECT_EQ(after.decided_by, before.decided_by);
  EXPECT_EQ(after.grant_id, before.grant_id);
  EXPECT_EQ(after.reason, before.reason);
  EXPECT_EQ(plane_->ListGrants(acme_.id, std::nullopt)->size(), 1u);

  auto refusals = Events(acme_.id, "support.access.approve");
  ASSERT_EQ(refusals.size(), 3u);
  EXPECT_EQ(Reason(refusals[0]), "duration_too_long");
  EXPECT_EQ(Reason(refusals[1]), "request_not_pending");
  EXPECT_EQ(Reason(refusals[2]), "request_expired");
  EXPECT_EQ(Debug(refusals[2])["accessRequestId"], late.request.id);
  for (const Json& e : refusals) EXPECT_EQ(Outcome(e), "FAILURE");
  EXPECT_EQ(Events(kProvider, "support.access.approve").size(), 3u);
}

TEST_F(SupportPlaneTest, AdminDeniesAndSuspendedOperatorsCannotBeApproved) {
  Worker w = AddWorker("grace@acme-support.test", vendor_);
  store::SupportCaseRecord support_case = TenantCase(acme_);
  AccessRequestInfo first = Ask(w, acme_, support_case.id);
  auto denied = plane_->Deny(tenant_admin_, acme_, first.request.id, "not now");
  ASSERT_TRUE(denied.ok()) << denied.status();
  EXPECT_EQ(denied->request.status, store::kRequestDenied);
  EXPECT_EQ(denied->request.reason, "not now");
  EXPECT_FALSE(denied->grant.has_value());
  EXPECT_EQ(ReasonOf(plane_->Deny(tenant_admin_, acme_, first.request.id, "").status()),
            "request_not_pending");
  auto deny_events = Events(acme_.id, "support.access.deny");
  ASSERT_EQ(deny_events.size(), 2u);
  EXPECT_EQ(Outcome(deny_events[0]), "SUCCESS");
  EXPECT_EQ(Outcome(deny_events[1]), "FAILURE");

  AccessRequestInfo second = Ask(w, acme_, support_case.id);
  ASSERT_TRUE(plane_->SuspendOperator(admin_, w.user.id, "anomaly: tenant_spread").ok());
  auto refused = plane_->Approve(tenant_admin_, acme_, second.request.id, std::nullopt, "");
  EXPECT_EQ(ReasonOf(refused.status()), "operator_suspended");
  EXPECT_EQ(RequestRow(acme_.id, second.request.id).status, store::kRequestPending);
  EXPECT_EQ(Debug(Events(kProvider, "support.operator.suspend").back())["reason"],
            "anomaly: tenant_spread");
  EXPECT_TRUE(absl::IsNotFound(
      plane_->Approve(tenant_admin_, globex_, second.request.id, std::nullopt, "").status()));
}

TEST_F(SupportPlaneTest, ExtendIsCappedAndRevokeEndsTheGrant) {
  Worker w = AddWorker("grace@acme-support.test", vendor_);
  store::GrantRecord grant = Granted(w, acme_);  // 4h
  clock_.Advance(absl::Hours(1));
  auto extended = plane_->ExtendGrant(tenant_admin_, acme_, grant.id, absl::Hours(2));
  ASSERT_TRUE(extended.ok()) << extended.status();
  EXPECT_EQ(extended->expires, grant.expires + absl::Hours(2));
  auto capped = plane_->ExtendGrant(tenant_admin_, acme_, grant.id, absl::Hours(100));
  ASSERT_TRUE(capped.ok());
  EXPECT_EQ(capped->expires, clock_.Now() + config_.grant_max_duration);
  auto extends = Events(acme_.id, "user.session.impersonation.extend");
  ASSERT_EQ(extends.size(), 2u);
  EXPECT_EQ(Debug(extends[1])["expiresAt"], FormatRfc3339(capped->expires));

  auto revoked = plane_->RevokeGrant(tenant_admin_, acme_, grant.id, "done");
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(revoked->status, store::kGrantRevoked);
  EXPECT_EQ(revoked->ended, clock_.Now());
  EXPECT_EQ(GrantView(*revoked)["status"], "REVOKED");
  EXPECT_EQ(ReasonOf(plane_->RevokeGrant(tenant_admin_, acme_, grant.id, "").status()),
            "grant_not_active");
  EXPECT_EQ(ReasonOf(plane_->ExtendGrant(tenant_admin_, acme_, grant.id, absl::Hours(1)).status()),
            "grant_not_active");
  auto revokes = Events(acme_.id, "user.session.impersonation.revoke");
  ASSERT_EQ(revokes.size(), 2u);
  EXPECT_EQ(Outcome(revokes[0]), "SUCCESS");
  EXPECT_EQ(Outcome(revokes[1]), "FAILURE");
  EXPECT_EQ(plane_->ListGrants(acme_.id, std::string(store::kGrantActive))->size(), 0u);
  EXPECT_EQ(plane_->ListGrantsOfOperator(w.user.id)->size(), 1u);
}

TEST_F(SupportPlaneTest, ClosingTheCaseEndsItsGrants) {
  Worker w = AddWorker("grace@acme-support.test", vendor_);
  store::SupportCaseRecord support_case = TenantCase(acme_);
  AccessRequestInfo one = Ask(w, acme_, support_case.id);
  AccessRequestInfo two = Ask(w, acme_, support_case.id);
  auto grant = plane_->Approve(tenant_admin_, acme_, one.request.id, std::nullopt, "");
  ASSERT_TRUE(grant.ok());
  auto closed = plane_->CloseCase(tenant_admin_, acme_, support_case.id);
  ASSERT_TRUE(closed.ok());
  EXPECT_EQ(closed->status, store::kCaseClosed);
  store::GrantRecord row = GrantRow(acme_.id, grant->grant->id);
  EXPECT_EQ(row.status, store::kGrantEnded);
  EXPECT_EQ(row.end_reason, "case_closed");
  auto ended = Events(acme_.id, "user.session.impersonation.end");
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(Debug(ended[0])["grantId"], row.id);
  EXPECT_EQ(Debug(Events(acme_.id, "support.case.close")[0])["grantsEnded"], "1");

  auto approve = plane_->Approve(tenant_admin_, acme_, two.request.id, std::nullopt, "");
  EXPECT_EQ(ReasonOf(approve.status()), "case_closed");
  EXPECT_EQ(ReasonOf(plane_->CloseCase(tenant_admin_, acme_, support_case.id).status()),
            "case_closed");
  auto request = plane_->RequestAccess(
      w.ctx, {"acme", support_case.id, std::string(kJustificationCustomerInitiated), {"read"}});
  EXPECT_EQ(ReasonOf(request.status()), "case_closed");
  EXPECT_EQ(plane_->ListCases(acme_.id)->size(), 1u);
  EXPECT_EQ(CaseView(*closed)["status"], "CLOSED");
}

TEST_F(SupportPlaneTest, BlockingRevokesGrantsAndDeniesPendingRequests) {
  Worker w = AddWorker("grace@acme-support.test", vendor_);
  store::GrantRecord grant = Granted(w, acme_);
  store::GrantRecord elsewhere = Granted(w, globex_);
  AccessRequestInfo pending = Ask(w, acme_, TenantCase(acme_).id);
  EXPECT_TRUE(absl::IsInvalidArgument(plane_->SetPolicy(tenant_admin_, acme_, "open").status()));

  auto blocked = plane_->SetPolicy(tenant_admin_, acme_, store::kSupportPolicyBlocked);
  ASSERT_TRUE(blocked.ok());
  EXPECT_EQ(blocked->support_policy, store::kSupportPolicyBlocked);
  EXPECT_EQ(Tenant(acme_.id).support_policy, store::kSupportPolicyBlocked);
  EXPECT_EQ(GrantRow(acme_.id, grant.id).status, store::kGrantRevoked);
  EXPECT_EQ(GrantRow(acme_.id, grant.id).end_reason, "policy_blocked");
  EXPECT_EQ(GrantRow(globex_.id, elsewhere.id).status, store::kGrantActive);
  EXPECT_EQ(RequestRow(acme_.id, pending.request.id).status, store::kRequestDenied);
  auto updates = Events(acme_.id, "support.policy.update");
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(Debug(updates[0])["policy"], "blocked");
  EXPECT_EQ(Debug(updates[0])["grantsRevoked"], "1");
  EXPECT_EQ(Events(kProvider, "support.policy.update").size(), 1u);
  EXPECT_EQ(Events(acme_.id, "user.session.impersonation.revoke").size(), 1u);
}

TEST_F(SupportPlaneTest, ConfirmationsAreDecidedOnceWhilePending) {
  Worker w = AddWorker("grace@acme-support.test", vendor_);
  store::GrantRecord grant = Granted(w, acme_);
  auto add = [&](const std::string& target) {
    store::ConfirmationRecord c{.id = random_.Id(store::kConfirmationIdPrefix),
                                .tenant_id = acme_.id,
                                .grant_id = grant.id,
                                .operator_id = w.user.id,
                                .action = std::string(kActionPasswordReset),
                                .target = target,
                                .status = std::string(store::kConfirmationPending),
                                .created = clock_.Now(),
                                .expires = clock_.Now() + config_.confirmation_lifetime};
    EXPECT_TRUE(
        Write([&](store::Transaction& tx) { return tx.Support().InsertConfirmation(c); }).ok());
    return c;
  };
  store::ConfirmationRecord yes = add("00uuser1");
  store::ConfirmationRecord no = add("00uuser2");
  store::ConfirmationRecord late = add("00uuser3");

  auto confirmed = plane_->DecideConfirmation(tenant_admin_, acme_, yes.id, true);
  ASSERT_TRUE(confirmed.ok());
  EXPECT_EQ(confirmed->status, store::kConfirmationConfirmed);
  EXPECT_EQ(confirmed->decided_by, tenant_admin_.actor.id);
  auto denied = plane_->DecideConfirmation(tenant_admin_, acme_, no.id, false);
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(denied->status, store::kConfirmationDenied);
  EXPECT_EQ(ReasonOf(plane_->DecideConfirmation(tenant_admin_, acme_, yes.id, false).status()),
            "confirmation_not_pending");
  clock_.Advance(config_.confirmation_lifetime);
  auto expired = plane_->DecideConfirmation(tenant_admin_, acme_, late.id, true);
  EXPECT_EQ(ReasonOf(expired.status()), "confirmation_expired");
  EXPECT_EQ(plane_->ListConfirmations(acme_.id, std::string(store::kConfirmationPending))->size(),
            1u);
  EXPECT_EQ(ConfirmationView(*confirmed)["status"], "CONFIRMED");

  auto confirms = Events(acme_.id, "support.confirmation.confirm");
  ASSERT_EQ(confirms.size(), 2u);
  EXPECT_EQ(Outcome(confirms[0]), "SUCCESS");
  EXPECT_EQ(Debug(confirms[0])["grantId"], grant.id);
  EXPECT_EQ(Debug(confirms[0])["action"], "password_reset");
  EXPECT_EQ(Reason(confirms[1]), "confirmation_expired");
  auto denies = Events(acme_.id, "support.confirmation.deny");
  ASSERT_EQ(denies.size(), 2u);
  EXPECT_EQ(Reason(denies[1]), "confirmation_not_pending");
  EXPECT_EQ(Events(kProvider, "support.confirmation.confirm").size(), 2u);
}

TEST_F(SupportPlaneTest, SweepExpiresRequestsAndEndsGrants) {
  Worker w = AddWorker("grace@acme-support.test", vendor_);
  store::GrantRecord short_grant = Granted(w, acme_);  // 4h
  AccessRequestInfo pending = Ask(w, globex_, TenantCase(globex_).id);
  store::GrantRecord long_grant = Granted(w, globex_);
  ASSERT_TRUE(plane_->ExtendGrant(tenant_admin_, globex_, long_grant.id, absl::Hours(20)).ok());
  EXPECT_EQ(*plane_->SweepExpired(), 0);

  clock_.Advance(absl::Hours(5));
  EXPECT_EQ(*plane_->SweepExpired(), 1);
  store::GrantRecord ended = GrantRow(acme_.id, short_grant.id);
  EXPECT_EQ(ended.status, store::kGrantEnded);
  EXPECT_EQ(ended.end_reason, "expired");
  EXPECT_EQ(ended.ended, short_grant.expires);
  EXPECT_EQ(GrantRow(globex_.id, long_grant.id).status, store::kGrantActive);

  clock_.Advance(config_.access_request_lifetime);
  EXPECT_EQ(*plane_->SweepExpired(), 1);
  EXPECT_EQ(RequestRow(globex_.id, pending.request.id).status, store::kRequestExpired);
  EXPECT_EQ(*plane_->SweepExpired(), 0);

  auto ends = Events(acme_.id, "user.session.impersonation.end");
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(Reason(ends[0]), "expired");
  EXPECT_EQ(ends[0]["actor"]["type"], "SystemPrincipal");
  auto expires = Events(globex_.id, "support.access.request.expire");
  ASSERT_EQ(expires.size(), 1u);
  EXPECT_EQ(Debug(expires[0])["accessRequestId"], pending.request.id);
  EXPECT_EQ(Events(kProvider, "support.access.request.expire").size(), 1u);
  EXPECT_EQ(
      ReasonOf(
          plane_->Approve(tenant_admin_, globex_, pending.request.id, std::nullopt, "").status()),
      "request_expired");
}

TEST_F(SupportPlaneTest, SweepExpiresLapsedPendingConfirmations) {
  Worker w = AddWorker("grace@acme-support.test", vendor_);
  store::GrantRecord grant = Granted(w, acme_);  // 4 h
  auto add = [&](const std::string& target, absl::Duration lifetime) {
    store::ConfirmationRecord c{.id = random_.Id(store::kConfirmationIdPrefix),
                                .tenant_id = acme_.id,
                                .grant_id = grant.id,
                                .operator_id = w.user.id,
                                .action = std::string(kActionPasswordReset),
                                .target = target,
                                .status = std::string(store::kConfirmationPending),
                                .created = clock_.Now(),
                                .expires = clock_.Now() + lifetime};
    EXPECT_TRUE(
        Write([&](store::Transaction& tx) { return tx.Support().InsertConfirmation(c); }).ok());
    return c;
  };
  auto status_of = [&](const store::ConfirmationRecord& c) {
    return store::ReadResult(
               *store_,
               [&](store::Transaction& tx) { return tx.Support().GetConfirmation(acme_.id, c.id); })
        ->status;
  };
  store::ConfirmationRecord lapsing = add("00uuser1", absl::Minutes(30));
  store::ConfirmationRecord fresh = add("00uuser2", absl::Hours(2));
  EXPECT_EQ(*plane_->SweepExpired(), 0);

  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(*plane_->SweepExpired(), 1);
  EXPECT_EQ(status_of(lapsing), store::kConfirmationExpired);
  EXPECT_EQ(status_of(fresh), store::kConfirmationPending);
  EXPECT_EQ(GrantRow(acme_.id, grant.id).status, store::kGrantActive);
  EXPECT_EQ(*plane_->SweepExpired(), 0);
  for (const TenantId& log : {acme_.id, kProvider}) {
    auto expired = Events(log, "support.confirmation.expire");
    ASSERT_EQ(expired.size(), 1u) << log.value();
    EXPECT_EQ(Reason(expired[0]), "expired");
    EXPECT_EQ(expired[0]["actor"]["type"], "SystemPrincipal");
    EXPECT_EQ(expired[0]["target"][0]["id"], acme_.id.value());
    EXPECT_EQ(Debug(expired[0])["confirmationId"], lapsing.id);
    EXPECT_EQ(Debug(expired[0])["action"], "password_reset");
    EXPECT_EQ(Debug(expired[0])["actionTarget"], "00uuser1");
    EXPECT_EQ(Debug(expired[0])["grantId"], grant.id);
  }
  // An expired confirmation can no longer be decided.
  EXPECT_EQ(ReasonOf(plane_->DecideConfirmation(tenant_admin_, acme_, lapsing.id, true).status()),
            "confirmation_not_pending");
}

TEST_F(SupportPlaneTest, DevicePolicyDefaultsFromConfigAndCanBeReplaced) {
  DevicePolicy policy = *plane_->GetDevicePolicy();
  EXPECT_EQ(policy.max_posture_age, config_.posture_max_age);
  EXPECT_EQ(policy.required_signals.size(), 3u);
  EnrolledDevice device = Enrol(vendor_, "laptop");
  clock_.Advance(absl::Hours(25));
  EXPECT_THAT(plane_->ComplianceOf(device.record, *plane_->GetDevicePolicy()).failures,
              Contains("posture_stale"));

  policy.max_posture_age = absl::Hours(48);
  policy.required_signals = {"disk_encrypted"};
  auto set = plane_->SetDevicePolicy(admin_, policy);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(plane_->GetDevicePolicy()->max_posture_age, absl::Hours(48));
  EXPECT_TRUE(plane_->ComplianceOf(device.record, *plane_->GetDevicePolicy()).compliant);
  policy.max_posture_age = absl::ZeroDuration();
  EXPECT_EQ(ErrorCodeOf(plane_->SetDevicePolicy(admin_, policy).status()), kErrValidation);
  EXPECT_EQ(plane_->GetDevicePolicy()->max_posture_age, absl::Hours(48));
  EXPECT_EQ(Events(kProvider, "support.device.policy.update").size(), 1u);
}

TEST_F(SupportPlaneTest, DeviceStatusFollowsLockUnlockRevoke) {
  Worker w = AddWorker("grace@acme-support.test", vendor_);
  const std::string id = w.device.record.id;
  auto token = plane_->IssueOperatorToken(device_ctx_, AddSession(w.user), w.device.key.jkt);
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(ErrorCodeOf(plane_->SetDeviceStatus(admin_, id, "unlock").status()), kErrWrongStatus);
  EXPECT_EQ(plane_->SetDeviceStatus(admin_, id, "lock")->status, store::kDeviceLocked);
  EXPECT_EQ(plane_->SetDeviceStatus(admin_, id, "revoke")->status, store::kDeviceRevoked);
  EXPECT_EQ(ErrorCodeOf(plane_->SetDeviceStatus(admin_, id, "unlock").status()), kErrWrongStatus);
  EXPECT_TRUE(absl::IsInvalidArgument(plane_->SetDeviceStatus(admin_, id, "wipe").status()));
  auto stored = store::ReadResult(*store_, [&](store::Transaction& tx) {
    return tx.Support().FindOperatorTokenByHash(crypto::Sha256Hex(token->token));
  });
  EXPECT_TRUE(stored->revoked.has_value());
  auto revoked = plane_->ReportPosture(
      device_ctx_, id,
      SignReport(w.device.key, id, GoodPosture(), clock_.Now() + absl::Seconds(1)));
  EXPECT_EQ(ReasonOf(revoked.status()), "device_revoked");
  EXPECT_EQ(Events(kProvider, "support.device.unlock").size(), 2u);
  EXPECT_EQ(Outcome(Events(kProvider, "support.device.revoke")[0]), "SUCCESS");
}

TEST_F(SupportPlaneTest, OperatorsComeFromTheProviderTenantAndActiveVendors) {
  store::UserRecord user = AddProviderUser("ada@provider.test");
  EXPECT_TRUE(absl::IsNotFound(
      plane_->CreateOperator(admin_, UserId("00unobody00000000000"), vendor_.id).status()));
  EXPECT_TRUE(
      absl::IsNotFound(plane_->CreateOperator(admin_, user.id, "vnd00000000000000000").status()));
  auto op = plane_->CreateOperator(admin_, user.id, vendor_.id);
  ASSERT_TRUE(op.ok());
  EXPECT_EQ(op->status, store::kStatusActive);
  EXPECT_EQ(ErrorCodeOf(plane_->CreateOperator(admin_, user.id, vendor_.id).status()),
            kErrValidation);
  const std::string session = AddSession(user);
  auto suspended = plane_->SuspendOperator(admin_, user.id, "leaving");
  ASSERT_TRUE(suspended.ok());
  EXPECT_FALSE(SessionExists(session));
  EXPECT_EQ(ErrorCodeOf(plane_->SuspendOperator(admin_, user.id, "").status()), kErrWrongStatus);
  EXPECT_EQ(plane_->ListOperators(vendor_.id)->size(), 1u);
  EXPECT_TRUE(plane_->ListOperators(std::string("vnd00000000000000000"))->empty());

  ASSERT_TRUE(plane_->SuspendVendor(admin_, vendor_.id, "").ok());
  store::UserRecord late = AddProviderUser("late@provider.test");
  auto refused = plane_->CreateOperator(admin_, late.id, vendor_.id);
  EXPECT_EQ(ErrorCodeOf(refused.status()), kErrValidation);
  EXPECT_EQ(ReasonOf(refused.status()), "vendor_suspended");
  auto creates = Events(kProvider, "support.operator.create");
  ASSERT_EQ(creates.size(), 3u);
  EXPECT_EQ(Outcome(creates[0]), "SUCCESS");
  EXPECT_EQ(Reason(creates[1]), "already_an_operator");
  EXPECT_EQ(Reason(creates[2]), "vendor_suspended");
}

TEST_F(SupportPlaneTest, TenantEventsAreIndexedAsSupportActivity) {
  Worker w = AddWorker("grace@acme-support.test", vendor_);
  const store::SupportCaseRecord support_case = TenantCase(acme_);
  auto activity = [&](store::ActivityQuery query) {
    query.from = absl::InfinitePast();
    query.to = absl::InfiniteFuture();
    auto rows = store::ReadResult(
        *store_, [&](store::Transaction& tx) { return tx.Incidents().QueryActivity(query); });
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? *rows : std::vector<store::SupportActivityRecord>();
  };
  auto only = [&](std::string_view event_type) {
    std::vector<store::SupportActivityRecord> found;
    for (const store::SupportActivityRecord& row : activity({})) {
      if (row.event_type == event_type) found.push_back(row);
    }
    EXPECT_EQ(found.size(), 1u) << event_type;
    return found.empty() ? store::SupportActivityRecord{} : found[0];
  };

  // The operator asks; a tenant admin approves on the operator's request.
  AccessRequestInfo asked = Ask(w, acme_, support_case.id);
  auto approved = plane_->Approve(tenant_admin_, acme_, asked.request.id, std::nullopt, "ok");
  ASSERT_TRUE(approved.ok()) << approved.status();
  const store::GrantRecord grant = *approved->grant;
  // A view as the gate records it, and an unauthenticated attempt it refuses.
  SupportFacts facts = FactsOf(w.ctx);
  facts.case_id = grant.case_id;
  facts.grant_id = grant.id;
  audit::RequestContext unknown{.actor = {"unknown", "User", "unknown", "Unknown operator"},
                                .ip_address = "198.51.100.77"};
  ASSERT_TRUE(
      Write([&](store::Transaction& tx) -> absl::Status {
        RETURN_IF_ERROR(AppendTransparencyEvents(
            tx, clock_, random_, &acme_, w.ctx.request, facts,
            {.event_type = "support.view",
             .display_message = "Support views tenant data",
             .debug_data = {{"resource", "users"}, {"fields", "id,status,profile.login"}}}));
        return AppendTransparencyEvents(tx, clock_, random_, &globex_, unknown, SupportFacts{},
                                        {.event_type = "support.gate.deny",
                                         .display_message = "Refused",
                                         .outcome = std::string(audit::kDeny),
                                         .reason = "token_unknown"});
      }).ok());

  const store::SupportActivityRecord request = only("support.access.request");
  EXPECT_EQ(request.tenant_id, acme_.id);
  EXPECT_TRUE(request.by_operator) << "the operator acted";
  EXPECT_EQ(request.actor_id, w.user.id.value());
  EXPECT_EQ(request.operator_id, w.user.id.value());
  EXPECT_EQ(request.vendor_id, vendor_.id);
  EXPECT_EQ(request.device_id, w.device.record.id);
  EXPECT_EQ(request.session_id, "102session");
  EXPECT_EQ(request.ip, "203.0.113.7");
  EXPECT_EQ(request.case_id, support_case.id);
  EXPECT_EQ(request.outcome, "SUCCESS");

  const store::SupportActivityRecord granted = only("user.session.impersonation.grant");
  EXPECT_FALSE(granted.by_operator) << "the tenant admin acted on the operator's request";
  EXPECT_EQ(granted.actor_id, tenant_admin_.actor.id);
  EXPECT_EQ(granted.operator_id, w.user.id.value());
  EXPECT_EQ(granted.device_id, w.device.record.id);
  EXPECT_EQ(granted.grant_id, grant.id);
  EXPECT_EQ(granted.ip, "192.0.2.44");

  const store::SupportActivityRecord view = only("support.view");
  EXPECT_TRUE(view.by_operator);
  EXPECT_EQ(view.device_id, w.device.record.id);
  EXPECT_EQ(view.session_id, "102session");
  EXPECT_EQ(view.ip, "203.0.113.7");
  EXPECT_EQ(view.grant_id, grant.id);
  EXPECT_EQ(view.case_id, support_case.id);
  EXPECT_EQ(view.resource, "users");
  EXPECT_EQ(view.fields, "id,status,profile.login");

  const store::SupportActivityRecord refused = only("support.gate.deny");
  EXPECT_EQ(refused.tenant_id, globex_.id);
  EXPECT_FALSE(refused.by_operator) << "nobody could be identified";
  EXPECT_EQ(refused.actor_id, "unknown");
  EXPECT_EQ(refused.operator_id, "");
  EXPECT_EQ(refused.device_id, "");
  EXPECT_EQ(refused.ip, "198.51.100.77");
  EXPECT_EQ(refused.outcome, "DENY");
  EXPECT_EQ(refused.reason, "token_unknown");

  // Each row names the two copies of its event, and has the tenant copy's time.
  const std::vector<store::SupportActivityRecord> rows = activity({});
  for (const store::SupportActivityRecord& row : rows) {
    SCOPED_TRACE(row.event_type);
    auto tenant_event = store::ReadResult(*store_, [&](store::Transaction& tx) {
      return tx.Logs().FindEvent(row.tenant_id.value(), row.tenant_event_uuid);
    });
    ASSERT_TRUE(tenant_event.ok()) << tenant_event.status();
    EXPECT_EQ(tenant_event->published, row.published);
    EXPECT_EQ(tenant_event->event_type, row.event_type);
    auto provider_event = store::ReadResult(*store_, [&](store::Transaction& tx) {
      return tx.Logs().FindEvent(store::kProviderLogId, row.provider_event_uuid);
    });
    ASSERT_TRUE(provider_event.ok()) << provider_event.status();
    EXPECT_EQ(provider_event->event_type, row.event_type);
  }
  // One row per support event in a tenant's log.
  size_t tenant_events = 0;
  for (const TenantId& log : {acme_.id, globex_.id}) tenant_events += Events(log).size();
  EXPECT_EQ(rows.size(), tenant_events);
  EXPECT_EQ(activity({.operator_ids = {w.user.id.value()}, .by_operator_only = true}).size(), 2u)
      << "the request and the view";

  // Events that reach no tenant's log are not indexed.
  const store::TenantRecord provider = Tenant(kProvider);
  ASSERT_TRUE(Write([&](store::Transaction& tx) -> absl::Status {
                audit::EventSpec spec{.event_type = "support.vendor.update",
                                      .display_message = "Update vendor"};
                RETURN_IF_ERROR(
                    AppendTransparencyEvents(tx, clock_, random_, nullptr, admin_, facts, spec));
                return AppendTransparencyEvents(tx, clock_, random_, &provider, admin_, facts,
                                                spec);
              }).ok());
  EXPECT_EQ(activity({}).size(), rows.size());
}

}  // namespace
}  // namespace custos::support
