#include "support/access_gate.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/errors.h"
#include "common/rate_limiter.h"
#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "store/sqlite/temp_sqlite_store.h"
#include "support/device_key.h"
#include "support/jwk.h"

namespace custos::support {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const TenantId kProvider{std::string(store::kProviderLogId)};
constexpr char kBaseUrl[] = "https://custos.test";
constexpr char kMePath[] = "/provider/api/v1/support/me";
constexpr char kHomeIp[] = "203.0.113.7";

// The jti claim of a DPoP proof.
std::string JtiOf(const std::string& proof) {
  const size_t first = proof.find('.');
  const size_t second = proof.find('.', first + 1);
  std::optional<std::string> payload =
      crypto::Base64UrlDecode(std::string_view(proof).substr(first + 1, second - first - 1));
  if (!payload.has_value()) return "";
  return Json::parse(*payload).value("jti", "");
}

// An Ed25519 device key held in memory, so that proofs and reports are deterministic under
// SeededRandom. Signs as FileDeviceKey does, for MakeDpopProof and MakePostureReport.
class TestDeviceKey final : public DeviceKey {
 public:
  explicit TestDeviceKey(crypto::Random& random) : seed_(crypto::ed25519::GenerateSeed(random)) {}

  Json PublicJwk() const override {
    return {{"kty", "OKP"},
            {"crv", "Ed25519"},
            {"x", crypto::Base64UrlEncode(*crypto::ed25519::PublicKeyFromSeed(seed_))}};
  }
  std::string Algorithm() const override { return "EdDSA"; }
  absl::StatusOr<std::string> SignJws(const Json& header, const Json& payload) const override {
    Json protected_header = header;
    protected_header["alg"] = Algorithm();
    const std::string input = crypto::Base64UrlEncode(DumpJson(protected_header)) + "." +
                              crypto::Base64UrlEncode(DumpJson(payload));
    absl::StatusOr<std::string> signature = crypto::ed25519::Sign(seed_, input);
    if (!signature.ok()) return signature.status();
    return input + "." + crypto::Base64UrlEncode(*signature);
  }
  std::string Jkt() const { return Thumbprint(*ParsePublicJwk(PublicJwk())); }

 private:
  std::string seed_;
};

struct Device {
  store::DeviceRecord record;
  std::shared_ptr<TestDeviceKey> key;
};

// An operator signed in on a device: a provider session exchanged for an operator token.
struct Signin {
  std::string session;  // the provider session token
  std::string token;    // the operator token
  store::OperatorTokenRecord record;
  std::shared_ptr<TestDeviceKey> key;
};

struct Worker {
  store::UserRecord user;
  Device device;
  Signin signin;
};

class AccessGateTest : public ::testing::Test {
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
    tenant_admin_.actor = {"00Tacmeadmin00000001", "ApiToken", "acme-admin", "Acme admin"};
    tenant_admin_.request_id = "req-tenant";
    tenant_admin_.ip_address = "192.0.2.44";
    acme_ = AddTenant("acme");
    globex_ = AddTenant("globex");
    vendor_ = *plane_->CreateVendor(admin_, {"Acme Support Ltd", "Acme Support Ltd", "gb"});
    MakeGate(AnomalyRules{});
  }
  void TearDown() override {
    gate_.reset();
    temp_.reset();
  }

  void MakeGate(AnomalyRules rules, RateLimiter* limiter = nullptr) {
    gate_.reset();
    anomalies_ = std::make_unique<AnomalyDetector>(rules);
    gate_ = std::make_unique<AccessGate>(*store_, config_, clock_, random_, *plane_, dpop_,
                                         *anomalies_, limiter);
  }

  absl::Status Write(absl::FunctionRef<absl::Status(store::Transaction&)> fn) {
    return store_->Write(fn);
  }

  store::TenantRecord AddTenant(const std::string& name) {
    store::TenantRecord tenant{TenantId(random_.Id(kTenantIdPrefix)), name, clock_.Now()};
    EXPECT_TRUE(Write([&](store::Transaction& tx) { return tx.Tenants().Insert(tenant); }).ok());
    return tenant;
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

  static Posture GoodPosture() {
    return Posture{.os_name = "Debian GNU/Linux",
                   .os_version = "12",
                   .disk_encrypted = true,
                   .screen_lock = true,
                   .edr_running = true,
                   .last_patch = "2026-01-01"};
  }

  // Reports `posture` for the device, signed by its key, now.
  void Report(Device& device, const Posture& posture) {
    auto report = MakePostureReport(*device.key, device.record.id, posture, clock_.Now(), random_);
    ASSERT_TRUE(report.ok()) << report.status();
    auto reported = plane_->ReportPosture(device_ctx_, device.record.id, *report);
    ASSERT_TRUE(reported.ok()) << reported.status();
    device.record = *reported;
  }

  Device Enrol(const std::string& name, const Posture& posture = GoodPosture()) {
    Device device;
    device.key = std::make_shared<TestDeviceKey>(random_);
    auto token = plane_->CreateEnrollmentToken(admin_, vendor_.id, name);
    EXPECT_TRUE(token.ok()) << token.status();
    auto record =
        plane_->EnrollDevice(device_ctx_, token->token, device.key->PublicJwk(), device.key->Jkt());
    EXPECT_TRUE(record.ok()) << record.status();
    device.record = *record;
    Report(device, posture);
    return device;
  }

  // A new provider session (with a second factor) exchanged for an operator token bound to
  // `device`.
  Signin SignIn(const store::UserRecord& user, const Device& device) {
    Signin signin;
    signin.session = random_.Token(32);
    const absl::Time now = clock_.Now();
    store::SessionRecord session{.id = SessionId(random_.Id(kSessionIdPrefix)),
                                 .tenant_id = kProvider,
                                 .user_id = user.id,
                                 .token_hash = crypto::Sha256Hex(signin.session),
                                 .created = now,
                                 .last_active = now,
                                 .expires = now + absl::Hours(24),
                                 .amr = "pwd otp"};
    EXPECT_TRUE(Write([&](store::Transaction& tx) { return tx.Sessions().Insert(session); }).ok());
    auto issued = plane_->IssueOperatorToken(device_ctx_, signin.session, device.key->Jkt());
    EXPECT_TRUE(issued.ok()) << issued.status();
    signin.token = issued->token;
    signin.record = issued->record;
    signin.key = device.key;
    return signin;
  }

  Worker AddWorker(const std::string& login, const Posture& posture = GoodPosture()) {
    Worker w;
    w.user = AddProviderUser(login);
    EXPECT_TRUE(plane_->CreateOperator(admin_, w.user.id, vendor_.id).ok());
    w.device = Enrol(login + "-laptop", posture);
    w.signin = SignIn(w.user, w.device);
    return w;
  }

  // A request with `authorization` and no proof.
  GateRequest Unsigned(const std::string& authorization, const std::string& ip = kHomeIp) {
    GateRequest request;
    request.method = "GET";
    request.url = std::string(kBaseUrl) + kMePath;
    request.authorization = authorization;
    request.context.request_id = "req-operator";
    request.context.ip_address = ip;
    request.context.user_agent = "custos-device/1.0";
    request.context.url = kMePath;
    return request;
  }

  // A request with the sign-in's token and a fresh proof by its device key.
  GateRequest Request(const Signin& signin, const std::string& ip = kHomeIp) {
    GateRequest request = Unsigned("DPoP " + signin.token, ip);
    request.dpop = *MakeDpopProof(*signin.key, request.method, request.url, signin.token,
                                  clock_.Now(), random_);
    return request;
  }

  OperatorContext Login(const Signin& signin, const std::string& ip = kHomeIp) {
    auto op = gate_->Authenticate(Request(signin, ip));
    EXPECT_TRUE(op.ok()) << op.status();
    return op.ok() ? *op : OperatorContext{};
  }

  store::SupportCaseRecord TenantCase(const store::TenantRecord& tenant) {
    auto opened = plane_->OpenCase(tenant_admin_, nullptr, tenant, "Users cannot sign in");
    EXPECT_TRUE(opened.ok()) << opened.status();
    return *opened;
  }

  // An approved grant for `op` in `tenant`, on a new case.
  store::GrantRecord Granted(const OperatorContext& op, const store::TenantRecord& tenant,
                             std::vector<std::string> scope = {"read"},
                             absl::Duration duration = absl::Hours(4)) {
    auto asked = plane_->RequestAccess(
        op, {tenant.name, TenantCase(tenant).id, std::string(kJustificationCustomerInitiated),
             std::move(scope), duration});
    EXPECT_TRUE(asked.ok()) << asked.status();
    auto approved = plane_->Approve(tenant_admin_, tenant, asked->request.id, std::nullopt, "ok");
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

  static std::string Outcome(const Json& event) { return event["outcome"]["result"]; }
  static std::string Reason(const Json& event) {
    return event["outcome"]["reason"].is_string() ? event["outcome"]["reason"].get<std::string>()
                                                  : "";
  }
  static const Json& Debug(const Json& event) { return event["debugContext"]["debugData"]; }

  size_t Denies(const TenantId& log) { return Events(log, "support.gate.deny").size(); }

  // Runs `call`, which must be refused with `code` and `reason`, and checks that exactly one
  // support.gate.deny was recorded in the provider log and one in `tenant`'s log (when set),
  // and none in any other tenant's log.
  void ExpectRefused(const std::function<absl::Status()>& call, absl::StatusCode code,
                     std::string_view reason, const store::TenantRecord* tenant = nullptr) {
    const size_t provider_before = Denies(kProvider);
    const size_t acme_before = Denies(acme_.id);
    const size_t globex_before = Denies(globex_.id);
    const absl::Status status = call();
    EXPECT_EQ(status.code(), code) << status;
    EXPECT_EQ(ReasonOf(status), reason) << status;
    EXPECT_EQ(ErrorCodeOf(status), code == absl::StatusCode::kUnauthenticated ? kErrInvalidToken
                                   : code == absl::StatusCode::kNotFound      ? kErrNotFound
                                                                              : kErrForbidden);
    std::vector<Json> provider = Events(kProvider, "support.gate.deny");
    ASSERT_EQ(provider.size(), provider_before + 1) << reason;
    EXPECT_EQ(Outcome(provider.back()), "DENY");
    EXPECT_EQ(Reason(provider.back()), reason);
    const bool in_acme = tenant != nullptr && tenant->id == acme_.id;
    const bool in_globex = tenant != nullptr && tenant->id == globex_.id;
    EXPECT_EQ(Denies(acme_.id), acme_before + (in_acme ? 1 : 0)) << reason;
    EXPECT_EQ(Denies(globex_.id), globex_before + (in_globex ? 1 : 0)) << reason;
    if (tenant != nullptr) {
      std::vector<Json> in_tenant = Events(tenant->id, "support.gate.deny");
      ASSERT_FALSE(in_tenant.empty());
      EXPECT_EQ(Reason(in_tenant.back()), reason);
      EXPECT_EQ(in_tenant.back()["target"][0]["id"], tenant->id.value());
      EXPECT_EQ(Debug(provider.back())["tenantName"], tenant->name);
    }
  }

  void ExpectAuthRefused(const GateRequest& request, std::string_view reason) {
    ExpectRefused([&] { return gate_->Authenticate(request).status(); },
                  absl::StatusCode::kUnauthenticated, reason);
  }

  void ExpectTenantRefused(const OperatorContext& op, std::string_view tenant_name,
                           std::string_view need, std::string_view reason,
                           const store::TenantRecord* tenant,
                           absl::StatusCode code = absl::StatusCode::kPermissionDenied) {
    ExpectRefused([&] { return gate_->AuthorizeTenant(op, tenant_name, need).status(); }, code,
                  reason, tenant);
  }

  std::string OperatorStatus(const UserId& id) { return plane_->GetOperator(id)->status; }

  std::string ConfirmationStatus(const std::string& id) {
    auto stored = store::ReadResult(*store_, [&](store::Transaction& tx) {
      return tx.Support().GetConfirmation(acme_.id, id);
    });
    EXPECT_TRUE(stored.ok()) << stored.status();
    return stored.ok() ? stored->status : "";
  }

  std::unique_ptr<store::TempSqliteStore> temp_;
  store::Store* store_ = nullptr;
  Config config_;
  FakeClock clock_;
  crypto::SeededRandom random_{7};
  DpopVerifier dpop_{clock_};
  std::unique_ptr<SupportPlane> plane_;
  std::unique_ptr<AnomalyDetector> anomalies_;
  std::unique_ptr<AccessGate> gate_;
  audit::RequestContext admin_;
  audit::RequestContext tenant_admin_;
  audit::RequestContext device_ctx_{.actor = {"unknown", "Device", "", ""}, .ip_address = kHomeIp};
  store::TenantRecord acme_;
  store::TenantRecord globex_;
  store::VendorRecord vendor_;
};

// ---- Authenticate ----

TEST_F(AccessGateTest, AuthenticateFillsTheOperatorContext) {
  Worker w = AddWorker("grace@acme-support.test");
  auto op = gate_->Authenticate(Request(w.signin));
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_EQ(op->op.user_id, w.user.id);
  EXPECT_EQ(op->login, "grace@acme-support.test");
  EXPECT_EQ(op->display_name, "Grace Hopper");
  EXPECT_EQ(op->vendor.id, vendor_.id);
  EXPECT_EQ(op->device.id, w.device.record.id);
  EXPECT_EQ(op->token.id, w.signin.record.id);
  EXPECT_EQ(op->request.actor.id, w.user.id.value());
  EXPECT_EQ(op->request.actor.type, "User");
  EXPECT_EQ(op->request.actor.alternate_id, "grace@acme-support.test");
  EXPECT_EQ(op->request.actor.display_name, "Grace Hopper");
  EXPECT_EQ(op->request.external_session_id, w.signin.record.session_id.value());
  EXPECT_EQ(op->request.ip_address, kHomeIp);
  EXPECT_EQ(op->request.request_id, "req-operator");
  EXPECT_TRUE(Events(kProvider, "support.gate.deny").empty());
  EXPECT_TRUE(Events(kProvider, "support.anomaly.alert").empty());

  // The "DPoP" scheme is case-insensitive, as HTTP auth schemes are.
  GateRequest lower = Request(w.signin);
  lower.authorization = "dpop " + w.signin.token;
  EXPECT_TRUE(gate_->Authenticate(lower).ok());
}

TEST_F(AccessGateTest, RefusesRequestsWithoutATokenOrProof) {
  Worker w = AddWorker("grace@acme-support.test");
  ExpectAuthRefused(Unsigned(""), "token_missing");
  ExpectAuthRefused(Unsigned("Bearer " + w.signin.token), "dpop_scheme_required");
  ExpectAuthRefused(Unsigned("DPoP " + w.signin.token), "dpop_missing");

  // A proof made for another URL.
  GateRequest elsewhere = Request(w.signin);
  elsewhere.dpop = *MakeDpopProof(*w.signin.key, "GET", std::string(kBaseUrl) + "/elsewhere",
                                  w.signin.token, clock_.Now(), random_);
  ExpectAuthRefused(elsewhere, "dpop_htu_mismatch");

  // A proof seen before.
  GateRequest once = Request(w.signin);
  ASSERT_TRUE(gate_->Authenticate(once).ok());
  ExpectAuthRefused(once, "dpop_replayed");

  // The caller is not known: the event says so, and holds no token.
  const Json last = Events(kProvider, "support.gate.deny").back();
  EXPECT_EQ(last["actor"]["id"], "unknown");
  EXPECT_EQ(last["client"]["ipAddress"], kHomeIp);
  for (const Json& e : Events(kProvider)) {
    EXPECT_THAT(e.dump(), ::testing::Not(HasSubstr(w.signin.token)));
  }
}

TEST_F(AccessGateTest, RefusesUnknownRevokedExpiredAndForeignTokens) {
  Worker w = AddWorker("grace@acme-support.test");

  // An unknown token, with a valid proof for it.
  Signin forged = w.signin;
  forged.token = "cop_" + random_.Token(32);
  ExpectAuthRefused(Request(forged), "token_invalid");

  // A proof by another key than the token's device key.
  Signin other_key = w.signin;
  other_key.key = std::make_shared<TestDeviceKey>(random_);
  ExpectAuthRefused(Request(other_key), "dpop_key_mismatch");

  Signin revoked = SignIn(w.user, w.device);
  ASSERT_TRUE(Write([&](store::Transaction& tx) -> absl::Status {
                return tx.Support()
                    .RevokeOperatorTokens({.session_id = revoked.record.session_id}, clock_.Now())
                    .status();
              }).ok());
  ExpectAuthRefused(Request(revoked), "token_revoked");

  Signin ended = SignIn(w.user, w.device);
  ASSERT_TRUE(Write([&](store::Transaction& tx) {
                return tx.Sessions().Delete(kProvider, ended.record.session_id);
              }).ok());
  ExpectAuthRefused(Request(ended), "session_ended");

  // The first sign-in still works until its token expires.
  ASSERT_TRUE(gate_->Authenticate(Request(w.signin)).ok());
  clock_.Advance(config_.operator_token_lifetime);
  ExpectAuthRefused(Request(w.signin), "token_expired");
}

TEST_F(AccessGateTest, RefusesSuspendedVendorsAndOperatorsAndUnusableDevices) {
  Worker w = AddWorker("grace@acme-support.test");
  // The plane's suspensions also revoke tokens; the gate checks the statuses by itself, so the
  // statuses are set directly here.
  auto set_vendor = [&](std::string_view status) {
    ASSERT_TRUE(Write([&](store::Transaction& tx) -> absl::Status {
                  store::VendorRecord vendor = *tx.Support().GetVendor(vendor_.id);
                  vendor.status = std::string(status);
                  return tx.Support().UpdateVendor(vendor);
                }).ok());
  };
  auto set_operator = [&](std::string_view status) {
    ASSERT_TRUE(Write([&](store::Transaction& tx) -> absl::Status {
                  store::OperatorRecord op = *tx.Support().GetOperator(w.user.id);
                  op.status = std::string(status);
                  return tx.Support().UpdateOperator(op);
                }).ok());
  };

  set_vendor(store::kStatusSuspended);
  ExpectAuthRefused(Request(w.signin), "vendor_suspended");
  set_vendor(store::kStatusActive);

  set_operator(store::kStatusSuspended);
  ExpectAuthRefused(Request(w.signin), "operator_suspended");
  set_operator(store::kStatusActive);

  ASSERT_TRUE(plane_->SetDeviceStatus(admin_, w.device.record.id, "lock").ok());
  ExpectAuthRefused(Request(w.signin), "device_locked");
  ASSERT_TRUE(plane_->SetDeviceStatus(admin_, w.device.record.id, "unlock").ok());
  ASSERT_TRUE(gate_->Authenticate(Request(w.signin)).ok());

  ASSERT_TRUE(Write([&](store::Transaction& tx) -> absl::Status {
                store::DeviceRecord device = *tx.Support().GetDevice(w.device.record.id);
                device.status = std::string(store::kDeviceRevoked);
                return tx.Support().UpdateDevice(device);
              }).ok());
  ExpectAuthRefused(Request(w.signin), "device_revoked");
}

TEST_F(AccessGateTest, RefusesDevicesThatNoLongerComply) {
  DevicePolicy policy = *plane_->GetDevicePolicy();
  policy.required_signals = {"disk_encrypted"};
  ASSERT_TRUE(plane_->SetDevicePolicy(admin_, policy).ok());
  Posture no_screen_lock = GoodPosture();
  no_screen_lock.screen_lock = false;
  Worker w = AddWorker("grace@acme-support.test", no_screen_lock);
  ASSERT_TRUE(gate_->Authenticate(Request(w.signin)).ok());

  // The policy now requires a signal the device's posture lacks.
  policy.required_signals = {"disk_encrypted", "screen_lock"};
  ASSERT_TRUE(plane_->SetDevicePolicy(admin_, policy).ok());
  ExpectAuthRefused(Request(w.signin), "device_noncompliant");
  auto refused = gate_->Authenticate(Request(w.signin));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("screen_lock_off"));

  // The posture grows older than the policy allows.
  policy.required_signals = {"disk_encrypted"};
  policy.max_posture_age = absl::Minutes(1);
  ASSERT_TRUE(plane_->SetDevicePolicy(admin_, policy).ok());
  ASSERT_TRUE(gate_->Authenticate(Request(w.signin)).ok());
  clock_.Advance(absl::Minutes(2));
  ExpectAuthRefused(Request(w.signin), "device_noncompliant");
  EXPECT_THAT(Debug(Events(kProvider, "support.gate.deny").back())["detail"].get<std::string>(),
              HasSubstr("posture_stale"));
  // A fresh report makes it comply again.
  Report(w.device, no_screen_lock);
  EXPECT_TRUE(gate_->Authenticate(Request(w.signin)).ok());
}

TEST_F(AccessGateTest, RefusalLimiterAnswers429WithoutAnEvent) {
  RateLimiter limiter({.rate_per_second = 1, .burst = 1, .per = absl::Hours(1)}, clock_);
  MakeGate(AnomalyRules{}, &limiter);
  ExpectAuthRefused(Unsigned(""), "token_missing");

  auto limited = gate_->Authenticate(Unsigned(""));
  EXPECT_EQ(limited.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrorCodeOf(limited.status()), kErrRateLimit);
  EXPECT_EQ(Denies(kProvider), 1u);

  // Another address has its own allowance.
  ExpectAuthRefused(Unsigned("", "198.51.100.77"), "token_missing");

  // An authenticated operator's refusals are always recorded, from any address.
  Worker w = AddWorker("grace@acme-support.test");
  OperatorContext op = Login(w.signin);
  ExpectTenantRefused(op, "acme", kScopeRead, "no_grant", &acme_);
  ExpectTenantRefused(op, "acme", kScopeRead, "no_grant", &acme_);
}

TEST_F(AccessGateTest, RefusedAuthenticationOnATenantsPathIsInThatTenantsLog) {
  Worker w = AddWorker("grace@acme-support.test");
  auto on = [&](GateRequest request, const std::string& tenant_name) {
    request.tenant_name = tenant_name;
    return [this, request] { return gate_->Authenticate(request).status(); };
  };
  ExpectRefused(on(Unsigned("DPoP " + w.signin.token), "acme"), absl::StatusCode::kUnauthenticated,
                "dpop_missing", &acme_);
  Signin forged = w.signin;
  forged.token = "cop_" + random_.Token(32);
  ExpectRefused(on(Request(forged), "globex"), absl::StatusCode::kUnauthenticated, "token_invalid",
                &globex_);
  std::vector<Json> in_globex = Events(globex_.id, "support.gate.deny");
  ASSERT_EQ(in_globex.size(), 1u);
  EXPECT_EQ(in_globex[0]["actor"]["id"], "unknown");

  // An unknown tenant, or the provider realm, has no tenant log of its own to write to.
  ExpectRefused(on(Unsigned(""), "initech"), absl::StatusCode::kUnauthenticated, "token_missing");
  ExpectRefused(on(Unsigned(""), std::string(kProviderTenantName)),
                absl::StatusCode::kUnauthenticated, "token_missing");

  // An accepted request leaves nothing in the tenant's log.
  GateRequest fine = Request(w.signin);
  fine.tenant_name = "acme";
  ASSERT_TRUE(gate_->Authenticate(fine).ok());
  EXPECT_EQ(Events(acme_.id, "support.gate.deny").size(), 1u);
}

// A replay cache whose store does not answer.
class UnavailableReplayCache final : public DpopReplayCache {
 public:
  absl::StatusOr<std::optional<DpopError>> Remember(const std::string&, const std::string&,
                                                    absl::Time) override {
    return absl::UnavailableError("replay_keys: connection to server at 10.0.0.5 was lost");
  }
};

// The request is refused (fail closed) as the server's failure: kUnavailable (503 in the
// management API's shape, retry later), with nothing of the store's error for the client.
TEST_F(AccessGateTest, AProofTheReplayCacheCannotCheckIsRefusedAsTheServersFailure) {
  Worker w = AddWorker("grace@acme-support.test");
  UnavailableReplayCache broken;
  DpopVerifier dpop(clock_, {}, &broken);
  AccessGate gate(*store_, config_, clock_, random_, *plane_, dpop, *anomalies_, nullptr);
  absl::StatusOr<OperatorContext> op = gate.Authenticate(Request(w.signin));
  ASSERT_FALSE(op.ok()) << "a proof that cannot be checked for replay is not accepted";
  EXPECT_EQ(op.status().code(), absl::StatusCode::kUnavailable) << op.status();
  EXPECT_EQ(std::string(op.status().message()), kReplayCacheUnavailable);
  EXPECT_THAT(std::string(op.status().message()), Not(HasSubstr("10.0.0.5")));
}

TEST_F(AccessGateTest, ProofJtiIsRecordedOnlyOnceTheTokenChecksOut) {
  Worker w = AddWorker("grace@acme-support.test");
  // Proofs by the device's key that share one jti: the same seed draws the same jti.
  auto proof_for = [&](const GateRequest& request, const std::string& token) {
    crypto::SeededRandom same_jti{99};
    return *MakeDpopProof(*w.signin.key, request.method, request.url, token, clock_.Now(),
                          same_jti);
  };
  const std::string unknown_token = "cop_" + random_.Token(32);
  GateRequest forged = Unsigned("DPoP " + unknown_token);
  forged.dpop = proof_for(forged, unknown_token);
  GateRequest real = Unsigned("DPoP " + w.signin.token);
  real.dpop = proof_for(real, w.signin.token);
  ASSERT_EQ(JtiOf(forged.dpop), JtiOf(real.dpop));

  ExpectAuthRefused(forged, "token_invalid");
  EXPECT_EQ(dpop_.ReplayCacheSize(), 0u);
  auto accepted = gate_->Authenticate(real);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_EQ(dpop_.ReplayCacheSize(), 1u);
  // Accepted once, the proof is spent.
  ExpectAuthRefused(real, "dpop_replayed");
}

// ---- AuthorizeTenant ----

TEST_F(AccessGateTest, AuthorizeTenantRefusesUnknownBlockedAndUngrantedTenants) {
  Worker w = AddWorker("grace@acme-support.test");
  OperatorContext op = Login(w.signin);

  ExpectTenantRefused(op, "initech", kScopeRead, "tenant_unknown", nullptr,
                      absl::StatusCode::kNotFound);
  // The provider realm is not a tenant support reaches into.
  ExpectTenantRefused(op, kProviderTenantName, kScopeRead, "tenant_unknown", nullptr,
                      absl::StatusCode::kNotFound);

  ExpectTenantRefused(op, "acme", kScopeRead, "no_grant", &acme_);
  const Json deny = Events(acme_.id, "support.gate.deny").back();
  EXPECT_EQ(deny["actor"]["id"], w.user.id.value());
  EXPECT_EQ(Debug(deny)["deviceId"], w.device.record.id);
  EXPECT_FALSE(Debug(deny).contains("operatorLogin"));
  EXPECT_EQ(Debug(Events(kProvider, "support.gate.deny").back())["operatorLogin"], w.user.login);

  Granted(op, acme_);
  ExpectTenantRefused(op, "acme", kActionPasswordReset, "scope_missing", &acme_);
  EXPECT_TRUE(gate_->AuthorizeTenant(op, "acme", kScopeRead).ok());

  Granted(op, globex_);
  ASSERT_TRUE(plane_->SetPolicy(tenant_admin_, globex_, store::kSupportPolicyBlocked).ok());
  ExpectTenantRefused(op, "globex", kScopeRead, "tenant_blocked", &globex_);
}

TEST_F(AccessGateTest, AuthorizeTenantRefusesEndedGrants) {
  Worker w = AddWorker("grace@acme-support.test");
  OperatorContext op = Login(w.signin);
  store::GrantRecord acme_grant = Granted(op, acme_, {"read"}, absl::Hours(4));
  Granted(op, globex_, {"read"}, absl::Hours(8));

  ASSERT_TRUE(plane_->RevokeGrant(tenant_admin_, acme_, acme_grant.id, "done").ok());
  ExpectTenantRefused(op, "acme", kScopeRead, "grant_expired", &acme_);

  ASSERT_TRUE(gate_->AuthorizeTenant(op, "globex", kScopeRead).ok());
  clock_.Advance(absl::Hours(8));
  ExpectTenantRefused(op, "globex", kScopeRead, "grant_expired", &globex_);
}

TEST_F(AccessGateTest, AuthorizeTenantRefusesAGrantOfAnotherDevice) {
  Worker w = AddWorker("grace@acme-support.test");
  Device spare = Enrol("spare");
  Signin on_spare = SignIn(w.user, spare);
  OperatorContext op = Login(w.signin);
  Granted(op, acme_);
  OperatorContext spare_op = Login(on_spare);
  ExpectTenantRefused(spare_op, "acme", kScopeRead, "grant_other_device", &acme_);
  EXPECT_TRUE(gate_->AuthorizeTenant(op, "acme", kScopeRead).ok());
}

TEST_F(AccessGateTest, AuthorizeTenantRefusesAGrantOfAClosedCase) {
  Worker w = AddWorker("grace@acme-support.test");
  OperatorContext op = Login(w.signin);
  store::GrantRecord grant = Granted(op, acme_);
  ASSERT_TRUE(gate_->AuthorizeTenant(op, "acme", kScopeRead).ok());
  // Closing through the plane also ends the grant; the gate checks the case by itself.
  ASSERT_TRUE(Write([&](store::Transaction& tx) -> absl::Status {
                store::SupportCaseRecord c = *tx.Support().GetCase(acme_.id, grant.case_id);
                c.status = std::string(store::kCaseClosed);
                c.closed = clock_.Now();
                return tx.Support().UpdateCase(c);
              }).ok());
  ExpectTenantRefused(op, "acme", kScopeRead, "case_closed", &acme_);
}

TEST_F(AccessGateTest, AuthorizeTenantPicksTheGrantThatLastsLongest) {
  Worker w = AddWorker("grace@acme-support.test");
  OperatorContext op = Login(w.signin);
  Granted(op, acme_, {"read"}, absl::Hours(2));
  store::GrantRecord longest = Granted(op, acme_, {"read"}, absl::Hours(6));
  Granted(op, acme_, {"read"}, absl::Hours(3));
  Granted(op, globex_, {"read"}, absl::Hours(10));
  auto access = gate_->AuthorizeTenant(op, "acme", kScopeRead);
  ASSERT_TRUE(access.ok()) << access.status();
  EXPECT_EQ(access->grant.id, longest.id);
  EXPECT_EQ(access->tenant.id, acme_.id);
  EXPECT_EQ(access->tenant.name, "acme");
  EXPECT_EQ(Denies(kProvider), 0u);
}

// ---- Views ----

TEST_F(AccessGateTest, RecordViewRecordsTheFieldsShownAndTheFirstUseOnce) {
  Worker w = AddWorker("grace@acme-support.test");
  OperatorContext op = Login(w.signin);
  store::GrantRecord grant = Granted(op, acme_);
  auto access = gate_->AuthorizeTenant(op, "acme", kScopeRead);
  ASSERT_TRUE(access.ok()) << access.status();
  const absl::Time first = clock_.Now();
  ASSERT_TRUE(gate_->RecordView(op, *access, "users", {"id", "status", "profile.login"}).ok());
  clock_.Advance(absl::Minutes(5));
  ASSERT_TRUE(gate_->RecordView(op, *access, "groups", {"id"}).ok());

  for (const TenantId& log : {acme_.id, kProvider}) {
    auto views = Events(log, "support.view");
    ASSERT_EQ(views.size(), 2u) << log.value();
    EXPECT_EQ(Debug(views[0])["resource"], "users");
    EXPECT_EQ(Debug(views[0])["fields"], "id,status,profile.login");
    EXPECT_EQ(Debug(views[1])["resource"], "groups");
    EXPECT_EQ(Debug(views[1])["fields"], "id");
    EXPECT_EQ(Debug(views[0])["grantId"], grant.id);
    EXPECT_EQ(Debug(views[0])["caseId"], grant.case_id);
    EXPECT_EQ(Debug(views[0])["operatorId"], w.user.id.value());
    EXPECT_EQ(views[0]["actor"]["id"], w.user.id.value());
    EXPECT_EQ(views[0]["target"][0]["id"], acme_.id.value());

    auto initiated = Events(log, "user.session.impersonation.initiate");
    ASSERT_EQ(initiated.size(), 1u) << log.value();
    EXPECT_EQ(Debug(initiated[0])["grantId"], grant.id);
  }
  EXPECT_EQ(Debug(Events(kProvider, "support.view")[0])["tenantName"], "acme");
  auto row = store::ReadResult(
      *store_, [&](store::Transaction& tx) { return tx.Support().GetGrant(acme_.id, grant.id); });
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->first_used, first);
}

TEST_F(AccessGateTest, RecordViewRefusesAccessThatEndedInFlight) {
  Worker w = AddWorker("grace@acme-support.test");
  OperatorContext op = Login(w.signin);
  // The gate allowed the request; then, while the data was read, the access ended.
  auto view_after = [&](const std::function<void()>& end_access, absl::StatusCode code,
                        std::string_view reason) {
    auto access = gate_->AuthorizeTenant(op, "acme", kScopeRead);
    ASSERT_TRUE(access.ok()) << access.status();
    end_access();
    ExpectRefused(
        [&] {
          return gate_->RecordView(op, *access, "users", {"id", "status"});
        },
        code, reason, &acme_);
  };
  store::GrantRecord revoked = Granted(op, acme_);
  view_after(
      [&] { ASSERT_TRUE(plane_->RevokeGrant(tenant_admin_, acme_, revoked.id, "done").ok()); },
      absl::StatusCode::kPermissionDenied, "grant_expired");

  Granted(op, acme_);
  view_after([&] { ASSERT_TRUE(plane_->SetDeviceStatus(admin_, w.device.record.id, "lock").ok()); },
             absl::StatusCode::kUnauthenticated, "device_locked");
  ASSERT_TRUE(plane_->SetDeviceStatus(admin_, w.device.record.id, "unlock").ok());

  auto set_vendor = [&](std::string_view status) {
    ASSERT_TRUE(Write([&](store::Transaction& tx) -> absl::Status {
                  store::VendorRecord vendor = *tx.Support().GetVendor(vendor_.id);
                  vendor.status = std::string(status);
                  return tx.Support().UpdateVendor(vendor);
                }).ok());
  };
  view_after([&] { set_vendor(store::kStatusSuspended); }, absl::StatusCode::kUnauthenticated,
             "vendor_suspended");
  set_vendor(store::kStatusActive);

  // The kill switch revokes the token first.
  view_after([&] { ASSERT_TRUE(plane_->SuspendVendor(admin_, vendor_.id, "breach").ok()); },
             absl::StatusCode::kUnauthenticated, "token_revoked");

  for (const TenantId& log : {acme_.id, kProvider}) {
    EXPECT_TRUE(Events(log, "support.view").empty()) << log.value();
    EXPECT_TRUE(Events(log, "user.session.impersonation.initiate").empty()) << log.value();
  }
}

TEST_F(AccessGateTest, RecordFailedViewRecordsTheFailureInBothLogs) {
  Worker w = AddWorker("grace@acme-support.test");
  OperatorContext op = Login(w.signin);
  store::GrantRecord grant = Granted(op, acme_);
  auto access = gate_->AuthorizeTenant(op, "acme", kScopeRead);
  ASSERT_TRUE(access.ok()) << access.status();
  ASSERT_TRUE(gate_
                  ->RecordFailedView(op, *access, "users/00unobody",
                                     absl::NotFoundError("00unobody (User)"))
                  .ok());
  for (const TenantId& log : {acme_.id, kProvider}) {
    auto views = Events(log, "support.view");
    ASSERT_EQ(views.size(), 1u) << log.value();
    EXPECT_EQ(Outcome(views[0]), "FAILURE");
    EXPECT_EQ(Reason(views[0]), "not_found");
    EXPECT_EQ(Debug(views[0])["resource"], "users/00unobody");
    EXPECT_EQ(Debug(views[0])["fields"], "");
    EXPECT_EQ(Debug(views[0])["grantId"], grant.id);
    EXPECT_EQ(views[0]["actor"]["id"], w.user.id.value());
    EXPECT_EQ(views[0]["target"][0]["id"], acme_.id.value());
  }
}

// ---- Guarded actions ----

TEST_F(AccessGateTest, GuardedActionWaitsForTheTenantAdminsConfirmation) {
  Worker w = AddWorker("grace@acme-support.test");
  OperatorContext op = Login(w.signin);
  store::GrantRecord grant = Granted(op, acme_, {"read", "password_reset"});

  ConfirmationRequired asked;
  auto first = gate_->BeginGuardedAction(op, "acme", kActionPasswordReset, "00uuser1", &asked);
  EXPECT_EQ(first.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ReasonOf(first.status()), "confirmation_required");
  EXPECT_EQ(ErrorCodeOf(first.status()), kErrForbidden);
  ASSERT_FALSE(asked.confirmation_id.empty());
  auto pending = plane_->ListConfirmations(acme_.id, std::string(store::kConfirmationPending));
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].id, asked.confirmation_id);
  EXPECT_EQ((*pending)[0].grant_id, grant.id);
  EXPECT_EQ((*pending)[0].operator_id, w.user.id);
  EXPECT_EQ((*pending)[0].action, "password_reset");
  EXPECT_EQ((*pending)[0].target, "00uuser1");
  for (const TenantId& log : {acme_.id, kProvider}) {
    auto requests = Events(log, "support.confirmation.request");
    ASSERT_EQ(requests.size(), 1u);
    EXPECT_EQ(Debug(requests[0])["confirmationId"], asked.confirmation_id);
    EXPECT_EQ(Debug(requests[0])["action"], "password_reset");
  }
  auto refused = Events(acme_.id, "support.action.refused");
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(Outcome(refused[0]), "DENY");
  EXPECT_EQ(Reason(refused[0]), "confirmation_required");

  // Asking again waits for the same confirmation.
  ConfirmationRequired again;
  auto second = gate_->BeginGuardedAction(op, "acme", kActionPasswordReset, "00uuser1", &again);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ReasonOf(second.status()), "confirmation_required");
  EXPECT_EQ(again.confirmation_id, asked.confirmation_id);
  EXPECT_EQ(plane_->ListConfirmations(acme_.id, std::nullopt)->size(), 1u);
  EXPECT_EQ(Events(acme_.id, "support.confirmation.request").size(), 1u);
  EXPECT_EQ(Events(acme_.id, "support.action.refused").size(), 2u);

  // Confirmed: the next attempt is permitted and uses the confirmation up.
  ASSERT_TRUE(plane_->DecideConfirmation(tenant_admin_, acme_, asked.confirmation_id, true).ok());
  auto permit = gate_->BeginGuardedAction(op, "acme", kActionPasswordReset, "00uuser1", nullptr);
  ASSERT_TRUE(permit.ok()) << permit.status();
  EXPECT_EQ(permit->confirmation.id, asked.confirmation_id);
  EXPECT_EQ(permit->confirmation.status, store::kConfirmationUsed);
  EXPECT_EQ(permit->access.grant.id, grant.id);
  EXPECT_EQ(permit->action, "password_reset");
  EXPECT_EQ(permit->target, "00uuser1");
  auto stored = store::ReadResult(*store_, [&](store::Transaction& tx) {
    return tx.Support().GetConfirmation(acme_.id, asked.confirmation_id);
  });
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->status, store::kConfirmationUsed);

  ASSERT_TRUE(gate_->FinishGuardedAction(op, *permit, absl::OkStatus()).ok());
  ASSERT_TRUE(
      gate_->FinishGuardedAction(op, *permit, absl::UnavailableError("directory unavailable"))
          .ok());
  for (const TenantId& log : {acme_.id, kProvider}) {
    auto success = Events(log, "support.action.success");
    ASSERT_EQ(success.size(), 1u);
    EXPECT_EQ(Outcome(success[0]), "SUCCESS");
    EXPECT_EQ(Debug(success[0])["action"], "password_reset");
    EXPECT_EQ(Debug(success[0])["confirmationId"], asked.confirmation_id);
    EXPECT_EQ(Debug(success[0])["grantId"], grant.id);
    EXPECT_EQ(success[0]["target"][1]["id"], "00uuser1");
    auto failure = Events(log, "support.action.failure");
    ASSERT_EQ(failure.size(), 1u);
    EXPECT_EQ(Outcome(failure[0]), "FAILURE");
    // The tenant reads this log: an internal failure is named, not described.
    EXPECT_EQ(Reason(failure[0]), "internal_error");
  }

  // A used confirmation permits once only: the next attempt asks anew.
  ConfirmationRequired next;
  auto after = gate_->BeginGuardedAction(op, "acme", kActionPasswordReset, "00uuser1", &next);
  EXPECT_EQ(ReasonOf(after.status()), "confirmation_required");
  EXPECT_NE(next.confirmation_id, asked.confirmation_id);
  EXPECT_EQ(Events(acme_.id, "support.confirmation.request").size(), 2u);
  EXPECT_EQ(Events(acme_.id, "user.session.impersonation.initiate").size(), 1u);
}

TEST_F(AccessGateTest, GuardedActionRefusedOnceTheTenantAdminDenies) {
  Worker w = AddWorker("grace@acme-support.test");
  OperatorContext op = Login(w.signin);
  Granted(op, acme_, {"read", "password_reset"});
  ConfirmationRequired asked;
  ASSERT_EQ(
      ReasonOf(
          gate_->BeginGuardedAction(op, "acme", kActionPasswordReset, "00uuser2", &asked).status()),
      "confirmation_required");
  ASSERT_TRUE(plane_->DecideConfirmation(tenant_admin_, acme_, asked.confirmation_id, false).ok());

  ConfirmationRequired denied;
  auto refused = gate_->BeginGuardedAction(op, "acme", kActionPasswordReset, "00uuser2", &denied);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ReasonOf(refused.status()), "confirmation_denied");
  EXPECT_EQ(denied.confirmation_id, asked.confirmation_id);
  EXPECT_TRUE(
      plane_->ListConfirmations(acme_.id, std::string(store::kConfirmationPending))->empty());
  auto events = Events(acme_.id, "support.action.refused");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(Reason(events[1]), "confirmation_denied");
  EXPECT_EQ(Debug(events[1])["confirmationId"], asked.confirmation_id);

  // The denial holds for a confirmation lifetime; then the operator may ask again.
  clock_.Advance(config_.confirmation_lifetime);
  ConfirmationRequired later;
  auto again = gate_->BeginGuardedAction(op, "acme", kActionPasswordReset, "00uuser2", &later);
  EXPECT_EQ(ReasonOf(again.status()), "confirmation_required");
  EXPECT_NE(later.confirmation_id, asked.confirmation_id);
}

TEST_F(AccessGateTest, GuardedActionRefusesAccessThatEndedInFlight) {
  Worker w = AddWorker("grace@acme-support.test");
  OperatorContext op = Login(w.signin);
  auto confirmed = [&](const std::string& target) {
    ConfirmationRequired asked;
    auto first = gate_->BeginGuardedAction(op, "acme", kActionPasswordReset, target, &asked);
    EXPECT_EQ(ReasonOf(first.status()), "confirmation_required");
    EXPECT_TRUE(plane_->DecideConfirmation(tenant_admin_, acme_, asked.confirmation_id, true).ok());
    return asked.confirmation_id;
  };
  // A confirmed action whose access ends between the gate's checks and the use of the
  // confirmation (the target check runs in between).
  auto act_after = [&](const std::string& target, const std::function<void()>& end_access,
                       absl::StatusCode code, std::string_view reason) {
    const std::string id = confirmed(target);
    ExpectRefused(
        [&] {
          return gate_
              ->BeginGuardedAction(op, "acme", kActionPasswordReset, target, nullptr,
                                   [&](const TenantAccess&) {
                                     end_access();
                                     return absl::OkStatus();
                                   })
              .status();
        },
        code, reason, &acme_);
    EXPECT_EQ(ConfirmationStatus(id), store::kConfirmationConfirmed) << reason;
  };
  store::GrantRecord revoked = Granted(op, acme_, {"read", "password_reset"});
  act_after(
      "00uuser1",
      [&] { ASSERT_TRUE(plane_->RevokeGrant(tenant_admin_, acme_, revoked.id, "done").ok()); },
      absl::StatusCode::kPermissionDenied, "grant_expired");

  Granted(op, acme_, {"read", "password_reset"});
  act_after(
      "00uuser2",
      [&] { ASSERT_TRUE(plane_->SetDeviceStatus(admin_, w.device.record.id, "lock").ok()); },
      absl::StatusCode::kUnauthenticated, "device_locked");
  ASSERT_TRUE(plane_->SetDeviceStatus(admin_, w.device.record.id, "unlock").ok());

  act_after(
      "00uuser3", [&] { ASSERT_TRUE(plane_->SuspendVendor(admin_, vendor_.id, "breach").ok()); },
      absl::StatusCode::kUnauthenticated, "token_revoked");

  EXPECT_TRUE(plane_->ListConfirmations(acme_.id, std::string(store::kConfirmationUsed))->empty());
  EXPECT_TRUE(Events(acme_.id, "support.action.success").empty());
}

TEST_F(AccessGateTest, GuardedActionOnAMissingTargetAsksForNoConfirmation) {
  Worker w = AddWorker("grace@acme-support.test");
  OperatorContext op = Login(w.signin);
  Granted(op, acme_, {"read", "password_reset"});
  const absl::Status missing = absl::NotFoundError("00unobody (User)");
  ConfirmationRequired asked;
  auto refused = gate_->BeginGuardedAction(op, "acme", kActionPasswordReset, "00unobody", &asked,
                                           [&](const TenantAccess& access) {
                                             EXPECT_EQ(access.tenant.id, acme_.id);
                                             return missing;
                                           });
  EXPECT_EQ(refused.status(), missing);
  EXPECT_TRUE(asked.confirmation_id.empty());
  EXPECT_TRUE(plane_->ListConfirmations(acme_.id, std::nullopt)->empty());
  for (const TenantId& log : {acme_.id, kProvider}) {
    auto events = Events(log, "support.action.refused");
    ASSERT_EQ(events.size(), 1u) << log.value();
    EXPECT_EQ(Outcome(events[0]), "DENY");
    EXPECT_EQ(Reason(events[0]), "target_not_found");
    EXPECT_EQ(Debug(events[0])["action"], "password_reset");
    EXPECT_EQ(events[0]["target"][1]["id"], "00unobody");
    EXPECT_TRUE(Events(log, "support.confirmation.request").empty()) << log.value();
  }
}

// ---- Anomaly rules ----

TEST_F(AccessGateTest, NewDeviceAndNewNetworkRaiseAlerts) {
  config_.anomaly_new_device_or_network = true;
  Worker w = AddWorker("grace@acme-support.test");
  Login(w.signin);
  Login(w.signin);
  EXPECT_TRUE(Events(kProvider, "support.anomaly.alert").empty());

  Device spare = Enrol("spare");
  Login(SignIn(w.user, spare));
  auto alerts = Events(kProvider, "support.anomaly.alert");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(Reason(alerts[0]), "new_device");
  EXPECT_EQ(Debug(alerts[0])["rule"], "new_device");
  EXPECT_THAT(Debug(alerts[0])["detail"].get<std::string>(), HasSubstr(spare.record.id));
  EXPECT_EQ(alerts[0]["target"][0]["id"], w.user.id.value());

  Login(w.signin, "198.51.100.20");
  alerts = Events(kProvider, "support.anomaly.alert");
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(Reason(alerts[1]), "new_network");
  EXPECT_THAT(Debug(alerts[1])["detail"].get<std::string>(), HasSubstr("198.51.100.0/24"));

  // Known devices and networks, and another operator's first ones, raise nothing.
  Login(w.signin, "198.51.100.21");
  Worker other = AddWorker("linus@acme-support.test");
  Login(other.signin, "192.0.2.10");
  EXPECT_EQ(Events(kProvider, "support.anomaly.alert").size(), 2u);
  EXPECT_EQ(OperatorStatus(w.user.id), store::kStatusActive);
}

TEST_F(AccessGateTest, NewDeviceRuleOff) {
  config_.anomaly_new_device_or_network = false;
  Worker w = AddWorker("grace@acme-support.test");
  Login(w.signin);
  Device spare = Enrol("spare");
  Login(SignIn(w.user, spare), "198.51.100.20");
  EXPECT_TRUE(Events(kProvider, "support.anomaly.alert").empty());
}

TEST_F(AccessGateTest, TenantSpreadSuspendsTheOperator) {
  config_.anomaly_suspend_operator = true;
  MakeGate(AnomalyRules{.max_tenants = 1});
  Worker w = AddWorker("grace@acme-support.test");
  OperatorContext op = Login(w.signin);
  Granted(op, acme_);
  Granted(op, globex_);
  auto in_acme = gate_->AuthorizeTenant(op, "acme", kScopeRead);
  ASSERT_TRUE(in_acme.ok());
  ASSERT_TRUE(gate_->RecordView(op, *in_acme, "users", {"id"}).ok());
  auto in_globex = gate_->AuthorizeTenant(op, "globex", kScopeRead);
  ASSERT_TRUE(in_globex.ok());

  absl::Status spread = gate_->RecordView(op, *in_globex, "users", {"id"});
  EXPECT_EQ(spread.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ReasonOf(spread), "operator_suspended");
  EXPECT_EQ(OperatorStatus(w.user.id), store::kStatusSuspended);
  auto alerts = Events(kProvider, "support.anomaly.alert");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(Reason(alerts[0]), "tenant_spread");
  auto suspended = Events(kProvider, "support.operator.suspend");
  ASSERT_EQ(suspended.size(), 1u);
  EXPECT_EQ(Debug(suspended[0])["reason"], "anomaly: tenant_spread");
  EXPECT_EQ(suspended[0]["actor"]["type"], "SystemPrincipal");

  // The suspension ended the operator's token.
  ExpectAuthRefused(Request(w.signin), "token_revoked");
}

TEST_F(AccessGateTest, RefusedGuardedActionsCountExceptAskingForConfirmation) {
  MakeGate(AnomalyRules{.max_refused_actions = 2});
  Worker w = AddWorker("grace@acme-support.test");
  OperatorContext op = Login(w.signin);
  Granted(op, acme_, {"read", "password_reset"});

  ConfirmationRequired asked;
  for (const char* target : {"00uuser1", "00uuser2", "00uuser3"}) {
    auto refused = gate_->BeginGuardedAction(op, "acme", kActionPasswordReset, target, &asked);
    EXPECT_EQ(ReasonOf(refused.status()), "confirmation_required");
  }
  ASSERT_TRUE(plane_->DecideConfirmation(tenant_admin_, acme_, asked.confirmation_id, false).ok());
  auto denied = gate_->BeginGuardedAction(op, "acme", kActionPasswordReset, "00uuser3", nullptr);
  EXPECT_EQ(ReasonOf(denied.status()), "confirmation_denied");
  EXPECT_TRUE(Events(kProvider, "support.anomaly.alert").empty());

  // An action outside the grant is refused by the tenant check, and counts too.
  ExpectRefused(
      [&] {
        return gate_->BeginGuardedAction(op, "acme", kActionMfaReset, "00uuser4", nullptr).status();
      },
      absl::StatusCode::kPermissionDenied, "scope_missing", &acme_);
  auto alerts = Events(kProvider, "support.anomaly.alert");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(Reason(alerts[0]), "refused_actions");
  EXPECT_EQ(OperatorStatus(w.user.id), store::kStatusActive);
}

TEST_F(AccessGateTest, RefusedActionsRuleSuspendsWhenConfigured) {
  config_.anomaly_suspend_operator = true;
  MakeGate(AnomalyRules{.max_refused_actions = 1});
  Worker w = AddWorker("grace@acme-support.test");
  OperatorContext op = Login(w.signin);
  Granted(op, acme_, {"read"});
  // The refusal that fires the rule is reported as the suspension (docs/support.md).
  auto refused = gate_->BeginGuardedAction(op, "acme", kActionMfaReset, "00uuser1", nullptr);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ReasonOf(refused.status()), "operator_suspended");
  EXPECT_EQ(OperatorStatus(w.user.id), store::kStatusSuspended);
  EXPECT_EQ(Reason(Events(acme_.id, "support.gate.deny").back()), "scope_missing");
  // The refusal names the action tried, so that an incident's scope counts it as an attempt.
  EXPECT_EQ(Events(acme_.id, "support.gate.deny").back()["debugContext"]["debugData"]["action"],
            kActionMfaReset);
  EXPECT_EQ(Reason(Events(kProvider, "support.anomaly.alert").back()), "refused_actions");
}

TEST_F(AccessGateTest, RefusedReachesCountForTenantSpread) {
  MakeGate(AnomalyRules{.max_tenants = 1});
  Worker w = AddWorker("grace@acme-support.test");
  OperatorContext op = Login(w.signin);
  Granted(op, acme_);
  auto in_acme = gate_->AuthorizeTenant(op, "acme", kScopeRead);
  ASSERT_TRUE(in_acme.ok()) << in_acme.status();
  ASSERT_TRUE(gate_->RecordView(op, *in_acme, "users", {"id"}).ok());
  // A tenant that does not exist is not reached.
  ExpectTenantRefused(op, "initech", kScopeRead, "tenant_unknown", nullptr,
                      absl::StatusCode::kNotFound);
  EXPECT_TRUE(Events(kProvider, "support.anomaly.alert").empty());

  ExpectTenantRefused(op, "globex", kScopeRead, "no_grant", &globex_);
  auto alerts = Events(kProvider, "support.anomaly.alert");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(Reason(alerts[0]), "tenant_spread");
  EXPECT_EQ(alerts[0]["target"][0]["id"], w.user.id.value());
  EXPECT_EQ(OperatorStatus(w.user.id), store::kStatusActive);
}

TEST_F(AccessGateTest, RefusedActionsRuleCountsScopeRefusalsNotConfirmationRequests) {
  MakeGate(AnomalyRules{.max_refused_actions = 2});
  Worker w = AddWorker("grace@acme-support.test");
  OperatorContext op = Login(w.signin);
  Granted(op, acme_, {"read", "password_reset"});
  for (const char* target : {"00uuser1", "00uuser2", "00uuser3"}) {
    auto asked = gate_->BeginGuardedAction(op, "acme", kActionPasswordReset, target, nullptr);
    EXPECT_EQ(ReasonOf(asked.status()), "confirmation_required");
  }
  EXPECT_TRUE(Events(kProvider, "support.anomaly.alert").empty());

  auto mfa_reset = [&] {
    return gate_->BeginGuardedAction(op, "acme", kActionMfaReset, "00uuser1", nullptr).status();
  };
  ExpectRefused(mfa_reset, absl::StatusCode::kPermissionDenied, "scope_missing", &acme_);
  EXPECT_TRUE(Events(kProvider, "support.anomaly.alert").empty());
  ExpectRefused(mfa_reset, absl::StatusCode::kPermissionDenied, "scope_missing", &acme_);
  auto alerts = Events(kProvider, "support.anomaly.alert");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(Reason(alerts[0]), "refused_actions");
}

}  // namespace
}  // namespace custos::support
