#include "store/store_test_suite.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "gmock/gmock.h"

// Referenced by the linker option that custos_store_testing exports, so that the test
// registrations below are linked into every binary that uses the suite.
extern "C" void custos_store_conformance_suite_anchor() {}

namespace custos::store::conformance {

void PrintTo(const StoreTestParam& param, std::ostream* os) { *os << param.name; }

std::string StoreTestParamName(const ::testing::TestParamInfo<StoreTestParam>& info) {
  return info.param.name;
}

void StoreConformanceTest::SetUp() {
  static std::atomic<int> counter{0};
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = fmt::format("{}_{}", info->test_suite_name(), info->name());
  std::replace_if(
      name.begin(), name.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); },
      '_');
  temp_dir_ = (std::filesystem::path(::testing::TempDir()) /
               fmt::format("custos_store_{}_{}_{}", ::getpid(), counter++, name))
                  .string();
  std::error_code error;
  std::filesystem::remove_all(temp_dir_, error);
  std::filesystem::create_directories(temp_dir_, error);
  ASSERT_FALSE(error) << "creating " << temp_dir_ << ": " << error.message();

  if (const std::string skip = GetParam().unavailable ? GetParam().unavailable() : "";
      !skip.empty()) {
    GTEST_SKIP() << skip;
  }
  store_ = GetParam().factory(temp_dir_);
  ASSERT_NE(store_, nullptr) << "the factory did not open a store in " << temp_dir_;

  tenant_a_ = TenantId("00oTENANTAAAAAAAAAA");
  tenant_b_ = TenantId("00oTENANTBBBBBBBBBB");
  const absl::Status status = store_->Write([&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Tenants().Insert(
        {.id = tenant_a_, .name = "acme", .created = absl::FromUnixMicros(1767225600000001)}));
    return tx.Tenants().Insert(
        {.id = tenant_b_, .name = "globex", .created = absl::FromUnixMicros(1767225600000002)});
  });
  ASSERT_TRUE(status.ok()) << status;
}

void StoreConformanceTest::TearDown() {
  if (store_ != nullptr) store_->Close();
  store_.reset();
  std::error_code error;
  std::filesystem::remove_all(temp_dir_, error);
}

namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// A time with a sub-second part, to show that microseconds survive.
const absl::Time kT0 = absl::FromUnixMicros(1767225600123456);  // 2026-01-01T00:00:00.123456Z

absl::Time At(int64_t seconds) { return kT0 + absl::Seconds(seconds); }

::testing::AssertionResult Ok(const absl::Status& status) {
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << status;
}
template <typename T>
::testing::AssertionResult Ok(const absl::StatusOr<T>& result) {
  return Ok(result.status());
}

::testing::AssertionResult HasCode(const absl::Status& status, absl::StatusCode code) {
  if (status.code() == code) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "expected " << absl::StatusCodeToString(code) << ", got " << status;
}
template <typename T>
::testing::AssertionResult HasCode(const absl::StatusOr<T>& result, absl::StatusCode code) {
  return HasCode(result.status(), code);
}

const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& result) {
  return result.status();
}

// Runs `fn` in a Read and returns what it returned (absl::Status or absl::StatusOr<T>).
template <typename F>
std::invoke_result_t<F, Transaction&> InRead(Store& store, F fn) {
  using Result = std::invoke_result_t<F, Transaction&>;
  Result result = absl::InternalError("the callback did not run");
  const absl::Status status = store.Read([&](Transaction& tx) {
    result = fn(tx);
    return absl::OkStatus();
  });
  if (!status.ok()) return Result(status);
  return result;
}

// Runs `fn` in a Write, which commits only when fn succeeds, and returns what it returned.
template <typename F>
std::invoke_result_t<F, Transaction&> InWrite(Store& store, F fn) {
  using Result = std::invoke_result_t<F, Transaction&>;
  Result result = absl::InternalError("the callback did not run");
  const absl::Status status = store.Write([&](Transaction& tx) {
    result = fn(tx);
    return StatusOf(result);
  });
  if (!status.ok()) return Result(status);
  return result;
}

std::string Micros(absl::Time t) { return std::to_string(absl::ToUnixMicros(t)); }
std::string Micros(const std::optional<absl::Time>& t) {
  return t.has_value() ? Micros(*t) : "null";
}

// Every field, so that a comparison shows which one differs.
std::string Hex(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

std::string Describe(const TenantRecord& t) {
  return fmt::format("tenant{{id={} name={} created={} log_public={} support_policy={}}}",
                     t.id.value(), t.name, Micros(t.created), t.log_public, t.support_policy);
}
std::string Describe(const ApiTokenRecord& t) {
  return fmt::format(
      "api_token{{id={} tenant={} name={} hash={} created={} last_used={} scope={}}}", t.id.value(),
      t.tenant_id.value(), t.name, t.token_hash, Micros(t.created), Micros(t.last_used), t.scope);
}
std::string Describe(const ProviderTokenRecord& t) {
  return fmt::format("provider_token{{id={} name={} hash={} created={}}}", t.id, t.name,
                     t.token_hash, Micros(t.created));
}
std::string Describe(const UserRecord& u) {
  return fmt::format(
      "user{{id={} tenant={} status={} login={} profile={} password_hash={} created={} "
      "activated={} status_changed={} last_login={} last_updated={} password_changed={} "
      "failed_sign_ins={} recovery_token_hash={} recovery_expires={}}}",
      u.id.value(), u.tenant_id.value(), u.status, u.login, u.profile_json, u.password_hash,
      Micros(u.created), Micros(u.activated), Micros(u.status_changed), Micros(u.last_login),
      Micros(u.last_updated), Micros(u.password_changed), u.failed_sign_ins, u.recovery_token_hash,
      Micros(u.recovery_expires));
}
std::string Describe(const GroupRecord& g) {
  return fmt::format(
      "group{{id={} tenant={} name={} description={} created={} last_updated={} "
      "last_membership_updated={}}}",
      g.id.value(), g.tenant_id.value(), g.name, g.description, Micros(g.created),
      Micros(g.last_updated), Micros(g.last_membership_updated));
}
std::string Describe(const FactorRecord& f) {
  const std::string secret = Hex(f.sealed_secret);
  return fmt::format(
      "factor{{id={} tenant={} user={} type={} provider={} status={} secret={} "
      "last_used_step={} created={} last_updated={}}}",
      f.id.value(), f.tenant_id.value(), f.user_id.value(), f.factor_type, f.provider, f.status,
      secret, f.last_used_step, Micros(f.created), Micros(f.last_updated));
}
std::string Describe(const SessionRecord& s) {
  return fmt::format(
      "session{{id={} tenant={} user={} hash={} created={} last_active={} expires={} amr={} "
      "ip={} ua={}}}",
      s.id.value(), s.tenant_id.value(), s.user_id.value(), s.token_hash, Micros(s.created),
      Micros(s.last_active), Micros(s.expires), s.amr, s.ip_address, s.user_agent);
}
std::string Describe(const AuthnTransactionRecord& t) {
  return fmt::format("authn_txn{{id={} tenant={} user={} hash={} created={} expires={}}}", t.id,
                     t.tenant_id.value(), t.user_id.value(), t.state_token_hash, Micros(t.created),
                     Micros(t.expires));
}
std::string Describe(const EventRecord& e) {
  return fmt::format("event{{seq={} tenant={} uuid={} published={} type={} json={} index={}}}",
                     e.seq, e.tenant_id.value(), e.uuid, Micros(e.published), e.event_type, e.json,
                     e.log_index.has_value() ? std::to_string(*e.log_index) : "none");
}
std::string Describe(const LogTileRecord& t) {
  return fmt::format("tile{{log={} level={} index={} width={} data={}}}", t.log_id, t.level,
                     t.index, t.width, Hex(t.data));
}
std::string Describe(const LogStateRecord& s) {
  return fmt::format("state{{log={} origin={} size={} root={} updated={}}}", s.log_id, s.origin,
                     s.size, Hex(s.root_hash), Micros(s.updated));
}
std::string Describe(const CheckpointRecord& c) {
  return fmt::format("checkpoint{{log={} size={} root={} note={} key={} signed_at={}}}", c.log_id,
                     c.size, Hex(c.root_hash), c.note, c.key_id, Micros(c.signed_at));
}
std::string Describe(const LogKeyRecord& k) {
  return fmt::format("log_key{{id={} name={} public={} seed={} created={} retired={}}}", k.id,
                     k.name, Hex(k.public_key), Hex(k.sealed_seed), Micros(k.created),
                     Micros(k.retired));
}
std::string Describe(const VendorRecord& v) {
  return fmt::format(
      "vendor{{id={} name={} employer={} country={} status={} created={} status_changed={}}}", v.id,
      v.name, v.employing_entity, v.country, v.status, Micros(v.created), Micros(v.status_changed));
}
std::string Describe(const OperatorRecord& o) {
  return fmt::format("operator{{user={} vendor={} status={} created={} status_changed={}}}",
                     o.user_id.value(), o.vendor_id, o.status, Micros(o.created),
                     Micros(o.status_changed));
}
std::string Describe(const DeviceRecord& d) {
  return fmt::format(
      "device{{id={} vendor={} name={} jwk={} jkt={} status={} enrolled={} status_changed={} "
      "posture={} posture_reported={}}}",
      d.id, d.vendor_id, d.name, d.public_jwk, d.jkt, d.status, Micros(d.enrolled),
      Micros(d.status_changed), d.posture_json, Micros(d.posture_reported));
}
std::string Describe(const EnrollmentTokenRecord& t) {
  return fmt::format(
      "enrollment_token{{id={} hash={} vendor={} device_name={} created={} expires={} used={} "
      "device={}}}",
      t.id, t.token_hash, t.vendor_id, t.device_name, Micros(t.created), Micros(t.expires),
      Micros(t.used), t.device_id);
}
std::string Describe(const OperatorTokenRecord& t) {
  return fmt::format(
      "operator_token{{id={} hash={} operator={} vendor={} device={} jkt={} session={} "
      "session_hash={} created={} expires={} revoked={}}}",
      t.id, t.token_hash, t.operator_id.value(), t.vendor_id, t.device_id, t.jkt,
      t.session_id.value(), t.session_token_hash, Micros(t.created), Micros(t.expires),
      Micros(t.revoked));
}
std::string Describe(const SupportCaseRecord& c) {
  return fmt::format(
      "case{{id={} tenant={} subject={} opened_by={} opened_by_id={} status={} created={} "
      "closed={}}}",
      c.id, c.tenant_id.value(), c.subject, c.opened_by, c.opened_by_id, c.status,
      Micros(c.created), Micros(c.closed));
}
std::string Describe(const AccessRequestRecord& r) {
  return fmt::format(
      "request{{id={} tenant={} operator={} vendor={} device={} case={} justification={} "
      "scope={} duration_us={} status={} created={} expires={} decided_by={} decided={} "
      "reason={} grant={}}}",
      r.id, r.tenant_id.value(), r.operator_id.value(), r.vendor_id, r.device_id, r.case_id,
      r.justification, r.scope, absl::ToInt64Microseconds(r.duration), r.status, Micros(r.created),
      Micros(r.expires), r.decided_by, Micros(r.decided), r.reason, r.grant_id);
}
std::string Describe(const GrantRecord& g) {
  return fmt::format(
      "grant{{id={} tenant={} request={} operator={} vendor={} device={} case={} "
      "justification={} scope={} created={} expires={} status={} ended={} end_reason={} "
      "first_used={}}}",
      g.id, g.tenant_id.value(), g.request_id, g.operator_id.value(), g.vendor_id, g.device_id,
      g.case_id, g.justification, g.scope, Micros(g.created), Micros(g.expires), g.status,
      Micros(g.ended), g.end_reason, Micros(g.first_used));
}
std::string Describe(const ConfirmationRecord& c) {
  return fmt::format(
      "confirmation{{id={} tenant={} grant={} operator={} action={} target={} status={} "
      "created={} expires={} decided_by={} decided={}}}",
      c.id, c.tenant_id.value(), c.grant_id, c.operator_id.value(), c.action, c.target, c.status,
      Micros(c.created), Micros(c.expires), c.decided_by, Micros(c.decided));
}
std::string Describe(const OidcKeyRecord& k) {
  return fmt::format(
      "oidc_key{{kid={} tenant={} alg={} jwk={} private={} created={} activates={} retired={} "
      "expires={}}}",
      k.kid, k.tenant_id.value(), k.alg, k.public_jwk, Hex(k.sealed_private), Micros(k.created),
      Micros(k.activates), Micros(k.retired), Micros(k.expires));
}
std::string Describe(const AppRecord& a) {
  return fmt::format(
      "app{{id={} tenant={} label={} status={} type={} auth_method={} secret_hash={} "
      "settings={} created={} last_updated={}}}",
      a.id, a.tenant_id.value(), a.label, a.status, a.application_type,
      a.token_endpoint_auth_method, a.client_secret_hash, a.settings_json, Micros(a.created),
      Micros(a.last_updated));
}
std::string Describe(const AuthCodeRecord& c) {
  return fmt::format(
      "code{{hash={} tenant={} client={} user={} session={} redirect_uri={} scope={} nonce={} "
      "challenge={} method={} dpop_jkt={} auth_time={} amr={} created={} expires={} used={} "
      "family={}}}",
      c.code_hash, c.tenant_id.value(), c.client_id, c.user_id.value(), c.session_id.value(),
      c.redirect_uri, c.scope, c.nonce, c.code_challenge, c.code_challenge_method, c.dpop_jkt,
      Micros(c.auth_time), c.amr, Micros(c.created), Micros(c.expires), Micros(c.used),
      c.family_id);
}
std::string Describe(const RefreshTokenRecord& t) {
  return fmt::format(
      "refresh_token{{id={} hash={} tenant={} client={} user={} scope={} family={} session={} "
      "auth_time={} amr={} dpop_jkt={} created={} expires={} rotated={} revoked={}}}",
      t.id, t.token_hash, t.tenant_id.value(), t.client_id, t.user_id.value(), t.scope, t.family_id,
      t.session_id.value(), Micros(t.auth_time), t.amr, t.dpop_jkt, Micros(t.created),
      Micros(t.expires), Micros(t.rotated), Micros(t.revoked));
}
std::string Describe(const SupportActivityRecord& a) {
  return fmt::format(
      "activity{{seq={} published={} tenant={} tenant_event={} provider_event={} type={} "
      "outcome={} reason={} actor={} by_operator={} operator={} vendor={} device={} session={} "
      "ip={} grant={} case={} resource={} fields={}}}",
      a.seq, Micros(a.published), a.tenant_id.value(), a.tenant_event_uuid, a.provider_event_uuid,
      a.event_type, a.outcome, a.reason, a.actor_id, a.by_operator, a.operator_id, a.vendor_id,
      a.device_id, a.session_id, a.ip, a.grant_id, a.case_id, a.resource, a.fields);
}
std::string Describe(const IncidentRecord& i) {
  return fmt::format(
      "incident{{id={} title={} status={} indicators={} window=[{},{}) compromise=[{},{}) "
      "scope={} notes={} created={} updated={} created_by={}}}",
      i.id, i.title, i.status, i.indicators_json, Micros(i.window_start), Micros(i.window_end),
      Micros(i.compromise_start), Micros(i.compromise_end), i.scope_json, i.notes,
      Micros(i.created), Micros(i.updated), i.created_by);
}
std::string Describe(const SecurityContactRecord& c) {
  return fmt::format("contact{{id={} tenant={} type={} name={} address={} secret={} created={}}}",
                     c.id, c.tenant_id.value(), c.type, c.name, c.address, Hex(c.sealed_secret),
                     Micros(c.created));
}
std::string Describe(const NotificationRecord& n) {
  return fmt::format(
      "notification{{id={} incident={} tenant={} contact={} channel={} payload={} status={} "
      "attempts={} next_attempt={} lease_until={} last_error={} created={} delivered={} "
      "acknowledged={} acknowledged_by={}}}",
      n.id, n.incident_id, n.tenant_id.value(), n.contact_id, n.channel, n.payload_json, n.status,
      n.attempts, Micros(n.next_attempt), Micros(n.lease_until), n.last_error, Micros(n.created),
      Micros(n.delivered), Micros(n.acknowledged), n.acknowledged_by);
}
std::string Describe(const StatusNoticeRecord& n) {
  return fmt::format("notice{{id={} kind={} title={} body={} incident={} published={} updated={}}}",
                     n.id, n.kind, n.title, n.body, n.incident_id, Micros(n.published),
                     Micros(n.updated));
}
template <typename Record>
std::vector<std::string> Describe(const std::vector<Record>& records) {
  std::vector<std::string> out;
  for (const Record& r : records) out.push_back(Describe(r));
  return out;
}

template <typename Tag>
std::vector<std::string> Values(const std::vector<Id<Tag>>& ids) {
  std::vector<std::string> out;
  for (const Id<Tag>& id : ids) out.push_back(id.value());
  return out;
}

// A user with every field set, optional times included.
UserRecord MakeUser(const TenantId& tenant, std::string id, std::string login) {
  return UserRecord{
      .id = UserId(std::move(id)),
      .tenant_id = tenant,
      .status = std::string(kUserActive),
      .login = login,
      .profile_json = fmt::format(R"({{"login":"{}","firstName":"Ada"}})", login),
      .password_hash = "$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA",
      .created = At(0),
      .activated = At(1),
      .status_changed = At(2),
      .last_login = At(3),
      .last_updated = At(4),
      .password_changed = At(5),
      .failed_sign_ins = 2,
      .recovery_token_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
      .recovery_expires = At(6),
  };
}

GroupRecord MakeGroup(const TenantId& tenant, std::string id, std::string name) {
  return GroupRecord{.id = GroupId(std::move(id)),
                     .tenant_id = tenant,
                     .name = std::move(name),
                     .description = "people who ship",
                     .created = At(10),
                     .last_updated = At(11),
                     .last_membership_updated = At(12)};
}

FactorRecord MakeFactor(const TenantId& tenant, const UserId& user, std::string id) {
  return FactorRecord{.id = FactorId(std::move(id)),
                      .tenant_id = tenant,
                      .user_id = user,
                      .factor_type = "token:software:totp",
                      .provider = "GOOGLE",
                      .status = std::string(kFactorActive),
                      // Binary, with a NUL and high bytes, as a sealed secret is.
                      .sealed_secret = std::string("\x01\x00\xff\x7f sealed", 11),
                      .last_used_step = 58'000'000,
                      .created = At(20),
                      .last_updated = At(21)};
}

SessionRecord MakeSession(const TenantId& tenant, const UserId& user, std::string id,
                          std::string hash) {
  return SessionRecord{.id = SessionId(std::move(id)),
                       .tenant_id = tenant,
                       .user_id = user,
                       .token_hash = std::move(hash),
                       .created = At(30),
                       .last_active = At(31),
                       .expires = At(30 + 7200),
                       .amr = "pwd otp",
                       .ip_address = "192.0.2.10",
                       .user_agent = "Mozilla/5.0"};
}

AuthnTransactionRecord MakeAuthnTransaction(const TenantId& tenant, const UserId& user,
                                            std::string id, std::string hash) {
  return AuthnTransactionRecord{.id = std::move(id),
                                .tenant_id = tenant,
                                .user_id = user,
                                .state_token_hash = std::move(hash),
                                .created = At(40),
                                .expires = At(40 + 300)};
}

EventRecord MakeEvent(const TenantId& tenant, std::string uuid, absl::Time published) {
  return EventRecord{
      .tenant_id = tenant,
      .uuid = uuid,
      .published = published,
      .event_type = "user.session.start",
      .json = fmt::format(R"({{"uuid":"{}","eventType":"user.session.start"}})", uuid)};
}

absl::Status InsertUsers(Store& store, const std::vector<UserRecord>& users) {
  return store.Write([&](Transaction& tx) -> absl::Status {
    for (const UserRecord& user : users) RETURN_IF_ERROR(tx.Users().Insert(user));
    return absl::OkStatus();
  });
}

// Tenants

TEST_P(StoreConformanceTest, TenantsInsertGetAndList) {
  const TenantRecord tenant{
      .id = TenantId("00oTENANTCCCCCCCCCC"), .name = "initech", .created = At(0)};
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Tenants().Insert(tenant); })));

  absl::StatusOr<TenantRecord> by_id =
      InRead(store(), [&](Transaction& tx) { return tx.Tenants().Get(tenant.id); });
  ASSERT_TRUE(Ok(by_id));
  EXPECT_EQ(Describe(*by_id), Describe(tenant));

  absl::StatusOr<TenantRecord> by_name =
      InRead(store(), [&](Transaction& tx) { return tx.Tenants().GetByName("initech"); });
  ASSERT_TRUE(Ok(by_name));
  EXPECT_EQ(Describe(*by_name), Describe(tenant));

  absl::StatusOr<std::vector<TenantRecord>> all =
      InRead(store(), [&](Transaction& tx) { return tx.Tenants().List(); });
  ASSERT_TRUE(Ok(all));
  std::vector<std::string> ids;
  for (const TenantRecord& t : *all) ids.push_back(t.id.value());
  EXPECT_THAT(ids, ElementsAre(tenant_a().value(), tenant_b().value(), tenant.id.value()));
}

TEST_P(StoreConformanceTest, TenantsRejectDuplicateIdOrName) {
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Tenants().Insert(
                                    {.id = tenant_a(), .name = "other", .created = At(0)});
                              }),
                      absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Tenants().Insert({.id = TenantId("00oNEWNEWNEWNEWNEW"),
                                                            .name = "acme",
                                                            .created = At(0)});
                              }),
                      absl::StatusCode::kAlreadyExists));
}

TEST_P(StoreConformanceTest, TenantsMissingAreNotFound) {
  EXPECT_TRUE(HasCode(
      InRead(store(), [&](Transaction& tx) { return tx.Tenants().Get(TenantId("00oNOPE")); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(
      HasCode(InRead(store(), [&](Transaction& tx) { return tx.Tenants().GetByName("nope"); }),
              absl::StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, RecordsForAnUnknownTenantAreRefused) {
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Users().Insert(
                                    MakeUser(TenantId("00oNOPE"), "00uUSER1", "ada@example.com"));
                              }),
                      absl::StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, TenantUpdateSetsWhetherTheLogIsPublic) {
  absl::StatusOr<TenantRecord> before =
      InRead(store(), [&](Transaction& tx) { return tx.Tenants().Get(tenant_a()); });
  ASSERT_TRUE(Ok(before));
  EXPECT_FALSE(before->log_public) << "a tenant's log is private unless it opts in";

  TenantRecord changed = *before;
  changed.log_public = true;
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Tenants().Update(changed); })));
  absl::StatusOr<TenantRecord> by_name =
      InRead(store(), [&](Transaction& tx) { return tx.Tenants().GetByName("acme"); });
  ASSERT_TRUE(Ok(by_name));
  EXPECT_EQ(Describe(*by_name), Describe(changed));
  absl::StatusOr<std::vector<TenantRecord>> all =
      InRead(store(), [&](Transaction& tx) { return tx.Tenants().List(); });
  ASSERT_TRUE(Ok(all));
  ASSERT_EQ(all->size(), 2u);
  EXPECT_TRUE((*all)[0].log_public);
  EXPECT_FALSE((*all)[1].log_public) << "the other tenant is unchanged";

  changed.log_public = false;
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Tenants().Update(changed); })));
  absl::StatusOr<TenantRecord> after =
      InRead(store(), [&](Transaction& tx) { return tx.Tenants().Get(tenant_a()); });
  ASSERT_TRUE(Ok(after));
  EXPECT_FALSE(after->log_public);

  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Tenants().Update({.id = TenantId("00oNOPE"),
                                                            .name = "nope",
                                                            .created = At(0),
                                                            .log_public = true});
                              }),
                      absl::StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, TenantInsertedWithAPublicLogKeepsIt) {
  const TenantRecord tenant{.id = TenantId("00oTENANTCCCCCCCCCC"),
                            .name = "initech",
                            .created = At(0),
                            .log_public = true};
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Tenants().Insert(tenant); })));
  absl::StatusOr<TenantRecord> found =
      InRead(store(), [&](Transaction& tx) { return tx.Tenants().Get(tenant.id); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(tenant));
}

// API tokens

TEST_P(StoreConformanceTest, ApiTokenFoundByHashAndTouched) {
  const ApiTokenRecord token{.id = ApiTokenId("00TTOKEN1"),
                             .tenant_id = tenant_a(),
                             .name = "terraform",
                             .token_hash = "aa11",
                             .created = At(0)};
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.ApiTokens().Insert(token); })));

  absl::StatusOr<ApiTokenRecord> found = InRead(
      store(), [&](Transaction& tx) { return tx.ApiTokens().FindByHash(tenant_a(), "aa11"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(token));
  EXPECT_FALSE(found->last_used.has_value());

  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) {
    return tx.ApiTokens().TouchLastUsed(tenant_a(), token.id, At(100));
  })));
  found = InRead(store(),
                 [&](Transaction& tx) { return tx.ApiTokens().FindByHash(tenant_a(), "aa11"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(found->last_used, At(100));
}

TEST_P(StoreConformanceTest, ApiTokenStaysInItsTenant) {
  const ApiTokenRecord token{.id = ApiTokenId("00TTOKEN1"),
                             .tenant_id = tenant_a(),
                             .name = "terraform",
                             .token_hash = "aa11",
                             .created = At(0)};
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.ApiTokens().Insert(token); })));

  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.ApiTokens().FindByHash(tenant_b(), "aa11"); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.ApiTokens().TouchLastUsed(tenant_b(), token.id, At(9));
                              }),
                      absl::StatusCode::kNotFound));
  absl::StatusOr<ApiTokenRecord> found = InRead(
      store(), [&](Transaction& tx) { return tx.ApiTokens().FindByHash(tenant_a(), "aa11"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_FALSE(found->last_used.has_value());
}

TEST_P(StoreConformanceTest, ApiTokenClashesAndMisses) {
  const ApiTokenRecord token{.id = ApiTokenId("00TTOKEN1"),
                             .tenant_id = tenant_a(),
                             .name = "terraform",
                             .token_hash = "aa11",
                             .created = At(0)};
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.ApiTokens().Insert(token); })));
  ApiTokenRecord same_id = token;
  same_id.token_hash = "bb22";
  EXPECT_TRUE(
      HasCode(InWrite(store(), [&](Transaction& tx) { return tx.ApiTokens().Insert(same_id); }),
              absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.ApiTokens().FindByHash(tenant_a(), "ffff"); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.ApiTokens().TouchLastUsed(tenant_a(),
                                                                    ApiTokenId("00TNOPE"), At(1));
                              }),
                      absl::StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, ApiTokenScopeRoundTrips) {
  const ApiTokenRecord admin{.id = ApiTokenId("00TADMIN"),
                             .tenant_id = tenant_a(),
                             .name = "terraform",
                             .token_hash = "aa11",
                             .created = At(0)};
  const ApiTokenRecord reader{.id = ApiTokenId("00TREADER"),
                              .tenant_id = tenant_a(),
                              .name = "auditor",
                              .token_hash = "bb22",
                              .created = At(1),
                              .scope = std::string(kScopeLogRead)};
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.ApiTokens().Insert(admin));
    return tx.ApiTokens().Insert(reader);
  })));
  absl::StatusOr<ApiTokenRecord> found_admin = InRead(
      store(), [&](Transaction& tx) { return tx.ApiTokens().FindByHash(tenant_a(), "aa11"); });
  ASSERT_TRUE(Ok(found_admin));
  EXPECT_EQ(found_admin->scope, kScopeAdmin) << "a token is an admin token unless it says so";
  absl::StatusOr<ApiTokenRecord> found_reader = InRead(
      store(), [&](Transaction& tx) { return tx.ApiTokens().FindByHash(tenant_a(), "bb22"); });
  ASSERT_TRUE(Ok(found_reader));
  EXPECT_EQ(Describe(*found_reader), Describe(reader));
}

// Provider tokens

TEST_P(StoreConformanceTest, ProviderTokenFoundByHashAndUnique) {
  const ProviderTokenRecord token{
      .id = "pt_0001", .name = "siem", .token_hash = "cc33", .created = At(0)};
  ASSERT_TRUE(
      Ok(InWrite(store(), [&](Transaction& tx) { return tx.ProviderTokens().Insert(token); })));
  absl::StatusOr<ProviderTokenRecord> found =
      InRead(store(), [&](Transaction& tx) { return tx.ProviderTokens().FindByHash("cc33"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(token));

  ProviderTokenRecord same_id = token;
  same_id.token_hash = "dd44";
  EXPECT_TRUE(HasCode(
      InWrite(store(), [&](Transaction& tx) { return tx.ProviderTokens().Insert(same_id); }),
      absl::StatusCode::kAlreadyExists));
  ProviderTokenRecord same_hash = token;
  same_hash.id = "pt_0002";
  EXPECT_TRUE(HasCode(
      InWrite(store(), [&](Transaction& tx) { return tx.ProviderTokens().Insert(same_hash); }),
      absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(HasCode(
      InRead(store(), [&](Transaction& tx) { return tx.ProviderTokens().FindByHash("dd44"); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.ApiTokens().FindByHash(tenant_a(), "cc33"); }),
      absl::StatusCode::kNotFound))
      << "a provider token is no tenant's API token";
}

// Users

TEST_P(StoreConformanceTest, UserRoundTripsEveryField) {
  const UserRecord full = MakeUser(tenant_a(), "00uUSER1", "Ada@Example.com");
  UserRecord bare{.id = UserId("00uUSER2"),
                  .tenant_id = tenant_a(),
                  .status = std::string(kUserStaged),
                  .login = "bob@example.com",
                  .profile_json = "{}",
                  .created = At(0),
                  .status_changed = At(0),
                  .last_updated = At(0)};
  ASSERT_TRUE(Ok(InsertUsers(store(), {full, bare})));

  absl::StatusOr<UserRecord> got =
      InRead(store(), [&](Transaction& tx) { return tx.Users().Get(tenant_a(), full.id); });
  ASSERT_TRUE(Ok(got));
  EXPECT_EQ(Describe(*got), Describe(full));

  got = InRead(store(), [&](Transaction& tx) { return tx.Users().Get(tenant_a(), bare.id); });
  ASSERT_TRUE(Ok(got));
  EXPECT_EQ(Describe(*got), Describe(bare));
  EXPECT_FALSE(got->activated.has_value());
  EXPECT_TRUE(got->password_hash.empty());
}

TEST_P(StoreConformanceTest, UserUpdateReplacesEveryField) {
  const UserRecord original = MakeUser(tenant_a(), "00uUSER1", "ada@example.com");
  ASSERT_TRUE(Ok(InsertUsers(store(), {original})));

  UserRecord changed = original;
  changed.status = std::string(kUserSuspended);
  changed.login = "ada.lovelace@example.com";
  changed.profile_json = R"({"login":"ada.lovelace@example.com"})";
  changed.password_hash = "";
  changed.created = At(50);
  changed.activated = std::nullopt;
  changed.status_changed = At(51);
  changed.last_login = std::nullopt;
  changed.last_updated = At(52);
  changed.password_changed = std::nullopt;
  changed.failed_sign_ins = 0;
  changed.recovery_token_hash = "";
  changed.recovery_expires = std::nullopt;
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Users().Update(changed); })));

  absl::StatusOr<UserRecord> got =
      InRead(store(), [&](Transaction& tx) { return tx.Users().Get(tenant_a(), original.id); });
  ASSERT_TRUE(Ok(got));
  EXPECT_EQ(Describe(*got), Describe(changed));
  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.Users().GetByLogin(tenant_a(), "ada@example.com"); }),
      absl::StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, UserMissingIsNotFound) {
  const UserRecord ghost = MakeUser(tenant_a(), "00uGHOST", "ghost@example.com");
  EXPECT_TRUE(HasCode(
      InRead(store(), [&](Transaction& tx) { return tx.Users().Get(tenant_a(), ghost.id); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.Users().GetByLogin(tenant_a(), ghost.login); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(InWrite(store(), [&](Transaction& tx) { return tx.Users().Update(ghost); }),
                      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(
      InWrite(store(), [&](Transaction& tx) { return tx.Users().Delete(tenant_a(), ghost.id); }),
      absl::StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, UserDeleteRemovesTheUserAndWhatIsTheirs) {
  const UserRecord ada = MakeUser(tenant_a(), "00uADA", "ada@example.com");
  const UserRecord bob = MakeUser(tenant_a(), "00uBOB", "bob@example.com");
  ASSERT_TRUE(Ok(InsertUsers(store(), {ada, bob})));
  ASSERT_TRUE(Ok(store().Write([&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Groups().Insert(MakeGroup(tenant_a(), "00gENG", "engineering")));
    RETURN_IF_ERROR(tx.Groups().AddMember(tenant_a(), GroupId("00gENG"), ada.id));
    RETURN_IF_ERROR(tx.Groups().AddMember(tenant_a(), GroupId("00gENG"), bob.id));
    RETURN_IF_ERROR(tx.Factors().Insert(MakeFactor(tenant_a(), ada.id, "uftADA")));
    RETURN_IF_ERROR(tx.Sessions().Insert(MakeSession(tenant_a(), ada.id, "102ADA", "s-ada")));
    return tx.AuthnTransactions().Insert(
        MakeAuthnTransaction(tenant_a(), ada.id, "00aADA", "st-ada"));
  })));

  ASSERT_TRUE(
      Ok(InWrite(store(), [&](Transaction& tx) { return tx.Users().Delete(tenant_a(), ada.id); })));

  ASSERT_TRUE(Ok(store().Read([&](Transaction& tx) -> absl::Status {
    EXPECT_TRUE(HasCode(tx.Users().Get(tenant_a(), ada.id), absl::StatusCode::kNotFound));
    EXPECT_TRUE(Ok(tx.Users().Get(tenant_a(), bob.id)));
    absl::StatusOr<std::vector<UserId>> members =
        tx.Groups().ListMembers(tenant_a(), GroupId("00gENG"), Page{});
    EXPECT_TRUE(Ok(members));
    if (members.ok()) {
      EXPECT_THAT(Values(*members), ElementsAre("00uBOB"));
    }
    absl::StatusOr<std::vector<FactorRecord>> factors =
        tx.Factors().ListForUser(tenant_a(), ada.id);
    EXPECT_TRUE(Ok(factors));
    if (factors.ok()) {
      EXPECT_THAT(*factors, IsEmpty());
    }
    EXPECT_TRUE(
        HasCode(tx.Sessions().FindByHash(tenant_a(), "s-ada"), absl::StatusCode::kNotFound));
    EXPECT_TRUE(HasCode(tx.AuthnTransactions().FindByHash(tenant_a(), "st-ada"),
                        absl::StatusCode::kNotFound));
    return absl::OkStatus();
  })));
}

TEST_P(StoreConformanceTest, UserFoundByRecoveryTokenHashOnlyInItsTenant) {
  UserRecord ada = MakeUser(tenant_a(), "00uADA", "ada@example.com");
  ada.recovery_token_hash = std::string(64, 'a');
  UserRecord bob = MakeUser(tenant_a(), "00uBOB", "bob@example.com");
  ASSERT_TRUE(Ok(InsertUsers(store(), {ada, bob})));
  absl::StatusOr<UserRecord> got = InRead(store(), [&](Transaction& tx) {
    return tx.Users().FindByRecoveryTokenHash(tenant_a(), std::string(64, 'a'));
  });
  ASSERT_TRUE(Ok(got));
  EXPECT_EQ(got->id, ada.id);
  EXPECT_TRUE(HasCode(InRead(store(),
                             [&](Transaction& tx) {
                               return tx.Users().FindByRecoveryTokenHash(tenant_b(),
                                                                         std::string(64, 'a'));
                             }),
                      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.Users().FindByRecoveryTokenHash(tenant_a(), ""); }),
      absl::StatusCode::kNotFound))
      << "users without a token are never found by an empty hash";
}

TEST_P(StoreConformanceTest, UserLoginIsUniqueAndFoundIgnoringCase) {
  const UserRecord ada = MakeUser(tenant_a(), "00uADA", "Ada@Example.com");
  const UserRecord bob = MakeUser(tenant_a(), "00uBOB", "bob@example.com");
  ASSERT_TRUE(Ok(InsertUsers(store(), {ada, bob})));

  absl::StatusOr<UserRecord> got = InRead(store(), [&](Transaction& tx) {
    return tx.Users().GetByLogin(tenant_a(), "aDA@eXAMPLE.COM");
  });
  ASSERT_TRUE(Ok(got));
  EXPECT_EQ(got->id, ada.id);
  EXPECT_EQ(got->login, "Ada@Example.com") << "the login keeps the case it was given";

  EXPECT_TRUE(HasCode(InsertUsers(store(), {MakeUser(tenant_a(), "00uADA2", "ada@example.COM")}),
                      absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(HasCode(InsertUsers(store(), {MakeUser(tenant_a(), "00uADA", "other@example.com")}),
                      absl::StatusCode::kAlreadyExists))
      << "same id";
  UserRecord bob_renamed = bob;
  bob_renamed.login = "ADA@example.com";
  EXPECT_TRUE(
      HasCode(InWrite(store(), [&](Transaction& tx) { return tx.Users().Update(bob_renamed); }),
              absl::StatusCode::kAlreadyExists));
  absl::StatusOr<int64_t> count =
      InRead(store(), [&](Transaction& tx) { return tx.Users().Count(tenant_a()); });
  ASSERT_TRUE(Ok(count));
  EXPECT_EQ(*count, 2);
}

TEST_P(StoreConformanceTest, UsersListPagesByIdAndCount) {
  std::vector<UserRecord> users;
  for (const char* id : {"00u5", "00u2", "00u7", "00u1", "00u4", "00u6", "00u3"}) {
    users.push_back(MakeUser(tenant_a(), id, fmt::format("{}@example.com", id)));
  }
  ASSERT_TRUE(Ok(InsertUsers(store(), users)));

  std::vector<std::vector<std::string>> pages;
  Page page{.after = "", .limit = 3};
  while (true) {
    absl::StatusOr<std::vector<UserRecord>> list =
        InRead(store(), [&](Transaction& tx) { return tx.Users().List(tenant_a(), page); });
    ASSERT_TRUE(Ok(list));
    if (list->empty()) break;
    std::vector<std::string> ids;
    for (const UserRecord& u : *list) ids.push_back(u.id.value());
    pages.push_back(ids);
    page.after = ids.back();
    ASSERT_LT(pages.size(), 10u) << "paging does not end";
  }
  EXPECT_THAT(pages, ElementsAre(ElementsAre("00u1", "00u2", "00u3"),
                                 ElementsAre("00u4", "00u5", "00u6"), ElementsAre("00u7")));

  absl::StatusOr<std::vector<UserRecord>> first =
      InRead(store(), [&](Transaction& tx) { return tx.Users().List(tenant_a(), Page{}); });
  ASSERT_TRUE(Ok(first));
  ASSERT_EQ(first->size(), 7u);
  EXPECT_EQ(Describe(first->front()), Describe(users[3])) << "full records come back";

  absl::StatusOr<int64_t> count =
      InRead(store(), [&](Transaction& tx) { return tx.Users().Count(tenant_a()); });
  ASSERT_TRUE(Ok(count));
  EXPECT_EQ(*count, 7);

  EXPECT_TRUE(HasCode(InRead(store(),
                             [&](Transaction& tx) {
                               return tx.Users().List(tenant_a(), Page{.after = "", .limit = 0});
                             }),
                      absl::StatusCode::kInvalidArgument));
}

TEST_P(StoreConformanceTest, UsersWithTheSameIdAndLoginInTwoTenantsStayApart) {
  UserRecord in_a = MakeUser(tenant_a(), "00uSAME", "same@example.com");
  UserRecord in_b = MakeUser(tenant_b(), "00uSAME", "SAME@example.com");
  in_b.profile_json = R"({"login":"SAME@example.com","firstName":"Bea"})";
  in_b.status = std::string(kUserProvisioned);
  ASSERT_TRUE(Ok(InsertUsers(store(), {in_a, in_b})));
  ASSERT_TRUE(Ok(InsertUsers(store(), {MakeUser(tenant_b(), "00uONLYB", "b@example.com")})));

  ASSERT_TRUE(Ok(store().Read([&](Transaction& tx) -> absl::Status {
    absl::StatusOr<UserRecord> a = tx.Users().Get(tenant_a(), in_a.id);
    absl::StatusOr<UserRecord> b = tx.Users().Get(tenant_b(), in_b.id);
    EXPECT_TRUE(Ok(a));
    EXPECT_TRUE(Ok(b));
    if (a.ok()) {
      EXPECT_EQ(Describe(*a), Describe(in_a));
    }
    if (b.ok()) {
      EXPECT_EQ(Describe(*b), Describe(in_b));
    }
    absl::StatusOr<UserRecord> by_login = tx.Users().GetByLogin(tenant_b(), "same@example.com");
    EXPECT_TRUE(Ok(by_login));
    if (by_login.ok()) {
      EXPECT_EQ(by_login->tenant_id, tenant_b());
    }
    EXPECT_TRUE(
        HasCode(tx.Users().Get(tenant_a(), UserId("00uONLYB")), absl::StatusCode::kNotFound));
    EXPECT_TRUE(
        HasCode(tx.Users().GetByLogin(tenant_a(), "b@example.com"), absl::StatusCode::kNotFound));
    absl::StatusOr<std::vector<UserRecord>> list_a = tx.Users().List(tenant_a(), Page{});
    EXPECT_TRUE(Ok(list_a));
    if (list_a.ok()) {
      EXPECT_THAT(Describe(*list_a), ElementsAre(Describe(in_a)));
    }
    EXPECT_EQ(tx.Users().Count(tenant_a()).value_or(-1), 1);
    EXPECT_EQ(tx.Users().Count(tenant_b()).value_or(-1), 2);
    return absl::OkStatus();
  })));

  UserRecord a_changed = in_a;
  a_changed.status = std::string(kUserSuspended);
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Users().Update(a_changed); })));
  ASSERT_TRUE(Ok(
      InWrite(store(), [&](Transaction& tx) { return tx.Users().Delete(tenant_a(), in_a.id); })));
  EXPECT_TRUE(HasCode(
      InWrite(store(),
              [&](Transaction& tx) { return tx.Users().Delete(tenant_a(), UserId("00uONLYB")); }),
      absl::StatusCode::kNotFound));
  absl::StatusOr<UserRecord> b =
      InRead(store(), [&](Transaction& tx) { return tx.Users().Get(tenant_b(), in_b.id); });
  ASSERT_TRUE(Ok(b));
  EXPECT_EQ(Describe(*b), Describe(in_b)) << "tenant A's update and delete left B's user alone";
}

// Groups

TEST_P(StoreConformanceTest, GroupInsertGetUpdateListDelete) {
  const GroupRecord eng = MakeGroup(tenant_a(), "00gENG", "engineering");
  const GroupRecord ops = MakeGroup(tenant_a(), "00gOPS", "operations");
  ASSERT_TRUE(Ok(store().Write([&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Groups().Insert(ops));
    return tx.Groups().Insert(eng);
  })));

  absl::StatusOr<GroupRecord> got =
      InRead(store(), [&](Transaction& tx) { return tx.Groups().Get(tenant_a(), eng.id); });
  ASSERT_TRUE(Ok(got));
  EXPECT_EQ(Describe(*got), Describe(eng));

  GroupRecord renamed = eng;
  renamed.name = "platform";
  renamed.description = "";
  renamed.last_updated = At(99);
  renamed.last_membership_updated = At(98);
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Groups().Update(renamed); })));
  got = InRead(store(), [&](Transaction& tx) { return tx.Groups().Get(tenant_a(), eng.id); });
  ASSERT_TRUE(Ok(got));
  EXPECT_EQ(Describe(*got), Describe(renamed));

  absl::StatusOr<std::vector<GroupRecord>> page = InRead(store(), [&](Transaction& tx) {
    return tx.Groups().List(tenant_a(), Page{.after = "", .limit = 1});
  });
  ASSERT_TRUE(Ok(page));
  EXPECT_THAT(Describe(*page), ElementsAre(Describe(renamed)));
  page = InRead(store(), [&](Transaction& tx) {
    return tx.Groups().List(tenant_a(), Page{.after = "00gENG", .limit = 5});
  });
  ASSERT_TRUE(Ok(page));
  EXPECT_THAT(Describe(*page), ElementsAre(Describe(ops)));

  ASSERT_TRUE(Ok(
      InWrite(store(), [&](Transaction& tx) { return tx.Groups().Delete(tenant_a(), eng.id); })));
  EXPECT_TRUE(
      HasCode(InRead(store(), [&](Transaction& tx) { return tx.Groups().Get(tenant_a(), eng.id); }),
              absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(
      InWrite(store(), [&](Transaction& tx) { return tx.Groups().Delete(tenant_a(), eng.id); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(InWrite(store(), [&](Transaction& tx) { return tx.Groups().Update(eng); }),
                      absl::StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, GroupNameIsUniquePerTenant) {
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) {
    return tx.Groups().Insert(MakeGroup(tenant_a(), "00gENG", "engineering"));
  })));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Groups().Insert(
                                    MakeGroup(tenant_a(), "00gENG2", "engineering"));
                              }),
                      absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) {
    return tx.Groups().Insert(MakeGroup(tenant_b(), "00gENG", "engineering"));
  }))) << "another tenant may use the same id and name";
}

TEST_P(StoreConformanceTest, GroupMembership) {
  const GroupId eng("00gENG");
  const GroupId ops("00gOPS");
  std::vector<UserRecord> users;
  for (const char* id : {"00u3", "00u1", "00u4", "00u2"}) {
    users.push_back(MakeUser(tenant_a(), id, fmt::format("{}@example.com", id)));
  }
  ASSERT_TRUE(Ok(InsertUsers(store(), users)));
  ASSERT_TRUE(Ok(store().Write([&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Groups().Insert(MakeGroup(tenant_a(), eng.value(), "engineering")));
    RETURN_IF_ERROR(tx.Groups().Insert(MakeGroup(tenant_a(), ops.value(), "operations")));
    for (const UserRecord& u : users) RETURN_IF_ERROR(tx.Groups().AddMember(tenant_a(), eng, u.id));
    RETURN_IF_ERROR(tx.Groups().AddMember(tenant_a(), eng, UserId("00u1")));  // idempotent
    return tx.Groups().AddMember(tenant_a(), ops, UserId("00u1"));
  })));

  ASSERT_TRUE(Ok(store().Read([&](Transaction& tx) -> absl::Status {
    absl::StatusOr<std::vector<UserId>> first =
        tx.Groups().ListMembers(tenant_a(), eng, Page{.after = "", .limit = 3});
    EXPECT_TRUE(Ok(first));
    if (first.ok()) {
      EXPECT_THAT(Values(*first), ElementsAre("00u1", "00u2", "00u3"));
    }
    absl::StatusOr<std::vector<UserId>> rest =
        tx.Groups().ListMembers(tenant_a(), eng, Page{.after = "00u3", .limit = 3});
    EXPECT_TRUE(Ok(rest));
    if (rest.ok()) {
      EXPECT_THAT(Values(*rest), ElementsAre("00u4"));
    }
    absl::StatusOr<std::vector<GroupId>> groups =
        tx.Groups().ListGroupsOfUser(tenant_a(), UserId("00u1"));
    EXPECT_TRUE(Ok(groups));
    if (groups.ok()) {
      EXPECT_THAT(Values(*groups), ElementsAre("00gENG", "00gOPS"));
    }
    absl::StatusOr<std::vector<UserId>> none =
        tx.Groups().ListMembers(tenant_a(), GroupId("00gNOPE"), Page{});
    EXPECT_TRUE(Ok(none));
    if (none.ok()) {
      EXPECT_THAT(*none, IsEmpty());
    }
    return absl::OkStatus();
  })));

  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) {
    return tx.Groups().RemoveMember(tenant_a(), eng, UserId("00u2"));
  })));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Groups().RemoveMember(tenant_a(), eng, UserId("00u2"));
                              }),
                      absl::StatusCode::kNotFound));
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) {
    return tx.Groups().RemoveUserFromAll(tenant_a(), UserId("00u1"));
  })));
  absl::StatusOr<std::vector<GroupId>> groups_of_1 = InRead(store(), [&](Transaction& tx) {
    return tx.Groups().ListGroupsOfUser(tenant_a(), UserId("00u1"));
  });
  ASSERT_TRUE(Ok(groups_of_1));
  EXPECT_THAT(*groups_of_1, IsEmpty());

  ASSERT_TRUE(
      Ok(InWrite(store(), [&](Transaction& tx) { return tx.Groups().Delete(tenant_a(), eng); })));
  absl::StatusOr<std::vector<GroupId>> groups_of_3 = InRead(store(), [&](Transaction& tx) {
    return tx.Groups().ListGroupsOfUser(tenant_a(), UserId("00u3"));
  });
  ASSERT_TRUE(Ok(groups_of_3));
  EXPECT_THAT(*groups_of_3, IsEmpty()) << "deleting a group removes its memberships";
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) {
    return tx.Groups().Insert(MakeGroup(tenant_a(), eng.value(), "engineering"));
  })));
  absl::StatusOr<std::vector<UserId>> members = InRead(
      store(), [&](Transaction& tx) { return tx.Groups().ListMembers(tenant_a(), eng, Page{}); });
  ASSERT_TRUE(Ok(members));
  EXPECT_THAT(*members, IsEmpty()) << "a group re-created with the same id starts empty";
}

TEST_P(StoreConformanceTest, GroupMembershipNeedsAnExistingGroupAndUser) {
  ASSERT_TRUE(Ok(InsertUsers(store(), {MakeUser(tenant_a(), "00uADA", "ada@example.com")})));
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) {
    return tx.Groups().Insert(MakeGroup(tenant_a(), "00gENG", "engineering"));
  })));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Groups().AddMember(tenant_a(), GroupId("00gENG"),
                                                             UserId("00uNOPE"));
                              }),
                      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Groups().AddMember(tenant_a(), GroupId("00gNOPE"),
                                                             UserId("00uADA"));
                              }),
                      absl::StatusCode::kNotFound));
  // Tenant B cannot add tenant A's user to tenant A's group by naming them.
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Groups().AddMember(tenant_b(), GroupId("00gENG"),
                                                             UserId("00uADA"));
                              }),
                      absl::StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, GroupsAndMembershipsStayInTheirTenant) {
  ASSERT_TRUE(Ok(InsertUsers(store(), {MakeUser(tenant_a(), "00uSAME", "x@example.com"),
                                       MakeUser(tenant_b(), "00uSAME", "x@example.com")})));
  ASSERT_TRUE(Ok(store().Write([&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Groups().Insert(MakeGroup(tenant_a(), "00gSAME", "staff")));
    RETURN_IF_ERROR(tx.Groups().Insert(MakeGroup(tenant_b(), "00gSAME", "staff")));
    return tx.Groups().AddMember(tenant_a(), GroupId("00gSAME"), UserId("00uSAME"));
  })));

  ASSERT_TRUE(Ok(store().Read([&](Transaction& tx) -> absl::Status {
    EXPECT_THAT(Values(tx.Groups()
                           .ListMembers(tenant_b(), GroupId("00gSAME"), Page{})
                           .value_or(std::vector<UserId>{UserId("error")})),
                IsEmpty());
    EXPECT_THAT(Values(tx.Groups()
                           .ListGroupsOfUser(tenant_b(), UserId("00uSAME"))
                           .value_or(std::vector<GroupId>{GroupId("error")})),
                IsEmpty());
    EXPECT_THAT(Values(tx.Groups()
                           .ListMembers(tenant_a(), GroupId("00gSAME"), Page{})
                           .value_or(std::vector<UserId>{})),
                ElementsAre("00uSAME"));
    absl::StatusOr<std::vector<GroupRecord>> list_b = tx.Groups().List(tenant_b(), Page{});
    EXPECT_TRUE(Ok(list_b));
    if (list_b.ok()) {
      EXPECT_THAT(Describe(*list_b),
                  ElementsAre(Describe(MakeGroup(tenant_b(), "00gSAME", "staff"))));
    }
    return absl::OkStatus();
  })));

  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Groups().RemoveMember(tenant_b(), GroupId("00gSAME"),
                                                                UserId("00uSAME"));
                              }),
                      absl::StatusCode::kNotFound));
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) {
    return tx.Groups().RemoveUserFromAll(tenant_b(), UserId("00uSAME"));
  })));
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) {
    return tx.Groups().Delete(tenant_b(), GroupId("00gSAME"));
  })));
  absl::StatusOr<std::vector<UserId>> members = InRead(store(), [&](Transaction& tx) {
    return tx.Groups().ListMembers(tenant_a(), GroupId("00gSAME"), Page{});
  });
  ASSERT_TRUE(Ok(members));
  EXPECT_THAT(Values(*members), ElementsAre("00uSAME"))
      << "tenant B's calls left tenant A's membership alone";
}

// Factors

TEST_P(StoreConformanceTest, FactorInsertGetUpdateDelete) {
  const UserRecord ada = MakeUser(tenant_a(), "00uADA", "ada@example.com");
  ASSERT_TRUE(Ok(InsertUsers(store(), {ada})));
  const FactorRecord factor = MakeFactor(tenant_a(), ada.id, "uftTOTP");
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Factors().Insert(factor); })));

  absl::StatusOr<FactorRecord> got = InRead(
      store(), [&](Transaction& tx) { return tx.Factors().Get(tenant_a(), ada.id, factor.id); });
  ASSERT_TRUE(Ok(got));
  EXPECT_EQ(Describe(*got), Describe(factor));
  EXPECT_EQ(got->sealed_secret.size(), 11u) << "binary secret kept byte for byte";

  FactorRecord used = factor;
  used.status = std::string(kFactorPendingActivation);
  used.sealed_secret = "";
  used.last_used_step = 58'000'001;
  used.last_updated = At(77);
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Factors().Update(used); })));
  got = InRead(store(),
               [&](Transaction& tx) { return tx.Factors().Get(tenant_a(), ada.id, factor.id); });
  ASSERT_TRUE(Ok(got));
  EXPECT_EQ(Describe(*got), Describe(used));

  ASSERT_TRUE(Ok(InWrite(
      store(), [&](Transaction& tx) { return tx.Factors().Delete(tenant_a(), factor.id); })));
  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.Factors().Get(tenant_a(), ada.id, factor.id); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(
      InWrite(store(), [&](Transaction& tx) { return tx.Factors().Delete(tenant_a(), factor.id); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(InWrite(store(), [&](Transaction& tx) { return tx.Factors().Update(used); }),
                      absl::StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, FactorBelongsToItsUser) {
  const UserRecord ada = MakeUser(tenant_a(), "00uADA", "ada@example.com");
  const UserRecord bob = MakeUser(tenant_a(), "00uBOB", "bob@example.com");
  ASSERT_TRUE(Ok(InsertUsers(store(), {ada, bob})));
  const FactorRecord factor = MakeFactor(tenant_a(), ada.id, "uftTOTP");
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Factors().Insert(factor); })));

  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.Factors().Get(tenant_a(), bob.id, factor.id); }),
      absl::StatusCode::kNotFound));
  FactorRecord moved = factor;
  moved.user_id = bob.id;
  EXPECT_TRUE(HasCode(InWrite(store(), [&](Transaction& tx) { return tx.Factors().Update(moved); }),
                      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Factors().Insert(
                                    MakeFactor(tenant_a(), UserId("00uNOPE"), "uftOTHER"));
                              }),
                      absl::StatusCode::kNotFound))
      << "a factor for an unknown user";
  EXPECT_TRUE(
      HasCode(InWrite(store(), [&](Transaction& tx) { return tx.Factors().Insert(factor); }),
              absl::StatusCode::kAlreadyExists));
}

TEST_P(StoreConformanceTest, FactorsListAndDeleteAllForUser) {
  const UserRecord ada = MakeUser(tenant_a(), "00uADA", "ada@example.com");
  const UserRecord bob = MakeUser(tenant_a(), "00uBOB", "bob@example.com");
  const UserRecord ada_b = MakeUser(tenant_b(), "00uADA", "ada@example.com");
  ASSERT_TRUE(Ok(InsertUsers(store(), {ada, bob, ada_b})));
  ASSERT_TRUE(Ok(store().Write([&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Factors().Insert(MakeFactor(tenant_a(), ada.id, "uft2")));
    RETURN_IF_ERROR(tx.Factors().Insert(MakeFactor(tenant_a(), ada.id, "uft1")));
    RETURN_IF_ERROR(tx.Factors().Insert(MakeFactor(tenant_a(), bob.id, "uft3")));
    return tx.Factors().Insert(MakeFactor(tenant_b(), ada_b.id, "uft1"));
  })));

  absl::StatusOr<std::vector<FactorRecord>> list = InRead(
      store(), [&](Transaction& tx) { return tx.Factors().ListForUser(tenant_a(), ada.id); });
  ASSERT_TRUE(Ok(list));
  EXPECT_THAT(Describe(*list), ElementsAre(Describe(MakeFactor(tenant_a(), ada.id, "uft1")),
                                           Describe(MakeFactor(tenant_a(), ada.id, "uft2"))));

  absl::StatusOr<int> deleted = InWrite(
      store(), [&](Transaction& tx) { return tx.Factors().DeleteAllForUser(tenant_a(), ada.id); });
  ASSERT_TRUE(Ok(deleted));
  EXPECT_EQ(*deleted, 2);
  deleted = InWrite(
      store(), [&](Transaction& tx) { return tx.Factors().DeleteAllForUser(tenant_a(), ada.id); });
  ASSERT_TRUE(Ok(deleted));
  EXPECT_EQ(*deleted, 0);

  ASSERT_TRUE(Ok(store().Read([&](Transaction& tx) -> absl::Status {
    EXPECT_EQ(
        tx.Factors().ListForUser(tenant_a(), bob.id).value_or(std::vector<FactorRecord>{}).size(),
        1u);
    EXPECT_EQ(
        tx.Factors().ListForUser(tenant_b(), ada_b.id).value_or(std::vector<FactorRecord>{}).size(),
        1u)
        << "the same user id in tenant B keeps its factor";
    return absl::OkStatus();
  })));
}

// Sessions

TEST_P(StoreConformanceTest, SessionFindTouchDelete) {
  const UserRecord ada = MakeUser(tenant_a(), "00uADA", "ada@example.com");
  ASSERT_TRUE(Ok(InsertUsers(store(), {ada})));
  const SessionRecord session = MakeSession(tenant_a(), ada.id, "102S1", "hash-1");
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Sessions().Insert(session); })));

  absl::StatusOr<SessionRecord> got = InRead(
      store(), [&](Transaction& tx) { return tx.Sessions().FindByHash(tenant_a(), "hash-1"); });
  ASSERT_TRUE(Ok(got));
  EXPECT_EQ(Describe(*got), Describe(session));
  got = InRead(store(), [&](Transaction& tx) { return tx.Sessions().Get(tenant_a(), session.id); });
  ASSERT_TRUE(Ok(got));
  EXPECT_EQ(Describe(*got), Describe(session));
  EXPECT_TRUE(HasCode(
      InRead(store(), [&](Transaction& tx) { return tx.Sessions().Get(tenant_b(), session.id); }),
      absl::StatusCode::kNotFound))
      << "another tenant's session";

  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) {
    return tx.Sessions().Touch(tenant_a(), session.id, At(500));
  })));
  got = InRead(store(),
               [&](Transaction& tx) { return tx.Sessions().FindByHash(tenant_a(), "hash-1"); });
  ASSERT_TRUE(Ok(got));
  EXPECT_EQ(got->last_active, At(500));
  EXPECT_EQ(got->expires, session.expires);

  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Sessions().Insert(
                                    MakeSession(tenant_a(), ada.id, "102S2", "hash-1"));
                              }),
                      absl::StatusCode::kAlreadyExists))
      << "token hash clash";

  ASSERT_TRUE(Ok(InWrite(
      store(), [&](Transaction& tx) { return tx.Sessions().Delete(tenant_a(), session.id); })));
  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.Sessions().FindByHash(tenant_a(), "hash-1"); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(
      InRead(store(), [&](Transaction& tx) { return tx.Sessions().Get(tenant_a(), session.id); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(
      InWrite(store(),
              [&](Transaction& tx) { return tx.Sessions().Delete(tenant_a(), session.id); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(
      InWrite(store(),
              [&](Transaction& tx) { return tx.Sessions().Touch(tenant_a(), session.id, At(1)); }),
      absl::StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, ExpiredSessionsAndTransactionsAreSweptPerTenant) {
  const UserRecord ada = MakeUser(tenant_a(), "00uADA", "ada@example.com");
  const UserRecord ada_b = MakeUser(tenant_b(), "00uADA", "ada@example.com");
  ASSERT_TRUE(Ok(InsertUsers(store(), {ada, ada_b})));
  SessionRecord idle = MakeSession(tenant_a(), ada.id, "102IDLE", "idle");  // active at 31 s
  SessionRecord over = MakeSession(tenant_a(), ada.id, "102OVER", "over");
  over.last_active = At(7000);
  over.expires = At(7100);
  SessionRecord live = MakeSession(tenant_a(), ada.id, "102LIVE", "live");
  live.last_active = At(7000);
  SessionRecord other = MakeSession(tenant_b(), ada_b.id, "102IDLE", "idle");
  ASSERT_TRUE(Ok(store().Write([&](Transaction& tx) -> absl::Status {
    for (const SessionRecord& s : {idle, over, live, other}) {
      RETURN_IF_ERROR(tx.Sessions().Insert(s));
    }
    RETURN_IF_ERROR(
        tx.AuthnTransactions().Insert(MakeAuthnTransaction(tenant_a(), ada.id, "00aOLD", "t1")));
    AuthnTransactionRecord fresh = MakeAuthnTransaction(tenant_a(), ada.id, "00aNEW", "t2");
    fresh.expires = At(9000);
    return tx.AuthnTransactions().Insert(fresh);
  })));
  // At 7100 s, with sessions idle since before 1000 s counted as over.
  absl::StatusOr<int> sessions = InWrite(store(), [&](Transaction& tx) {
    return tx.Sessions().DeleteExpired(tenant_a(), At(7100), At(1000));
  });
  ASSERT_TRUE(Ok(sessions));
  EXPECT_EQ(*sessions, 2) << "the idle one and the one past its end";
  absl::StatusOr<int> txns = InWrite(store(), [&](Transaction& tx) {
    return tx.AuthnTransactions().DeleteExpired(tenant_a(), At(7100));
  });
  ASSERT_TRUE(Ok(txns));
  EXPECT_EQ(*txns, 1);
  ASSERT_TRUE(Ok(store().Read([&](Transaction& tx) -> absl::Status {
    EXPECT_TRUE(Ok(tx.Sessions().FindByHash(tenant_a(), "live")));
    EXPECT_TRUE(Ok(tx.Sessions().FindByHash(tenant_b(), "idle"))) << "another tenant untouched";
    EXPECT_TRUE(Ok(tx.AuthnTransactions().FindByHash(tenant_a(), "t2")));
    return absl::OkStatus();
  })));
}

TEST_P(StoreConformanceTest, SessionsDeleteAllForUserStaysInTenant) {
  const UserRecord ada = MakeUser(tenant_a(), "00uADA", "ada@example.com");
  const UserRecord bob = MakeUser(tenant_a(), "00uBOB", "bob@example.com");
  const UserRecord ada_b = MakeUser(tenant_b(), "00uADA", "ada@example.com");
  ASSERT_TRUE(Ok(InsertUsers(store(), {ada, bob, ada_b})));
  ASSERT_TRUE(Ok(store().Write([&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Sessions().Insert(MakeSession(tenant_a(), ada.id, "102A1", "a1")));
    RETURN_IF_ERROR(tx.Sessions().Insert(MakeSession(tenant_a(), ada.id, "102A2", "a2")));
    RETURN_IF_ERROR(tx.Sessions().Insert(MakeSession(tenant_a(), bob.id, "102B1", "b1")));
    return tx.Sessions().Insert(MakeSession(tenant_b(), ada_b.id, "102A1", "a1"));
  })));

  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Sessions().Touch(tenant_b(), SessionId("102A2"), At(1));
                              }),
                      absl::StatusCode::kNotFound));
  absl::StatusOr<int> deleted = InWrite(
      store(), [&](Transaction& tx) { return tx.Sessions().DeleteAllForUser(tenant_a(), ada.id); });
  ASSERT_TRUE(Ok(deleted));
  EXPECT_EQ(*deleted, 2);

  ASSERT_TRUE(Ok(store().Read([&](Transaction& tx) -> absl::Status {
    EXPECT_TRUE(HasCode(tx.Sessions().FindByHash(tenant_a(), "a1"), absl::StatusCode::kNotFound));
    EXPECT_TRUE(Ok(tx.Sessions().FindByHash(tenant_a(), "b1")));
    absl::StatusOr<SessionRecord> other = tx.Sessions().FindByHash(tenant_b(), "a1");
    EXPECT_TRUE(Ok(other));
    if (other.ok()) {
      EXPECT_EQ(other->tenant_id, tenant_b());
    }
    EXPECT_TRUE(HasCode(tx.Sessions().FindByHash(tenant_b(), "b1"), absl::StatusCode::kNotFound));
    return absl::OkStatus();
  })));
}

// Authn transactions

TEST_P(StoreConformanceTest, AuthnTransactionFindAndDelete) {
  const UserRecord ada = MakeUser(tenant_a(), "00uADA", "ada@example.com");
  ASSERT_TRUE(Ok(InsertUsers(store(), {ada})));
  const AuthnTransactionRecord txn = MakeAuthnTransaction(tenant_a(), ada.id, "00aT1", "st-1");
  ASSERT_TRUE(
      Ok(InWrite(store(), [&](Transaction& tx) { return tx.AuthnTransactions().Insert(txn); })));

  absl::StatusOr<AuthnTransactionRecord> got = InRead(store(), [&](Transaction& tx) {
    return tx.AuthnTransactions().FindByHash(tenant_a(), "st-1");
  });
  ASSERT_TRUE(Ok(got));
  EXPECT_EQ(Describe(*got), Describe(txn));
  EXPECT_TRUE(HasCode(InRead(store(),
                             [&](Transaction& tx) {
                               return tx.AuthnTransactions().FindByHash(tenant_b(), "st-1");
                             }),
                      absl::StatusCode::kNotFound));
  EXPECT_TRUE(
      HasCode(InWrite(store(), [&](Transaction& tx) { return tx.AuthnTransactions().Insert(txn); }),
              absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(HasCode(
      InWrite(store(),
              [&](Transaction& tx) { return tx.AuthnTransactions().Delete(tenant_b(), txn.id); }),
      absl::StatusCode::kNotFound));

  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) {
    return tx.AuthnTransactions().Delete(tenant_a(), txn.id);
  })));
  EXPECT_TRUE(HasCode(InRead(store(),
                             [&](Transaction& tx) {
                               return tx.AuthnTransactions().FindByHash(tenant_a(), "st-1");
                             }),
                      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(
      InWrite(store(),
              [&](Transaction& tx) { return tx.AuthnTransactions().Delete(tenant_a(), txn.id); }),
      absl::StatusCode::kNotFound));
}

// Events

// Appends events e0..e5 for tenant A, published a minute apart, interleaved with tenant B's.
std::vector<EventRecord> AppendSixEvents(Store& store, const TenantId& a, const TenantId& b) {
  std::vector<EventRecord> events;
  for (int i = 0; i < 6; ++i) {
    events.push_back(MakeEvent(a, fmt::format("a-{}", i), At(60 * i)));
  }
  const absl::Status status = store.Write([&](Transaction& tx) -> absl::Status {
    for (EventRecord& e : events) {
      ASSIGN_OR_RETURN(e.seq, tx.Events().Append(e));
      RETURN_IF_ERROR(
          tx.Events().Append(MakeEvent(b, fmt::format("b-{}", e.uuid), e.published)).status());
    }
    return absl::OkStatus();
  });
  EXPECT_TRUE(Ok(status));
  return events;
}

std::vector<std::string> Uuids(const absl::StatusOr<std::vector<EventRecord>>& events) {
  std::vector<std::string> out;
  if (!events.ok()) {
    out.push_back(events.status().ToString());
    return out;
  }
  for (const EventRecord& e : *events) out.push_back(e.uuid);
  return out;
}

TEST_P(StoreConformanceTest, EventAppendAssignsIncreasingSeq) {
  const std::vector<EventRecord> first = AppendSixEvents(store(), tenant_a(), tenant_b());
  for (size_t i = 1; i < first.size(); ++i) EXPECT_GT(first[i].seq, first[i - 1].seq);

  absl::StatusOr<int64_t> later = InWrite(store(), [&](Transaction& tx) {
    return tx.Events().Append(MakeEvent(tenant_a(), "later", At(-3600)));
  });
  ASSERT_TRUE(Ok(later));
  EXPECT_GT(*later, first.back().seq) << "seq follows commit order, not publication time";

  absl::StatusOr<std::vector<EventRecord>> all =
      InRead(store(), [&](Transaction& tx) { return tx.Events().Query(tenant_a(), EventQuery{}); });
  ASSERT_TRUE(Ok(all));
  ASSERT_EQ(all->size(), 7u);
  EXPECT_EQ(Describe(all->front()), Describe(first.front())) << "every field comes back";
  EXPECT_EQ(all->back().seq, *later);
}

TEST_P(StoreConformanceTest, EventQueryBothDirectionsWithAfter) {
  AppendSixEvents(store(), tenant_a(), tenant_b());
  absl::StatusOr<std::vector<EventRecord>> all =
      InRead(store(), [&](Transaction& tx) { return tx.Events().Query(tenant_a(), EventQuery{}); });
  ASSERT_TRUE(Ok(all));
  ASSERT_EQ(all->size(), 6u);

  auto query = [&](EventQuery q) {
    return InRead(store(), [&](Transaction& tx) { return tx.Events().Query(tenant_a(), q); });
  };
  EXPECT_THAT(Uuids(query({.limit = 2})), ElementsAre("a-0", "a-1"));
  EXPECT_THAT(Uuids(query({.after_seq = (*all)[1].seq, .limit = 2})), ElementsAre("a-2", "a-3"));
  EXPECT_THAT(Uuids(query({.after_seq = (*all)[5].seq})), IsEmpty());
  EXPECT_THAT(Uuids(query({.descending = true, .limit = 2})), ElementsAre("a-5", "a-4"));
  EXPECT_THAT(Uuids(query({.after_seq = (*all)[4].seq, .descending = true, .limit = 2})),
              ElementsAre("a-3", "a-2"));
  EXPECT_THAT(Uuids(query({.after_seq = (*all)[0].seq, .descending = true})), IsEmpty());

  // Following the cursor visits every event once, in either direction.
  for (bool descending : {false, true}) {
    std::vector<std::string> seen;
    EventQuery q{.descending = descending, .limit = 4};
    for (int round = 0; round < 5; ++round) {
      absl::StatusOr<std::vector<EventRecord>> page = query(q);
      ASSERT_TRUE(Ok(page));
      if (page->empty()) break;
      for (const EventRecord& e : *page) seen.push_back(e.uuid);
      q.after_seq = page->back().seq;
    }
    if (descending) {
      EXPECT_THAT(seen, ElementsAre("a-5", "a-4", "a-3", "a-2", "a-1", "a-0"));
    } else {
      EXPECT_THAT(seen, ElementsAre("a-0", "a-1", "a-2", "a-3", "a-4", "a-5"));
    }
  }
  EXPECT_TRUE(HasCode(query({.limit = 0}), absl::StatusCode::kInvalidArgument));
}

TEST_P(StoreConformanceTest, EventQuerySinceUntil) {
  AppendSixEvents(store(), tenant_a(), tenant_b());  // a-i published at At(60 * i)
  auto query = [&](EventQuery q) {
    return InRead(store(), [&](Transaction& tx) { return tx.Events().Query(tenant_a(), q); });
  };
  EXPECT_THAT(Uuids(query({.since = At(120)})), ElementsAre("a-2", "a-3", "a-4", "a-5"))
      << "since is inclusive";
  EXPECT_THAT(Uuids(query({.until = At(120)})), ElementsAre("a-0", "a-1")) << "until is exclusive";
  EXPECT_THAT(Uuids(query({.since = At(60), .until = At(240)})), ElementsAre("a-1", "a-2", "a-3"));
  EXPECT_THAT(Uuids(query({.since = At(60), .until = At(240), .descending = true})),
              ElementsAre("a-3", "a-2", "a-1"));
  EXPECT_THAT(Uuids(query({.since = At(60) + absl::Microseconds(1)})),
              ElementsAre("a-2", "a-3", "a-4", "a-5"));
  EXPECT_THAT(Uuids(query({.until = At(60) + absl::Microseconds(1)})), ElementsAre("a-0", "a-1"));
  EXPECT_THAT(Uuids(query({.since = At(240), .until = At(240)})), IsEmpty());

  absl::StatusOr<std::vector<EventRecord>> window = query({.since = At(60), .until = At(300)});
  ASSERT_TRUE(Ok(window));
  ASSERT_EQ(window->size(), 4u);
  EXPECT_THAT(
      Uuids(query({.since = At(60), .until = At(300), .after_seq = (*window)[1].seq, .limit = 1})),
      ElementsAre("a-3"));
  EXPECT_THAT(
      Uuids(query(
          {.since = At(60), .until = At(300), .after_seq = (*window)[2].seq, .descending = true})),
      ElementsAre("a-2", "a-1"));
}

TEST_P(StoreConformanceTest, EventQueryByType) {
  // a-0..a-5, every third one an alert; the limit counts matching events only.
  std::vector<EventRecord> events;
  for (int i = 0; i < 6; ++i) {
    EventRecord e = MakeEvent(tenant_a(), fmt::format("a-{}", i), At(60 * i));
    if (i % 3 == 0) e.event_type = "support.anomaly.alert";
    events.push_back(std::move(e));
  }
  ASSERT_TRUE(Ok(store().Write([&](Transaction& tx) -> absl::Status {
    for (EventRecord& e : events) {
      ASSIGN_OR_RETURN(e.seq, tx.Events().Append(e));
    }
    return tx.Events()
        .Append(EventRecord{.tenant_id = tenant_b(),
                            .uuid = "b-alert",
                            .published = At(0),
                            .event_type = "support.anomaly.alert",
                            .json = R"({"uuid":"b-alert"})"})
        .status();
  })));
  auto query = [&](EventQuery q) {
    return InRead(store(), [&](Transaction& tx) { return tx.Events().Query(tenant_a(), q); });
  };
  EXPECT_THAT(Uuids(query({.event_type = "support.anomaly.alert"})), ElementsAre("a-0", "a-3"));
  EXPECT_THAT(Uuids(query({.descending = true, .limit = 1, .event_type = "support.anomaly.alert"})),
              ElementsAre("a-3"));
  EXPECT_THAT(
      Uuids(query(
          {.after_seq = events[3].seq, .descending = true, .event_type = "support.anomaly.alert"})),
      ElementsAre("a-0"));
  EXPECT_THAT(Uuids(query({.since = At(60), .event_type = "support.anomaly.alert"})),
              ElementsAre("a-3"));
  EXPECT_THAT(Uuids(query({.event_type = "user.session.start"})),
              ElementsAre("a-1", "a-2", "a-4", "a-5"));
  EXPECT_THAT(Uuids(query({.event_type = "no.such.type"})), IsEmpty());
}

TEST_P(StoreConformanceTest, EventsStayInTheirTenant) {
  AppendSixEvents(store(), tenant_a(), tenant_b());
  absl::StatusOr<std::vector<EventRecord>> b = InRead(store(), [&](Transaction& tx) {
    return tx.Events().Query(tenant_b(), EventQuery{.descending = true, .limit = 1000});
  });
  ASSERT_TRUE(Ok(b));
  ASSERT_EQ(b->size(), 6u);
  for (const EventRecord& e : *b) {
    EXPECT_EQ(e.tenant_id, tenant_b());
    EXPECT_TRUE(e.uuid.starts_with("b-")) << e.uuid;
  }
  absl::StatusOr<std::vector<EventRecord>> none = InRead(store(), [&](Transaction& tx) {
    return tx.Events().Query(TenantId("00oNOPE"), EventQuery{});
  });
  ASSERT_TRUE(Ok(none));
  EXPECT_THAT(*none, IsEmpty());
}

TEST_P(StoreConformanceTest, EventUuidIsUnique) {
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) {
    return tx.Events().Append(MakeEvent(tenant_a(), "dup", At(0)));
  })));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Events().Append(MakeEvent(tenant_b(), "dup", At(0)));
                              }),
                      absl::StatusCode::kAlreadyExists));
}

TEST_P(StoreConformanceTest, EventTooLongForALogEntryIsRefused) {
  EventRecord big = MakeEvent(tenant_a(), "big", At(0));
  big.json = fmt::format(R"({{"x":"{}"}})", std::string(kMaxEventBytes, 'x'));
  EXPECT_TRUE(HasCode(InWrite(store(), [&](Transaction& tx) { return tx.Events().Append(big); }),
                      absl::StatusCode::kInvalidArgument));
  big.json = std::string(kMaxEventBytes, ' ');
  EXPECT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Events().Append(big); })))
      << "exactly the limit fits";
}

// Verifiable logs

const TenantId kProviderLog{std::string(kProviderLogId)};

LogEntryRef Ref(const EventRecord& event, uint64_t index) {
  return LogEntryRef{.seq = event.seq, .log_id = event.tenant_id.value(), .index = index};
}

// Appends each event in its own transaction and returns them with their seq.
std::vector<EventRecord> AppendEach(Store& store, std::vector<EventRecord> events) {
  for (EventRecord& e : events) {
    absl::StatusOr<int64_t> seq =
        InWrite(store, [&](Transaction& tx) { return tx.Events().Append(e); });
    EXPECT_TRUE(Ok(seq)) << e.uuid;
    e.seq = seq.value_or(0);
  }
  return events;
}

absl::StatusOr<std::vector<EventRecord>> Unsequenced(Store& store, int limit) {
  return InRead(store, [&](Transaction& tx) { return tx.Logs().Unsequenced(limit); });
}

absl::Status AddEntries(Store& store, const std::vector<LogEntryRef>& refs) {
  return store.Write([&](Transaction& tx) { return tx.Logs().AddEntries(refs); });
}

absl::StatusOr<std::vector<EventRecord>> Entries(Store& store, std::string_view log_id,
                                                 uint64_t first, int count) {
  return InRead(store, [&](Transaction& tx) { return tx.Logs().Entries(log_id, first, count); });
}

std::vector<std::string> Indexes(const absl::StatusOr<std::vector<EventRecord>>& events) {
  std::vector<std::string> out;
  if (!events.ok()) {
    out.push_back(events.status().ToString());
    return out;
  }
  for (const EventRecord& e : *events) {
    out.push_back(
        fmt::format("{}@{}", e.uuid, e.log_index.has_value() ? std::to_string(*e.log_index) : "-"));
  }
  return out;
}

TEST_P(StoreConformanceTest, ProviderEventsNeedNoTenantRow) {
  const std::vector<EventRecord> events = AppendEach(
      store(), {MakeEvent(kProviderLog, "p-0", At(0)), MakeEvent(tenant_a(), "a-0", At(1)),
                MakeEvent(kProviderLog, "p-1", At(2))});
  absl::StatusOr<std::vector<EventRecord>> provider = InRead(
      store(), [&](Transaction& tx) { return tx.Events().Query(kProviderLog, EventQuery{}); });
  ASSERT_TRUE(Ok(provider));
  EXPECT_THAT(Describe(*provider), ElementsAre(Describe(events[0]), Describe(events[2])));
  EXPECT_THAT(
      Uuids(InRead(store(),
                   [&](Transaction& tx) { return tx.Events().Query(tenant_a(), EventQuery{}); })),
      ElementsAre("a-0"));
}

TEST_P(StoreConformanceTest, EventForAnUnknownTenantIsRefused) {
  absl::Status refused;
  // The callback goes on after the refusal and commits: the refusal itself wrote nothing.
  ASSERT_TRUE(Ok(store().Write([&](Transaction& tx) -> absl::Status {
    refused = tx.Events().Append(MakeEvent(TenantId("00oNOPE"), "ghost", At(0))).status();
    return tx.Events().Append(MakeEvent(tenant_a(), "real", At(1))).status();
  })));
  EXPECT_TRUE(HasCode(refused, absl::StatusCode::kNotFound));
  EXPECT_THAT(Uuids(Unsequenced(store(), 100)), ElementsAre("real"));
  EXPECT_THAT(Uuids(InRead(store(),
                           [&](Transaction& tx) {
                             return tx.Events().Query(TenantId("00oNOPE"), EventQuery{});
                           })),
              IsEmpty());
}

TEST_P(StoreConformanceTest, UnsequencedCarriesTheLeafHashInsteadOfTheJson) {
  EventRecord hashed = MakeEvent(tenant_a(), "hashed", At(0));
  hashed.leaf_hash = std::string(32, '\x07');
  EventRecord plain = MakeEvent(tenant_a(), "plain", At(1));
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Events().Append(hashed).status());
    return tx.Events().Append(plain).status();
  })));
  auto outbox = InRead(store(), [](Transaction& tx) { return tx.Logs().Unsequenced(10); });
  ASSERT_TRUE(outbox.ok()) << outbox.status();
  ASSERT_EQ(outbox->size(), 2u);
  EXPECT_EQ((*outbox)[0].leaf_hash, hashed.leaf_hash);
  EXPECT_EQ((*outbox)[0].json, "") << "the sequencer does not need it";
  EXPECT_EQ((*outbox)[1].leaf_hash, "");
  EXPECT_EQ((*outbox)[1].json, plain.json) << "without a hash the sequencer hashes the json";
  // Ordinary reads still return the json.
  auto events = InRead(store(), [&](Transaction& tx) {
    return tx.Events().Query(tenant_a(), EventQuery{.limit = 10});
  });
  ASSERT_TRUE(events.ok());
  EXPECT_EQ((*events)[0].json, hashed.json);
}

TEST_P(StoreConformanceTest, UnsequencedIsEveryLogInCommitOrder) {
  EXPECT_THAT(Uuids(Unsequenced(store(), 10)), IsEmpty());
  // Publication times go backwards: the outbox follows commit order.
  const std::vector<EventRecord> events = AppendEach(
      store(), {MakeEvent(tenant_b(), "b-0", At(50)), MakeEvent(kProviderLog, "p-0", At(40)),
                MakeEvent(tenant_a(), "a-0", At(30))});
  ASSERT_TRUE(Ok(store().Write([&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Events().Append(MakeEvent(tenant_a(), "a-1", At(20))).status());
    return tx.Events().Append(MakeEvent(tenant_b(), "b-1", At(10))).status();
  })));

  absl::StatusOr<std::vector<EventRecord>> all = Unsequenced(store(), 1000);
  ASSERT_TRUE(Ok(all));
  EXPECT_THAT(Uuids(all), ElementsAre("b-0", "p-0", "a-0", "a-1", "b-1"));
  EXPECT_EQ(Describe(all->at(1)), Describe(events[1])) << "every field comes back";
  for (const EventRecord& e : *all) EXPECT_FALSE(e.log_index.has_value()) << e.uuid;

  EXPECT_THAT(Uuids(Unsequenced(store(), 2)), ElementsAre("b-0", "p-0"));
  EXPECT_THAT(Uuids(Unsequenced(store(), 1)), ElementsAre("b-0")) << "reading does not consume";
  EXPECT_TRUE(HasCode(Unsequenced(store(), 0), absl::StatusCode::kInvalidArgument));
}

TEST_P(StoreConformanceTest, AddEntriesGivesPositionsAndMovesTheOutbox) {
  const std::vector<EventRecord> events = AppendEach(
      store(), {MakeEvent(tenant_a(), "a-0", At(0)), MakeEvent(tenant_b(), "b-0", At(1)),
                MakeEvent(kProviderLog, "p-0", At(2)), MakeEvent(tenant_a(), "a-1", At(3))});
  ASSERT_TRUE(Ok(AddEntries(store(), {Ref(events[0], 0), Ref(events[1], 0), Ref(events[2], 0)})));
  EXPECT_THAT(Uuids(Unsequenced(store(), 10)), ElementsAre("a-1"));

  EXPECT_THAT(
      Indexes(InRead(store(),
                     [&](Transaction& tx) { return tx.Events().Query(tenant_a(), EventQuery{}); })),
      ElementsAre("a-0@0", "a-1@-"));
  EXPECT_THAT(Indexes(InRead(store(),
                             [&](Transaction& tx) {
                               return tx.Events().Query(tenant_a(), EventQuery{.descending = true});
                             })),
              ElementsAre("a-1@-", "a-0@0"));
  EXPECT_THAT(
      Indexes(InRead(
          store(), [&](Transaction& tx) { return tx.Events().Query(kProviderLog, EventQuery{}); })),
      ElementsAre("p-0@0"));

  ASSERT_TRUE(Ok(AddEntries(store(), {Ref(events[3], 1)})));
  EXPECT_THAT(Uuids(Unsequenced(store(), 10)), IsEmpty());
  ASSERT_TRUE(Ok(AddEntries(store(), {}))) << "nothing to add is not an error";

  absl::StatusOr<std::vector<EventRecord>> entries = Entries(store(), tenant_a().value(), 0, 10);
  ASSERT_TRUE(Ok(entries));
  EventRecord expected = events[3];
  expected.log_index = 1;
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ(Describe((*entries)[1]), Describe(expected)) << "every field comes back";

  // A later event goes to the outbox even when everything before it is sequenced.
  AppendEach(store(), {MakeEvent(tenant_b(), "b-1", At(4))});
  EXPECT_THAT(Uuids(Unsequenced(store(), 10)), ElementsAre("b-1"));
}

TEST_P(StoreConformanceTest, AddEntriesTakesOnlyAPrefixOfTheOutbox) {
  const std::vector<EventRecord> events =
      AppendEach(store(), {MakeEvent(tenant_a(), "a-0", At(0)), MakeEvent(tenant_b(), "b-0", At(1)),
                           MakeEvent(tenant_a(), "a-1", At(2))});
  const std::vector<std::vector<LogEntryRef>> refused = {
      {Ref(events[1], 0)},                                                 // skips the oldest
      {Ref(events[1], 0), Ref(events[0], 0)},                              // out of order
      {Ref(events[0], 0), Ref(events[2], 1)},                              // leaves a hole
      {{.seq = events[0].seq, .log_id = tenant_b().value(), .index = 0}},  // wrong log
      {{.seq = events[0].seq, .log_id = std::string(kProviderLogId), .index = 0}},
      {Ref(events[0], 0),
       Ref(events[1], 0),
       Ref(events[2], 1),
       {.seq = events[2].seq + 1, .log_id = tenant_a().value(), .index = 2}},  // not appended
  };
  for (size_t i = 0; i < refused.size(); ++i) {
    EXPECT_TRUE(HasCode(AddEntries(store(), refused[i]), absl::StatusCode::kFailedPrecondition))
        << "case " << i;
    EXPECT_THAT(Uuids(Unsequenced(store(), 10)), ElementsAre("a-0", "b-0", "a-1")) << "case " << i;
  }
  EXPECT_THAT(Indexes(Entries(store(), tenant_a().value(), 0, 10)), IsEmpty());

  ASSERT_TRUE(Ok(AddEntries(store(), {Ref(events[0], 0)})));
  EXPECT_TRUE(
      HasCode(AddEntries(store(), {Ref(events[0], 0)}), absl::StatusCode::kFailedPrecondition))
      << "an event that has a position is no longer in the outbox";
  ASSERT_TRUE(Ok(AddEntries(store(), {Ref(events[1], 0), Ref(events[2], 1)})));
  EXPECT_THAT(Indexes(Entries(store(), tenant_a().value(), 0, 10)), ElementsAre("a-0@0", "a-1@1"));
  EXPECT_THAT(Indexes(Entries(store(), tenant_b().value(), 0, 10)), ElementsAre("b-0@0"));
}

TEST_P(StoreConformanceTest, AddEntriesRefusesATakenIndexAndChangesNothing) {
  const std::vector<EventRecord> events =
      AppendEach(store(), {MakeEvent(tenant_a(), "a-0", At(0)), MakeEvent(tenant_a(), "a-1", At(1)),
                           MakeEvent(tenant_a(), "a-2", At(2))});
  ASSERT_TRUE(Ok(AddEntries(store(), {Ref(events[0], 0)})));

  EXPECT_TRUE(HasCode(AddEntries(store(), {Ref(events[1], 0)}), absl::StatusCode::kAlreadyExists))
      << "index 0 of the log is taken";
  EXPECT_TRUE(HasCode(AddEntries(store(), {Ref(events[1], 1), Ref(events[2], 1)}),
                      absl::StatusCode::kAlreadyExists))
      << "one index twice in a call";
  EXPECT_THAT(Uuids(Unsequenced(store(), 10)), ElementsAre("a-1", "a-2"));
  EXPECT_THAT(
      Indexes(InRead(store(),
                     [&](Transaction& tx) { return tx.Events().Query(tenant_a(), EventQuery{}); })),
      ElementsAre("a-0@0", "a-1@-", "a-2@-"));
  EXPECT_THAT(Indexes(Entries(store(), tenant_a().value(), 0, 10)), ElementsAre("a-0@0"));

  // The same index in another log is no clash.
  const std::vector<EventRecord> b = AppendEach(store(), {MakeEvent(tenant_b(), "b-0", At(3))});
  ASSERT_TRUE(Ok(AddEntries(store(), {Ref(events[1], 1), Ref(events[2], 2), Ref(b[0], 0)})));
  EXPECT_THAT(Uuids(Unsequenced(store(), 10)), IsEmpty());
}

TEST_P(StoreConformanceTest, AddEntriesInAReadIsRefused) {
  const std::vector<EventRecord> events =
      AppendEach(store(), {MakeEvent(tenant_a(), "a-0", At(0))});
  EXPECT_FALSE(store()
                   .Read([&](Transaction& tx) { return tx.Logs().AddEntries({Ref(events[0], 0)}); })
                   .ok());
  EXPECT_THAT(Uuids(Unsequenced(store(), 10)), ElementsAre("a-0"));
}

TEST_P(StoreConformanceTest, EntriesStopAtTheFirstMissingIndex) {
  const std::vector<EventRecord> events =
      AppendEach(store(), {MakeEvent(tenant_a(), "a-0", At(0)), MakeEvent(tenant_a(), "a-1", At(1)),
                           MakeEvent(tenant_b(), "b-0", At(2)), MakeEvent(tenant_a(), "a-3", At(3)),
                           MakeEvent(tenant_a(), "a-4", At(4))});
  // Index 2 of log A is left out on purpose, as a lost row would be.
  ASSERT_TRUE(Ok(AddEntries(store(), {Ref(events[0], 0), Ref(events[1], 1), Ref(events[2], 0),
                                      Ref(events[3], 3), Ref(events[4], 4)})));
  const std::string a = tenant_a().value();
  EXPECT_THAT(Indexes(Entries(store(), a, 0, 10)), ElementsAre("a-0@0", "a-1@1"));
  EXPECT_THAT(Indexes(Entries(store(), a, 1, 1)), ElementsAre("a-1@1")) << "count is a limit";
  EXPECT_THAT(Indexes(Entries(store(), a, 2, 10)), IsEmpty());
  EXPECT_THAT(Indexes(Entries(store(), a, 3, 10)), ElementsAre("a-3@3", "a-4@4"));
  EXPECT_THAT(Indexes(Entries(store(), a, 5, 10)), IsEmpty());
  EXPECT_THAT(Indexes(Entries(store(), tenant_b().value(), 0, 256)), ElementsAre("b-0@0"));
  EXPECT_THAT(Indexes(Entries(store(), kProviderLogId, 0, 256)), IsEmpty());
  EXPECT_TRUE(HasCode(Entries(store(), a, 0, 0), absl::StatusCode::kInvalidArgument));
}

TEST_P(StoreConformanceTest, FindEventInItsLog) {
  const std::vector<EventRecord> events = AppendEach(
      store(), {MakeEvent(tenant_a(), "a-0", At(0)), MakeEvent(tenant_a(), "a-1", At(1))});
  ASSERT_TRUE(Ok(AddEntries(store(), {Ref(events[0], 0)})));

  absl::StatusOr<EventRecord> sequenced = InRead(
      store(), [&](Transaction& tx) { return tx.Logs().FindEvent(tenant_a().value(), "a-0"); });
  ASSERT_TRUE(Ok(sequenced));
  EventRecord expected = events[0];
  expected.log_index = 0;
  EXPECT_EQ(Describe(*sequenced), Describe(expected));

  absl::StatusOr<EventRecord> waiting = InRead(
      store(), [&](Transaction& tx) { return tx.Logs().FindEvent(tenant_a().value(), "a-1"); });
  ASSERT_TRUE(Ok(waiting));
  EXPECT_EQ(Describe(*waiting), Describe(events[1]));

  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.Logs().FindEvent(tenant_b().value(), "a-0"); }),
      absl::StatusCode::kNotFound))
      << "another log's event is not found";
  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.Logs().FindEvent(tenant_a().value(), "nope"); }),
      absl::StatusCode::kNotFound));
}

// A tile's bytes, binary like real hashes (NUL and high bytes included).
std::string TileData(int hashes, char seed) {
  std::string data;
  for (int i = 0; i < hashes * 32; ++i) data.push_back(static_cast<char>(seed + i * 7));
  return data;
}

TEST_P(StoreConformanceTest, TilesAreWrittenReplacedAndKeptApart) {
  const LogTileRecord partial{
      .log_id = tenant_a().value(), .level = 0, .index = 3, .width = 2, .data = TileData(3, 0)};
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Logs().PutTile(partial); })));
  auto get = [&](std::string_view log, int level, uint64_t index) {
    return InRead(store(), [&](Transaction& tx) { return tx.Logs().GetTile(log, level, index); });
  };
  absl::StatusOr<LogTileRecord> found = get(tenant_a().value(), 0, 3);
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(partial));

  const LogTileRecord grown{
      .log_id = tenant_a().value(), .level = 0, .index = 3, .width = 256, .data = TileData(511, 5)};
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Logs().PutTile(grown); })));
  found = get(tenant_a().value(), 0, 3);
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(grown)) << "the newer tile replaces the older";

  EXPECT_TRUE(HasCode(get(tenant_b().value(), 0, 3), absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(get(kProviderLogId, 0, 3), absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(get(tenant_a().value(), 1, 3), absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(get(tenant_a().value(), 0, 2), absl::StatusCode::kNotFound));

  const LogTileRecord provider{.log_id = std::string(kProviderLogId),
                               .level = 1,
                               .index = 0,
                               .width = 1,
                               .data = TileData(1, 9)};
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Logs().PutTile(provider); })));
  found = get(kProviderLogId, 1, 0);
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(provider));
  found = get(tenant_a().value(), 0, 3);
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(grown));
}

std::string RootHash(char seed) {
  std::string hash(32, '\0');
  for (int i = 1; i < 32; i += 2) hash[i] = static_cast<char>(seed + i);
  return hash;
}

TEST_P(StoreConformanceTest, LogStatesAreWrittenReplacedAndListed) {
  EXPECT_TRUE(HasCode(
      InRead(store(), [&](Transaction& tx) { return tx.Logs().GetState(tenant_a().value()); }),
      absl::StatusCode::kNotFound));
  absl::StatusOr<std::vector<LogStateRecord>> none =
      InRead(store(), [&](Transaction& tx) { return tx.Logs().ListStates(); });
  ASSERT_TRUE(Ok(none));
  EXPECT_THAT(*none, IsEmpty());

  const LogStateRecord a1{.log_id = tenant_a().value(),
                          .origin = "custos.example/t/acme",
                          .size = 1,
                          .root_hash = RootHash(1),
                          .updated = At(1)};
  const LogStateRecord provider{.log_id = std::string(kProviderLogId),
                                .origin = "custos.example/provider",
                                .size = 7,
                                .root_hash = RootHash(2),
                                .updated = At(2)};
  LogStateRecord a2 = a1;
  a2.size = 300;
  a2.root_hash = RootHash(3);
  a2.updated = At(3);
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Logs().PutState(a1));
    return tx.Logs().PutState(provider);
  })));
  absl::StatusOr<LogStateRecord> found =
      InRead(store(), [&](Transaction& tx) { return tx.Logs().GetState(tenant_a().value()); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(a1));

  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Logs().PutState(a2); })));
  found = InRead(store(), [&](Transaction& tx) { return tx.Logs().GetState(tenant_a().value()); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(a2)) << "the newer state replaces the older";

  absl::StatusOr<std::vector<LogStateRecord>> all =
      InRead(store(), [&](Transaction& tx) { return tx.Logs().ListStates(); });
  ASSERT_TRUE(Ok(all));
  std::vector<std::string> expected = {Describe(a2), Describe(provider)};
  if (provider.log_id < a2.log_id) std::swap(expected[0], expected[1]);
  EXPECT_THAT(Describe(*all), ::testing::ElementsAreArray(expected)) << "by log id";
}

CheckpointRecord MakeCheckpoint(std::string log_id, uint64_t size) {
  return CheckpointRecord{
      .log_id = log_id,
      .size = size,
      .root_hash = RootHash(static_cast<char>(size)),
      .note = fmt::format("custos.example/{}\n{}\nroot\n\n— custos.example sig{}\n", log_id, size,
                          size),
      .key_id = "lk_00000000000000a1",
      .signed_at = At(static_cast<int64_t>(size))};
}

TEST_P(StoreConformanceTest, CheckpointsLatestBySizeAndNeverReplaced) {
  const std::string a = tenant_a().value();
  EXPECT_TRUE(
      HasCode(InRead(store(), [&](Transaction& tx) { return tx.Logs().LatestCheckpoint(a); }),
              absl::StatusCode::kNotFound));
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    for (uint64_t size : {5, 9, 7})
      RETURN_IF_ERROR(tx.Logs().PutCheckpoint(MakeCheckpoint(a, size)));
    return tx.Logs().PutCheckpoint(MakeCheckpoint(std::string(kProviderLogId), 12));
  })));

  absl::StatusOr<CheckpointRecord> latest =
      InRead(store(), [&](Transaction& tx) { return tx.Logs().LatestCheckpoint(a); });
  ASSERT_TRUE(Ok(latest));
  EXPECT_EQ(Describe(*latest), Describe(MakeCheckpoint(a, 9))) << "the largest, not the newest";
  absl::StatusOr<CheckpointRecord> seven =
      InRead(store(), [&](Transaction& tx) { return tx.Logs().GetCheckpoint(a, 7); });
  ASSERT_TRUE(Ok(seven));
  EXPECT_EQ(Describe(*seven), Describe(MakeCheckpoint(a, 7)));
  EXPECT_TRUE(
      HasCode(InRead(store(), [&](Transaction& tx) { return tx.Logs().GetCheckpoint(a, 8); }),
              absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.Logs().GetCheckpoint(tenant_b().value(), 9); }),
      absl::StatusCode::kNotFound));

  CheckpointRecord again = MakeCheckpoint(a, 9);
  again.root_hash = RootHash(100);
  again.note = "a different note";
  EXPECT_TRUE(
      HasCode(InWrite(store(), [&](Transaction& tx) { return tx.Logs().PutCheckpoint(again); }),
              absl::StatusCode::kAlreadyExists));
  latest = InRead(store(), [&](Transaction& tx) { return tx.Logs().LatestCheckpoint(a); });
  ASSERT_TRUE(Ok(latest));
  EXPECT_EQ(Describe(*latest), Describe(MakeCheckpoint(a, 9))) << "a signed checkpoint stays";

  latest =
      InRead(store(), [&](Transaction& tx) { return tx.Logs().LatestCheckpoint(kProviderLogId); });
  ASSERT_TRUE(Ok(latest));
  EXPECT_EQ(latest->size, 12u);
}

TEST_P(StoreConformanceTest, LogKeysInsertListAndRetire) {
  absl::StatusOr<std::vector<LogKeyRecord>> keys =
      InRead(store(), [&](Transaction& tx) { return tx.Logs().ListKeys(); });
  ASSERT_TRUE(Ok(keys));
  EXPECT_THAT(*keys, IsEmpty());

  const LogKeyRecord older{.id = "lk_00000000000000b2",
                           .name = "custos.example",
                           .public_key = RootHash(7),
                           .sealed_seed = std::string("\x00sealed\xff", 8),
                           .created = At(0)};
  LogKeyRecord newer = older;
  newer.id = "lk_00000000000000a1";
  newer.public_key = RootHash(8);
  newer.created = At(100);
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Logs().InsertKey(newer));
    return tx.Logs().InsertKey(older);
  })));
  keys = InRead(store(), [&](Transaction& tx) { return tx.Logs().ListKeys(); });
  ASSERT_TRUE(Ok(keys));
  EXPECT_THAT(Describe(*keys), ElementsAre(Describe(older), Describe(newer))) << "oldest first";

  LogKeyRecord clash = older;
  clash.public_key = RootHash(9);
  EXPECT_TRUE(HasCode(InWrite(store(), [&](Transaction& tx) { return tx.Logs().InsertKey(clash); }),
                      absl::StatusCode::kAlreadyExists));

  ASSERT_TRUE(Ok(
      InWrite(store(), [&](Transaction& tx) { return tx.Logs().RetireKey(older.id, At(100)); })));
  keys = InRead(store(), [&](Transaction& tx) { return tx.Logs().ListKeys(); });
  ASSERT_TRUE(Ok(keys));
  LogKeyRecord retired = older;
  retired.retired = At(100);
  EXPECT_THAT(Describe(*keys), ElementsAre(Describe(retired), Describe(newer)));
  EXPECT_TRUE(HasCode(
      InWrite(store(), [&](Transaction& tx) { return tx.Logs().RetireKey("lk_nope", At(101)); }),
      absl::StatusCode::kNotFound));
}

// Support access plane

constexpr std::string_view kVendorA = "vndAAAAAAAAAAAAAAAAA";
constexpr std::string_view kVendorB = "vndBBBBBBBBBBBBBBBBB";

VendorRecord MakeVendor(std::string_view id, std::string name) {
  return VendorRecord{.id = std::string(id),
                      .name = std::move(name),
                      .employing_entity = "Acme Outsourcing plc",
                      .country = "GB",
                      .status = std::string(kStatusActive),
                      .created = At(0),
                      .status_changed = At(1)};
}

absl::Status InsertVendors(Store& store) {
  return store.Write([&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Support().InsertVendor(MakeVendor(kVendorA, "Acme Support Ltd")));
    return tx.Support().InsertVendor(MakeVendor(kVendorB, "Bravo Helpdesk GmbH"));
  });
}

OperatorRecord MakeOperator(std::string user_id, std::string_view vendor_id) {
  return OperatorRecord{.user_id = UserId(std::move(user_id)),
                        .vendor_id = std::string(vendor_id),
                        .status = std::string(kStatusActive),
                        .created = At(2),
                        .status_changed = At(3)};
}

// A device that has reported its posture; `bare` clears what a new device does not have yet.
DeviceRecord MakeDevice(std::string id, std::string_view vendor_id, std::string jkt) {
  return DeviceRecord{.id = std::move(id),
                      .vendor_id = std::string(vendor_id),
                      .name = "support-laptop-17",
                      .public_jwk = R"({"kty":"EC","crv":"P-256","x":"f83O","y":"x_FE"})",
                      .jkt = std::move(jkt),
                      .status = std::string(kDeviceActive),
                      .enrolled = At(4),
                      .status_changed = At(5),
                      .posture_json = R"({"os":"debian","disk_encrypted":true})",
                      .posture_reported = At(6)};
}

OperatorTokenRecord MakeOperatorToken(std::string id, std::string hash, std::string op,
                                      std::string_view vendor, std::string device,
                                      std::string session) {
  return OperatorTokenRecord{.id = std::move(id),
                             .token_hash = std::move(hash),
                             .operator_id = UserId(std::move(op)),
                             .vendor_id = std::string(vendor),
                             .device_id = std::move(device),
                             .jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
                             .session_id = SessionId(std::move(session)),
                             .session_token_hash = "5e884898da28047151d0e56f8dc62927",
                             .created = At(7),
                             .expires = At(7 + 3600)};
}

SupportCaseRecord MakeCase(const TenantId& tenant, std::string id) {
  return SupportCaseRecord{.id = std::move(id),
                           .tenant_id = tenant,
                           .subject = "SSO to the payroll app fails",
                           .opened_by = std::string(kOpenedByTenant),
                           .opened_by_id = "00TTOKEN1",
                           .status = std::string(kCaseOpen),
                           .created = At(8)};
}

// A request that has been decided, so every optional field is set.
AccessRequestRecord MakeRequest(const TenantId& tenant, std::string id, std::string op) {
  return AccessRequestRecord{.id = std::move(id),
                             .tenant_id = tenant,
                             .operator_id = UserId(std::move(op)),
                             .vendor_id = std::string(kVendorA),
                             .device_id = "devDEVICE1",
                             .case_id = "casCASE1",
                             .justification = "CUSTOMER_INITIATED_SUPPORT",
                             .scope = "read password_reset",
                             // Not a whole second, to show the duration keeps microseconds.
                             .duration = absl::Hours(8) + absl::Microseconds(1),
                             .status = std::string(kRequestApproved),
                             .created = At(9),
                             .expires = At(9 + 12 * 3600),
                             .decided_by = "00uADMIN1",
                             .decided = At(10),
                             .reason = "ticket 4711",
                             .grant_id = "sgrGRANT1"};
}

// An active grant with nothing optional set yet.
GrantRecord MakeGrant(const TenantId& tenant, std::string id, std::string op,
                      std::string_view vendor, std::string case_id) {
  return GrantRecord{.id = std::move(id),
                     .tenant_id = tenant,
                     .request_id = "sarREQUEST1",
                     .operator_id = UserId(std::move(op)),
                     .vendor_id = std::string(vendor),
                     .device_id = "devDEVICE1",
                     .case_id = std::move(case_id),
                     .justification = "CUSTOMER_INITIATED_SUPPORT",
                     .scope = "read",
                     .created = At(11),
                     .expires = At(11 + 8 * 3600),
                     .status = std::string(kGrantActive)};
}

// A pending confirmation (nothing decided yet).
ConfirmationRecord MakeConfirmation(const TenantId& tenant, std::string id, std::string target,
                                    absl::Time created) {
  return ConfirmationRecord{.id = std::move(id),
                            .tenant_id = tenant,
                            .grant_id = "sgrGRANT1",
                            .operator_id = UserId("00uOPERATOR1"),
                            .action = "password_reset",
                            .target = std::move(target),
                            .status = std::string(kConfirmationPending),
                            .created = created,
                            .expires = created + absl::Minutes(15)};
}

// "tenant/id" of each record, in the order given.
template <typename Record>
std::vector<std::string> TenantIds(const std::vector<Record>& records) {
  std::vector<std::string> out;
  for (const Record& r : records) out.push_back(fmt::format("{}/{}", r.tenant_id.value(), r.id));
  return out;
}

TEST_P(StoreConformanceTest, TenantSupportPolicyDefaultsAndIsUpdated) {
  absl::StatusOr<TenantRecord> before =
      InRead(store(), [&](Transaction& tx) { return tx.Tenants().Get(tenant_a()); });
  ASSERT_TRUE(Ok(before));
  EXPECT_EQ(before->support_policy, kSupportPolicyApprovalRequired)
      << "support needs the tenant's approval unless it says otherwise";

  TenantRecord changed = *before;
  changed.support_policy = std::string(kSupportPolicyBlocked);
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Tenants().Update(changed); })));
  absl::StatusOr<TenantRecord> by_name =
      InRead(store(), [&](Transaction& tx) { return tx.Tenants().GetByName("acme"); });
  ASSERT_TRUE(Ok(by_name));
  EXPECT_EQ(Describe(*by_name), Describe(changed));
  absl::StatusOr<std::vector<TenantRecord>> all =
      InRead(store(), [&](Transaction& tx) { return tx.Tenants().List(); });
  ASSERT_TRUE(Ok(all));
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].support_policy, kSupportPolicyBlocked);
  EXPECT_EQ((*all)[1].support_policy, kSupportPolicyApprovalRequired)
      << "the other tenant is unchanged";

  const TenantRecord opted_in{.id = TenantId("00oTENANTCCCCCCCCCC"),
                              .name = "initech",
                              .created = At(0),
                              .support_policy = std::string(kSupportPolicyAutoApproveRead)};
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Tenants().Insert(opted_in); })));
  absl::StatusOr<TenantRecord> found =
      InRead(store(), [&](Transaction& tx) { return tx.Tenants().Get(opted_in.id); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(opted_in));
}

TEST_P(StoreConformanceTest, VendorsRoundTripListUpdateAndClash) {
  // Inserted out of id order, to show that the list is ordered by id.
  const VendorRecord b = MakeVendor(kVendorB, "Bravo Helpdesk GmbH");
  const VendorRecord a = MakeVendor(kVendorA, "Acme Support Ltd");
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Support().InsertVendor(b));
    return tx.Support().InsertVendor(a);
  })));
  absl::StatusOr<VendorRecord> found =
      InRead(store(), [&](Transaction& tx) { return tx.Support().GetVendor(kVendorA); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(a));
  absl::StatusOr<std::vector<VendorRecord>> all =
      InRead(store(), [&](Transaction& tx) { return tx.Support().ListVendors(); });
  ASSERT_TRUE(Ok(all));
  EXPECT_THAT(Describe(*all), ElementsAre(Describe(a), Describe(b)));

  VendorRecord suspended = a;
  suspended.name = "Acme Support Ltd (in administration)";
  suspended.employing_entity = "Acme Holdings";
  suspended.country = "IE";
  suspended.status = std::string(kStatusSuspended);
  suspended.status_changed = At(100);
  ASSERT_TRUE(
      Ok(InWrite(store(), [&](Transaction& tx) { return tx.Support().UpdateVendor(suspended); })));
  found = InRead(store(), [&](Transaction& tx) { return tx.Support().GetVendor(kVendorA); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(suspended));

  VendorRecord same_id = MakeVendor(kVendorA, "Another name");
  EXPECT_TRUE(
      HasCode(InWrite(store(), [&](Transaction& tx) { return tx.Support().InsertVendor(same_id); }),
              absl::StatusCode::kAlreadyExists));
  VendorRecord same_name = MakeVendor("vndCCCCCCCCCCCCCCCCC", b.name);
  EXPECT_TRUE(HasCode(
      InWrite(store(), [&](Transaction& tx) { return tx.Support().InsertVendor(same_name); }),
      absl::StatusCode::kAlreadyExists));
  VendorRecord renamed_onto_b = suspended;
  renamed_onto_b.name = b.name;
  EXPECT_TRUE(HasCode(
      InWrite(store(), [&](Transaction& tx) { return tx.Support().UpdateVendor(renamed_onto_b); }),
      absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Support().UpdateVendor(
                                    MakeVendor("vndNOPE", "Nobody Ltd"));
                              }),
                      absl::StatusCode::kNotFound));
  EXPECT_TRUE(
      HasCode(InRead(store(), [&](Transaction& tx) { return tx.Support().GetVendor("vndNOPE"); }),
              absl::StatusCode::kNotFound));
  all = InRead(store(), [&](Transaction& tx) { return tx.Support().ListVendors(); });
  ASSERT_TRUE(Ok(all));
  EXPECT_THAT(Describe(*all), ElementsAre(Describe(suspended), Describe(b)))
      << "refused writes changed nothing";
}

TEST_P(StoreConformanceTest, OperatorsRoundTripListByVendorAndNeedTheirVendor) {
  ASSERT_TRUE(Ok(InsertVendors(store())));
  const OperatorRecord ada = MakeOperator("00uOPERATOR2", kVendorA);
  const OperatorRecord bob = MakeOperator("00uOPERATOR1", kVendorB);
  const OperatorRecord cy = MakeOperator("00uOPERATOR3", kVendorA);
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Support().InsertOperator(ada));
    RETURN_IF_ERROR(tx.Support().InsertOperator(bob));
    return tx.Support().InsertOperator(cy);
  })));
  absl::StatusOr<OperatorRecord> found = InRead(
      store(), [&](Transaction& tx) { return tx.Support().GetOperator(UserId("00uOPERATOR2")); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(ada));

  absl::StatusOr<std::vector<OperatorRecord>> all =
      InRead(store(), [&](Transaction& tx) { return tx.Support().ListOperators(std::nullopt); });
  ASSERT_TRUE(Ok(all));
  EXPECT_THAT(Describe(*all), ElementsAre(Describe(bob), Describe(ada), Describe(cy)));
  absl::StatusOr<std::vector<OperatorRecord>> of_a = InRead(
      store(), [&](Transaction& tx) { return tx.Support().ListOperators(std::string(kVendorA)); });
  ASSERT_TRUE(Ok(of_a));
  EXPECT_THAT(Describe(*of_a), ElementsAre(Describe(ada), Describe(cy)));
  absl::StatusOr<std::vector<OperatorRecord>> of_none =
      InRead(store(), [&](Transaction& tx) { return tx.Support().ListOperators("vndNOPE"); });
  ASSERT_TRUE(Ok(of_none));
  EXPECT_THAT(*of_none, IsEmpty());

  OperatorRecord moved = ada;
  moved.vendor_id = std::string(kVendorB);
  moved.status = std::string(kStatusSuspended);
  moved.status_changed = At(100);
  ASSERT_TRUE(
      Ok(InWrite(store(), [&](Transaction& tx) { return tx.Support().UpdateOperator(moved); })));
  found = InRead(store(),
                 [&](Transaction& tx) { return tx.Support().GetOperator(UserId("00uOPERATOR2")); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(moved));
  of_a = InRead(store(),
                [&](Transaction& tx) { return tx.Support().ListOperators(std::string(kVendorA)); });
  ASSERT_TRUE(Ok(of_a));
  EXPECT_THAT(Describe(*of_a), ElementsAre(Describe(cy)));

  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Support().InsertOperator(
                                    MakeOperator("00uOPERATOR1", kVendorA));
                              }),
                      absl::StatusCode::kAlreadyExists))
      << "a user is an operator of one vendor";
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Support().InsertOperator(
                                    MakeOperator("00uOPERATOR9", "vndNOPE"));
                              }),
                      absl::StatusCode::kNotFound));
  OperatorRecord to_unknown_vendor = cy;
  to_unknown_vendor.vendor_id = "vndNOPE";
  EXPECT_TRUE(HasCode(
      InWrite(store(),
              [&](Transaction& tx) { return tx.Support().UpdateOperator(to_unknown_vendor); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Support().UpdateOperator(
                                    MakeOperator("00uOPERATOR9", kVendorA));
                              }),
                      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.Support().GetOperator(UserId("00uOPERATOR9")); }),
      absl::StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, DevicesRoundTripByIdAndKeyAndNeedTheirVendor) {
  ASSERT_TRUE(Ok(InsertVendors(store())));
  const DeviceRecord reported = MakeDevice("devDEVICE2", kVendorA, "jkt-two");
  DeviceRecord fresh = MakeDevice("devDEVICE1", kVendorB, "jkt-one");
  fresh.posture_json.clear();
  fresh.posture_reported.reset();
  const DeviceRecord third = MakeDevice("devDEVICE3", kVendorA, "jkt-three");
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Support().InsertDevice(reported));
    RETURN_IF_ERROR(tx.Support().InsertDevice(fresh));
    return tx.Support().InsertDevice(third);
  })));

  absl::StatusOr<DeviceRecord> found =
      InRead(store(), [&](Transaction& tx) { return tx.Support().GetDevice("devDEVICE2"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(reported));
  found = InRead(store(), [&](Transaction& tx) { return tx.Support().GetDeviceByJkt("jkt-one"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(fresh));
  EXPECT_FALSE(found->posture_reported.has_value());

  absl::StatusOr<std::vector<DeviceRecord>> all =
      InRead(store(), [&](Transaction& tx) { return tx.Support().ListDevices(std::nullopt); });
  ASSERT_TRUE(Ok(all));
  EXPECT_THAT(Describe(*all), ElementsAre(Describe(fresh), Describe(reported), Describe(third)));
  absl::StatusOr<std::vector<DeviceRecord>> of_a = InRead(
      store(), [&](Transaction& tx) { return tx.Support().ListDevices(std::string(kVendorA)); });
  ASSERT_TRUE(Ok(of_a));
  EXPECT_THAT(Describe(*of_a), ElementsAre(Describe(reported), Describe(third)));

  DeviceRecord now_reported = fresh;
  now_reported.name = "renamed";
  now_reported.status = std::string(kDeviceLocked);
  now_reported.status_changed = At(100);
  now_reported.posture_json = R"({"os":"macos"})";
  now_reported.posture_reported = At(99);
  ASSERT_TRUE(Ok(
      InWrite(store(), [&](Transaction& tx) { return tx.Support().UpdateDevice(now_reported); })));
  found = InRead(store(), [&](Transaction& tx) { return tx.Support().GetDevice("devDEVICE1"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(now_reported));

  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Support().InsertDevice(
                                    MakeDevice("devDEVICE2", kVendorA, "jkt-new"));
                              }),
                      absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Support().InsertDevice(
                                    MakeDevice("devDEVICE9", kVendorA, "jkt-two"));
                              }),
                      absl::StatusCode::kAlreadyExists))
      << "one key is one device";
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Support().InsertDevice(
                                    MakeDevice("devDEVICE9", "vndNOPE", "jkt-nine"));
                              }),
                      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Support().UpdateDevice(
                                    MakeDevice("devDEVICE9", kVendorA, "jkt-nine"));
                              }),
                      absl::StatusCode::kNotFound));
  EXPECT_TRUE(
      HasCode(InRead(store(), [&](Transaction& tx) { return tx.Support().GetDevice("devNOPE"); }),
              absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(
      InRead(store(), [&](Transaction& tx) { return tx.Support().GetDeviceByJkt("jkt-nine"); }),
      absl::StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, EnrollmentTokenFoundByHashAndMarkedUsed) {
  const EnrollmentTokenRecord token{.id = "detTOKEN1",
                                    .token_hash = "e3b0c442",
                                    .vendor_id = std::string(kVendorA),
                                    .device_name = "support-laptop-17",
                                    .created = At(0),
                                    .expires = At(86400)};
  ASSERT_TRUE(Ok(InWrite(
      store(), [&](Transaction& tx) { return tx.Support().InsertEnrollmentToken(token); })));
  absl::StatusOr<EnrollmentTokenRecord> found = InRead(
      store(), [&](Transaction& tx) { return tx.Support().FindEnrollmentTokenByHash("e3b0c442"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(token));
  EXPECT_FALSE(found->used.has_value());

  EnrollmentTokenRecord used = token;
  used.used = At(60);
  used.device_id = "devDEVICE1";
  ASSERT_TRUE(Ok(
      InWrite(store(), [&](Transaction& tx) { return tx.Support().UpdateEnrollmentToken(used); })));
  found = InRead(
      store(), [&](Transaction& tx) { return tx.Support().FindEnrollmentTokenByHash("e3b0c442"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(used));

  EnrollmentTokenRecord same_id = token;
  same_id.token_hash = "ffff";
  EXPECT_TRUE(
      HasCode(InWrite(store(),
                      [&](Transaction& tx) { return tx.Support().InsertEnrollmentToken(same_id); }),
              absl::StatusCode::kAlreadyExists));
  EnrollmentTokenRecord same_hash = token;
  same_hash.id = "detTOKEN2";
  EXPECT_TRUE(HasCode(
      InWrite(store(),
              [&](Transaction& tx) { return tx.Support().InsertEnrollmentToken(same_hash); }),
      absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.Support().FindEnrollmentTokenByHash("ffff"); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(
      InWrite(store(),
              [&](Transaction& tx) { return tx.Support().UpdateEnrollmentToken(same_hash); }),
      absl::StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, OperatorTokenFoundByHashAndUnique) {
  const OperatorTokenRecord live =
      MakeOperatorToken("oatTOKEN1", "hash1", "00uOPERATOR1", kVendorA, "devD1", "102S1");
  OperatorTokenRecord revoked =
      MakeOperatorToken("oatTOKEN2", "hash2", "00uOPERATOR1", kVendorA, "devD1", "102S1");
  revoked.revoked = At(30);
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Support().InsertOperatorToken(live));
    return tx.Support().InsertOperatorToken(revoked);
  })));
  for (const OperatorTokenRecord* token :
       std::initializer_list<const OperatorTokenRecord*>{&live, &revoked}) {
    absl::StatusOr<OperatorTokenRecord> found = InRead(store(), [&](Transaction& tx) {
      return tx.Support().FindOperatorTokenByHash(token->token_hash);
    });
    ASSERT_TRUE(Ok(found));
    EXPECT_EQ(Describe(*found), Describe(*token));
  }

  OperatorTokenRecord same_id = live;
  same_id.token_hash = "hash9";
  EXPECT_TRUE(HasCode(
      InWrite(store(), [&](Transaction& tx) { return tx.Support().InsertOperatorToken(same_id); }),
      absl::StatusCode::kAlreadyExists));
  OperatorTokenRecord same_hash = live;
  same_hash.id = "oatTOKEN9";
  EXPECT_TRUE(
      HasCode(InWrite(store(),
                      [&](Transaction& tx) { return tx.Support().InsertOperatorToken(same_hash); }),
              absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.Support().FindOperatorTokenByHash("hash9"); }),
      absl::StatusCode::kNotFound));
}

// Tokens for the revocation tests: o1..o6 with hashes h1..h6; o5 was revoked at At(-5).
//        vendor  operator  device  session
//   o1   A       OP1       D1      S1
//   o2   A       OP1       D2      S2
//   o3   A       OP2       D3      S3
//   o4   B       OP3       D4      S4
//   o5   A       OP1       D1      S1      (revoked)
//   o6   A       OP1       D1      S1
absl::Status InsertRevocationTokens(Store& store) {
  return store.Write([&](Transaction& tx) -> absl::Status {
    SupportRepository& support = tx.Support();
    RETURN_IF_ERROR(support.InsertOperatorToken(
        MakeOperatorToken("o1", "h1", "00uOP1", kVendorA, "devD1", "102S1")));
    RETURN_IF_ERROR(support.InsertOperatorToken(
        MakeOperatorToken("o2", "h2", "00uOP1", kVendorA, "devD2", "102S2")));
    RETURN_IF_ERROR(support.InsertOperatorToken(
        MakeOperatorToken("o3", "h3", "00uOP2", kVendorA, "devD3", "102S3")));
    RETURN_IF_ERROR(support.InsertOperatorToken(
        MakeOperatorToken("o4", "h4", "00uOP3", kVendorB, "devD4", "102S4")));
    OperatorTokenRecord revoked =
        MakeOperatorToken("o5", "h5", "00uOP1", kVendorA, "devD1", "102S1");
    revoked.revoked = At(-5);
    RETURN_IF_ERROR(support.InsertOperatorToken(revoked));
    return support.InsertOperatorToken(
        MakeOperatorToken("o6", "h6", "00uOP1", kVendorA, "devD1", "102S1"));
  });
}

struct Revocation {
  int count = 0;
  std::vector<std::string> revoked_now;  // ids of the tokens whose `revoked` is `when`
};

// Revokes by `filter` at At(1000) inside a write that is then rolled back, so that each filter
// sees the same tokens; reports what the call returned and which tokens it revoked.
absl::StatusOr<Revocation> RevokeAndRollBack(Store& store, const OperatorTokenFilter& filter) {
  Revocation result;
  const absl::Status status = store.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(result.count, tx.Support().RevokeOperatorTokens(filter, At(1000)));
    for (int i = 1; i <= 6; ++i) {
      ASSIGN_OR_RETURN(OperatorTokenRecord token,
                       tx.Support().FindOperatorTokenByHash(fmt::format("h{}", i)));
      if (token.revoked == At(1000)) result.revoked_now.push_back(token.id);
    }
    return absl::AbortedError("rolled back on purpose");
  });
  if (status.code() != absl::StatusCode::kAborted) return status;
  return result;
}

TEST_P(StoreConformanceTest, RevokeOperatorTokensMatchesEverySetField) {
  ASSERT_TRUE(Ok(InsertRevocationTokens(store())));
  struct Case {
    std::string what;
    OperatorTokenFilter filter;
    std::vector<std::string> revoked;
  };
  const std::vector<Case> cases = {
      {"vendor", {.vendor_id = std::string(kVendorA)}, {"o1", "o2", "o3", "o6"}},
      {"other vendor", {.vendor_id = std::string(kVendorB)}, {"o4"}},
      {"operator", {.operator_id = UserId("00uOP1")}, {"o1", "o2", "o6"}},
      {"device", {.device_id = "devD1"}, {"o1", "o6"}},
      {"session", {.session_id = SessionId("102S2")}, {"o2"}},
      {"vendor and operator",
       {.vendor_id = std::string(kVendorA), .operator_id = UserId("00uOP2")},
       {"o3"}},
      {"operator and device", {.operator_id = UserId("00uOP1"), .device_id = "devD2"}, {"o2"}},
      {"device and session",
       {.device_id = "devD1", .session_id = SessionId("102S1")},
       {"o1", "o6"}},
      {"fields that no token has together",
       {.vendor_id = std::string(kVendorB), .operator_id = UserId("00uOP1")},
       {}},
      {"device of another session", {.device_id = "devD1", .session_id = SessionId("102S2")}, {}},
      {"unknown session", {.session_id = SessionId("102NOPE")}, {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    absl::StatusOr<Revocation> revocation = RevokeAndRollBack(store(), c.filter);
    ASSERT_TRUE(Ok(revocation));
    EXPECT_EQ(revocation->count, static_cast<int>(c.revoked.size()));
    EXPECT_EQ(revocation->revoked_now, c.revoked);
  }
}

TEST_P(StoreConformanceTest, RevokeOperatorTokensCountsEachTokenOnce) {
  ASSERT_TRUE(Ok(InsertRevocationTokens(store())));
  EXPECT_TRUE(HasCode(
      InWrite(store(),
              [&](Transaction& tx) { return tx.Support().RevokeOperatorTokens({}, At(1000)); }),
      absl::StatusCode::kInvalidArgument))
      << "an empty filter would revoke every token";

  absl::StatusOr<int> first = InWrite(store(), [&](Transaction& tx) {
    return tx.Support().RevokeOperatorTokens({.session_id = SessionId("102S1")}, At(1000));
  });
  ASSERT_TRUE(Ok(first));
  EXPECT_EQ(*first, 2);
  absl::StatusOr<int> vendor = InWrite(store(), [&](Transaction& tx) {
    return tx.Support().RevokeOperatorTokens({.vendor_id = std::string(kVendorA)}, At(2000));
  });
  ASSERT_TRUE(Ok(vendor));
  EXPECT_EQ(*vendor, 2) << "o2 and o3; o1, o5 and o6 were revoked already";
  absl::StatusOr<int> again = InWrite(store(), [&](Transaction& tx) {
    return tx.Support().RevokeOperatorTokens({.vendor_id = std::string(kVendorA)}, At(3000));
  });
  ASSERT_TRUE(Ok(again));
  EXPECT_EQ(*again, 0);

  const std::vector<std::pair<std::string, std::optional<absl::Time>>> expected = {
      {"h1", At(1000)},     {"h2", At(2000)}, {"h3", At(2000)},
      {"h4", std::nullopt}, {"h5", At(-5)},   {"h6", At(1000)}};
  for (const auto& [hash, revoked] : expected) {
    absl::StatusOr<OperatorTokenRecord> token = InRead(
        store(), [&](Transaction& tx) { return tx.Support().FindOperatorTokenByHash(hash); });
    ASSERT_TRUE(Ok(token));
    EXPECT_EQ(Micros(token->revoked), Micros(revoked))
        << hash << ": a token keeps the time it was first revoked";
  }
}

TEST_P(StoreConformanceTest, SupportCasesRoundTripAndStayInTheirTenant) {
  const SupportCaseRecord open = MakeCase(tenant_a(), "casCASE2");
  SupportCaseRecord closed = MakeCase(tenant_a(), "casCASE1");
  closed.opened_by = std::string(kOpenedByProvider);
  closed.opened_by_id = "00uOPERATOR1";
  closed.status = std::string(kCaseClosed);
  closed.closed = At(50);
  const SupportCaseRecord same_id_in_b = MakeCase(tenant_b(), "casCASE2");
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Support().InsertCase(open));
    RETURN_IF_ERROR(tx.Support().InsertCase(closed));
    return tx.Support().InsertCase(same_id_in_b);
  })));

  absl::StatusOr<SupportCaseRecord> found = InRead(
      store(), [&](Transaction& tx) { return tx.Support().GetCase(tenant_a(), "casCASE2"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(open));
  EXPECT_FALSE(found->closed.has_value());
  absl::StatusOr<std::vector<SupportCaseRecord>> of_a =
      InRead(store(), [&](Transaction& tx) { return tx.Support().ListCases(tenant_a()); });
  ASSERT_TRUE(Ok(of_a));
  EXPECT_THAT(Describe(*of_a), ElementsAre(Describe(closed), Describe(open)));
  absl::StatusOr<std::vector<SupportCaseRecord>> of_b =
      InRead(store(), [&](Transaction& tx) { return tx.Support().ListCases(tenant_b()); });
  ASSERT_TRUE(Ok(of_b));
  EXPECT_THAT(Describe(*of_b), ElementsAre(Describe(same_id_in_b)));

  SupportCaseRecord now_closed = open;
  now_closed.subject = "SSO fixed";
  now_closed.status = std::string(kCaseClosed);
  now_closed.closed = At(60);
  ASSERT_TRUE(
      Ok(InWrite(store(), [&](Transaction& tx) { return tx.Support().UpdateCase(now_closed); })));
  found = InRead(store(),
                 [&](Transaction& tx) { return tx.Support().GetCase(tenant_a(), "casCASE2"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(now_closed));
  found = InRead(store(),
                 [&](Transaction& tx) { return tx.Support().GetCase(tenant_b(), "casCASE2"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(same_id_in_b)) << "tenant B's case of the same id";

  EXPECT_TRUE(
      HasCode(InRead(store(),
                     [&](Transaction& tx) { return tx.Support().GetCase(tenant_b(), "casCASE1"); }),
              absl::StatusCode::kNotFound));
  SupportCaseRecord in_wrong_tenant = closed;
  in_wrong_tenant.tenant_id = tenant_b();
  EXPECT_TRUE(HasCode(
      InWrite(store(), [&](Transaction& tx) { return tx.Support().UpdateCase(in_wrong_tenant); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(
      HasCode(InWrite(store(), [&](Transaction& tx) { return tx.Support().InsertCase(open); }),
              absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Support().InsertCase(
                                    MakeCase(TenantId("00oNOPE"), "casCASE3"));
                              }),
                      absl::StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, AccessRequestsRoundTripFilterAndCrossTenantsOnlyByName) {
  const AccessRequestRecord approved = MakeRequest(tenant_a(), "sarREQUEST2", "00uOP1");
  AccessRequestRecord pending = MakeRequest(tenant_a(), "sarREQUEST1", "00uOP1");
  pending.status = std::string(kRequestPending);
  pending.decided_by.clear();
  pending.decided.reset();
  pending.reason.clear();
  pending.grant_id.clear();
  const AccessRequestRecord other_operator = MakeRequest(tenant_a(), "sarREQUEST3", "00uOP2");
  const AccessRequestRecord in_b = MakeRequest(tenant_b(), "sarREQUEST0", "00uOP1");
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    for (const AccessRequestRecord* r : std::initializer_list<const AccessRequestRecord*>{
             &approved, &pending, &other_operator, &in_b}) {
      RETURN_IF_ERROR(tx.Support().InsertAccessRequest(*r));
    }
    return absl::OkStatus();
  })));

  for (const AccessRequestRecord* r :
       std::initializer_list<const AccessRequestRecord*>{&approved, &pending}) {
    absl::StatusOr<AccessRequestRecord> found = InRead(
        store(), [&](Transaction& tx) { return tx.Support().GetAccessRequest(tenant_a(), r->id); });
    ASSERT_TRUE(Ok(found));
    EXPECT_EQ(Describe(*found), Describe(*r));
  }
  EXPECT_TRUE(HasCode(InRead(store(),
                             [&](Transaction& tx) {
                               return tx.Support().GetAccessRequest(tenant_b(), "sarREQUEST1");
                             }),
                      absl::StatusCode::kNotFound))
      << "tenant B cannot read tenant A's request";

  absl::StatusOr<std::vector<AccessRequestRecord>> of_a = InRead(
      store(), [&](Transaction& tx) { return tx.Support().ListAccessRequests(tenant_a(), {}); });
  ASSERT_TRUE(Ok(of_a));
  EXPECT_THAT(Describe(*of_a),
              ElementsAre(Describe(pending), Describe(approved), Describe(other_operator)));
  absl::StatusOr<std::vector<AccessRequestRecord>> pending_of_a =
      InRead(store(), [&](Transaction& tx) {
        return tx.Support().ListAccessRequests(tenant_a(), std::string(kRequestPending));
      });
  ASSERT_TRUE(Ok(pending_of_a));
  EXPECT_THAT(Describe(*pending_of_a), ElementsAre(Describe(pending)));
  absl::StatusOr<std::vector<AccessRequestRecord>> pending_of_b =
      InRead(store(), [&](Transaction& tx) {
        return tx.Support().ListAccessRequests(tenant_b(), std::string(kRequestPending));
      });
  ASSERT_TRUE(Ok(pending_of_b));
  EXPECT_THAT(*pending_of_b, IsEmpty());

  absl::StatusOr<std::vector<AccessRequestRecord>> of_op1 = InRead(store(), [&](Transaction& tx) {
    return tx.Support().ListAccessRequestsOfOperatorAcrossTenants(UserId("00uOP1"));
  });
  ASSERT_TRUE(Ok(of_op1));
  EXPECT_THAT(Describe(*of_op1),
              ElementsAre(Describe(in_b), Describe(pending), Describe(approved)));

  AccessRequestRecord denied = pending;
  denied.status = std::string(kRequestDenied);
  denied.decided_by = "00uADMIN2";
  denied.decided = At(70);
  denied.reason = "not now";
  denied.duration = absl::Hours(1);
  ASSERT_TRUE(Ok(
      InWrite(store(), [&](Transaction& tx) { return tx.Support().UpdateAccessRequest(denied); })));
  absl::StatusOr<AccessRequestRecord> found = InRead(store(), [&](Transaction& tx) {
    return tx.Support().GetAccessRequest(tenant_a(), "sarREQUEST1");
  });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(denied));

  AccessRequestRecord in_wrong_tenant = denied;
  in_wrong_tenant.tenant_id = tenant_b();
  EXPECT_TRUE(HasCode(
      InWrite(store(),
              [&](Transaction& tx) { return tx.Support().UpdateAccessRequest(in_wrong_tenant); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(
      InWrite(store(), [&](Transaction& tx) { return tx.Support().InsertAccessRequest(approved); }),
      absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Support().InsertAccessRequest(
                                    MakeRequest(TenantId("00oNOPE"), "sarREQUEST9", "00uOP1"));
                              }),
                      absl::StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, GrantsRoundTripFilterAndCrossTenantsOnlyByName) {
  const GrantRecord g1 = MakeGrant(tenant_a(), "sgrG1", "00uOP1", kVendorA, "casC1");
  GrantRecord g2 = MakeGrant(tenant_a(), "sgrG2", "00uOP2", kVendorA, "casC1");
  g2.status = std::string(kGrantRevoked);
  g2.ended = At(40);
  g2.end_reason = "revoked by the tenant";
  g2.first_used = At(20);
  const GrantRecord g3 = MakeGrant(tenant_a(), "sgrG3", "00uOP1", kVendorA, "casC2");
  // Tenant B has a case of the same id, and its own grants.
  const GrantRecord g4 = MakeGrant(tenant_b(), "sgrG4", "00uOP1", kVendorA, "casC1");
  const GrantRecord g5 = MakeGrant(tenant_b(), "sgrG5", "00uOP3", kVendorB, "casC1");
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    // Not in id order, to show that lists are ordered by id.
    for (const GrantRecord* g :
         std::initializer_list<const GrantRecord*>{&g5, &g3, &g1, &g4, &g2}) {
      RETURN_IF_ERROR(tx.Support().InsertGrant(*g));
    }
    return absl::OkStatus();
  })));

  for (const GrantRecord* g : std::initializer_list<const GrantRecord*>{&g1, &g2}) {
    absl::StatusOr<GrantRecord> found =
        InRead(store(), [&](Transaction& tx) { return tx.Support().GetGrant(tenant_a(), g->id); });
    ASSERT_TRUE(Ok(found));
    EXPECT_EQ(Describe(*found), Describe(*g));
  }
  EXPECT_TRUE(HasCode(
      InRead(store(), [&](Transaction& tx) { return tx.Support().GetGrant(tenant_b(), "sgrG1"); }),
      absl::StatusCode::kNotFound))
      << "a grant of tenant A is not visible through tenant B";

  absl::StatusOr<std::vector<GrantRecord>> list =
      InRead(store(), [&](Transaction& tx) { return tx.Support().ListGrants(tenant_a(), {}); });
  ASSERT_TRUE(Ok(list));
  EXPECT_THAT(Describe(*list), ElementsAre(Describe(g1), Describe(g2), Describe(g3)));
  list = InRead(store(), [&](Transaction& tx) {
    return tx.Support().ListGrants(tenant_a(), std::string(kGrantActive));
  });
  ASSERT_TRUE(Ok(list));
  EXPECT_THAT(TenantIds(*list), ElementsAre(fmt::format("{}/sgrG1", tenant_a().value()),
                                            fmt::format("{}/sgrG3", tenant_a().value())));
  list = InRead(store(), [&](Transaction& tx) { return tx.Support().ListGrants(tenant_b(), {}); });
  ASSERT_TRUE(Ok(list));
  EXPECT_THAT(Describe(*list), ElementsAre(Describe(g4), Describe(g5)));

  list = InRead(store(), [&](Transaction& tx) {
    return tx.Support().ListActiveGrantsOfCase(tenant_a(), "casC1");
  });
  ASSERT_TRUE(Ok(list));
  EXPECT_THAT(Describe(*list), ElementsAre(Describe(g1)))
      << "not the revoked one, nor tenant B's for its own case of the same id";

  list = InRead(store(), [&](Transaction& tx) {
    return tx.Support().ListGrantsOfOperatorAcrossTenants(UserId("00uOP1"));
  });
  ASSERT_TRUE(Ok(list));
  EXPECT_THAT(Describe(*list), ElementsAre(Describe(g1), Describe(g3), Describe(g4)));
  list = InRead(store(), [&](Transaction& tx) {
    return tx.Support().ListGrantsOfOperatorAcrossTenants(UserId("00uOP2"));
  });
  ASSERT_TRUE(Ok(list));
  EXPECT_THAT(Describe(*list), ElementsAre(Describe(g2))) << "whatever its status";

  list = InRead(store(), [&](Transaction& tx) {
    return tx.Support().ListActiveGrantsOfVendorAcrossTenants(kVendorA);
  });
  ASSERT_TRUE(Ok(list));
  EXPECT_THAT(Describe(*list), ElementsAre(Describe(g1), Describe(g3), Describe(g4)));
  list = InRead(store(), [&](Transaction& tx) {
    return tx.Support().ListActiveGrantsOfVendorAcrossTenants(kVendorB);
  });
  ASSERT_TRUE(Ok(list));
  EXPECT_THAT(Describe(*list), ElementsAre(Describe(g5)));

  GrantRecord ended = g1;
  ended.status = std::string(kGrantEnded);
  ended.ended = At(90);
  ended.end_reason = "case closed";
  ended.first_used = At(15);
  ended.expires = At(100);
  ASSERT_TRUE(
      Ok(InWrite(store(), [&](Transaction& tx) { return tx.Support().UpdateGrant(ended); })));
  absl::StatusOr<GrantRecord> found =
      InRead(store(), [&](Transaction& tx) { return tx.Support().GetGrant(tenant_a(), "sgrG1"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(ended));
  list = InRead(store(), [&](Transaction& tx) {
    return tx.Support().ListActiveGrantsOfVendorAcrossTenants(kVendorA);
  });
  ASSERT_TRUE(Ok(list));
  EXPECT_THAT(Describe(*list), ElementsAre(Describe(g3), Describe(g4)));

  GrantRecord in_wrong_tenant = g3;
  in_wrong_tenant.tenant_id = tenant_b();
  in_wrong_tenant.status = std::string(kGrantRevoked);
  EXPECT_TRUE(HasCode(
      InWrite(store(), [&](Transaction& tx) { return tx.Support().UpdateGrant(in_wrong_tenant); }),
      absl::StatusCode::kNotFound));
  found =
      InRead(store(), [&](Transaction& tx) { return tx.Support().GetGrant(tenant_a(), "sgrG3"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(g3)) << "tenant B cannot revoke tenant A's grant";
  EXPECT_TRUE(
      HasCode(InWrite(store(), [&](Transaction& tx) { return tx.Support().InsertGrant(g2); }),
              absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Support().InsertGrant(MakeGrant(
                                    TenantId("00oNOPE"), "sgrG9", "00uOP1", kVendorA, "casC1"));
                              }),
                      absl::StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, ConfirmationsRoundTripListAndFindTheNewest) {
  // Three for the same grant, action and target: the newest is the latest created, and of two
  // created together the larger id; the oldest has the largest id of all.
  const ConfirmationRecord oldest = MakeConfirmation(tenant_a(), "scfZ", "00uUSER1", At(0));
  ConfirmationRecord decided = MakeConfirmation(tenant_a(), "scfB", "00uUSER1", At(10));
  decided.status = std::string(kConfirmationConfirmed);
  decided.decided_by = "00uADMIN1";
  decided.decided = At(12);
  const ConfirmationRecord newest = MakeConfirmation(tenant_a(), "scfC", "00uUSER1", At(10));
  ConfirmationRecord other_target = MakeConfirmation(tenant_a(), "scfD", "00uUSER2", At(20));
  ConfirmationRecord other_action = MakeConfirmation(tenant_a(), "scfE", "00uUSER1", At(30));
  other_action.action = "mfa_reset";
  ConfirmationRecord other_grant = MakeConfirmation(tenant_a(), "scfF", "00uUSER1", At(40));
  other_grant.grant_id = "sgrGRANT2";
  const ConfirmationRecord in_b = MakeConfirmation(tenant_b(), "scfA", "00uUSER1", At(50));
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    for (const ConfirmationRecord* c : std::initializer_list<const ConfirmationRecord*>{
             &newest, &in_b, &decided, &oldest, &other_target, &other_action, &other_grant}) {
      RETURN_IF_ERROR(tx.Support().InsertConfirmation(*c));
    }
    return absl::OkStatus();
  })));

  for (const ConfirmationRecord* c :
       std::initializer_list<const ConfirmationRecord*>{&decided, &oldest}) {
    absl::StatusOr<ConfirmationRecord> found = InRead(
        store(), [&](Transaction& tx) { return tx.Support().GetConfirmation(tenant_a(), c->id); });
    ASSERT_TRUE(Ok(found));
    EXPECT_EQ(Describe(*found), Describe(*c));
  }
  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.Support().GetConfirmation(tenant_b(), "scfZ"); }),
      absl::StatusCode::kNotFound));

  absl::StatusOr<ConfirmationRecord> found = InRead(store(), [&](Transaction& tx) {
    return tx.Support().FindConfirmation(tenant_a(), "sgrGRANT1", "password_reset", "00uUSER1");
  });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(newest));
  found = InRead(store(), [&](Transaction& tx) {
    return tx.Support().FindConfirmation(tenant_b(), "sgrGRANT1", "password_reset", "00uUSER1");
  });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(in_b)) << "each tenant finds only its own";
  EXPECT_TRUE(HasCode(InRead(store(),
                             [&](Transaction& tx) {
                               return tx.Support().FindConfirmation(tenant_a(), "sgrGRANT1",
                                                                    "mfa_reset", "00uUSER2");
                             }),
                      absl::StatusCode::kNotFound));

  absl::StatusOr<std::vector<ConfirmationRecord>> list = InRead(
      store(), [&](Transaction& tx) { return tx.Support().ListConfirmations(tenant_a(), {}); });
  ASSERT_TRUE(Ok(list));
  EXPECT_THAT(Describe(*list),
              ElementsAre(Describe(decided), Describe(newest), Describe(other_target),
                          Describe(other_action), Describe(other_grant), Describe(oldest)));
  list = InRead(store(), [&](Transaction& tx) {
    return tx.Support().ListConfirmations(tenant_a(), std::string(kConfirmationConfirmed));
  });
  ASSERT_TRUE(Ok(list));
  EXPECT_THAT(Describe(*list), ElementsAre(Describe(decided)));
  list = InRead(store(), [&](Transaction& tx) {
    return tx.Support().ListConfirmations(tenant_b(), std::string(kConfirmationConfirmed));
  });
  ASSERT_TRUE(Ok(list));
  EXPECT_THAT(*list, IsEmpty());

  ConfirmationRecord used = newest;
  used.status = std::string(kConfirmationUsed);
  used.decided_by = "00uADMIN1";
  used.decided = At(11);
  ASSERT_TRUE(
      Ok(InWrite(store(), [&](Transaction& tx) { return tx.Support().UpdateConfirmation(used); })));
  found = InRead(store(), [&](Transaction& tx) {
    return tx.Support().FindConfirmation(tenant_a(), "sgrGRANT1", "password_reset", "00uUSER1");
  });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(used)) << "found whatever its status";

  ConfirmationRecord in_wrong_tenant = oldest;
  in_wrong_tenant.tenant_id = tenant_b();
  EXPECT_TRUE(HasCode(
      InWrite(store(),
              [&](Transaction& tx) { return tx.Support().UpdateConfirmation(in_wrong_tenant); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(
      InWrite(store(), [&](Transaction& tx) { return tx.Support().InsertConfirmation(decided); }),
      absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Support().InsertConfirmation(MakeConfirmation(
                                    TenantId("00oNOPE"), "scfX", "00uUSER1", At(0)));
                              }),
                      absl::StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, SightingsCountTheValuesSeenBefore) {
  const auto add = [&](std::string op, std::string kind, std::string value) {
    return InWrite(store(), [&](Transaction& tx) {
      return tx.Support().AddSighting(
          {.operator_id = UserId(op), .kind = kind, .value = value, .first_seen = At(0)});
    });
  };
  const auto expect = [&](std::string op, std::string kind, std::string value, int want) {
    absl::StatusOr<int> got = add(op, kind, value);
    ASSERT_TRUE(Ok(got));
    EXPECT_EQ(*got, want) << op << " " << kind << " " << value;
  };
  expect("00uOP1", "device", "devD1", 0);
  expect("00uOP1", "device", "devD1", -1);
  expect("00uOP1", "device", "devD2", 1);
  expect("00uOP1", "network", "203.0.113.0/24", 0);  // each kind counts apart
  expect("00uOP2", "device", "devD1", 0);
  expect("00uOP1", "device", "devD3", 2);
  expect("00uOP1", "device", "devD2", -1);
  expect("00uOP1", "network", "198.51.100.0/24", 1);
}

TEST_P(StoreConformanceTest, SupportSettingsArePutReplacedAndRead) {
  EXPECT_TRUE(HasCode(
      InRead(store(), [&](Transaction& tx) { return tx.Support().GetSetting("device_policy"); }),
      absl::StatusCode::kNotFound));
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Support().PutSetting("device_policy", R"({"max_age_s":86400})"));
    return tx.Support().PutSetting("empty", "");
  })));
  absl::StatusOr<std::string> value =
      InRead(store(), [&](Transaction& tx) { return tx.Support().GetSetting("device_policy"); });
  ASSERT_TRUE(Ok(value));
  EXPECT_EQ(*value, R"({"max_age_s":86400})");
  value = InRead(store(), [&](Transaction& tx) { return tx.Support().GetSetting("empty"); });
  ASSERT_TRUE(Ok(value));
  EXPECT_EQ(*value, "") << "an empty value is a value";

  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) {
    return tx.Support().PutSetting("device_policy", R"({"max_age_s":3600})");
  })));
  value =
      InRead(store(), [&](Transaction& tx) { return tx.Support().GetSetting("device_policy"); });
  ASSERT_TRUE(Ok(value));
  EXPECT_EQ(*value, R"({"max_age_s":3600})");
  value = InRead(store(), [&](Transaction& tx) { return tx.Support().GetSetting("empty"); });
  ASSERT_TRUE(Ok(value));
  EXPECT_EQ(*value, "") << "other keys are unchanged";
}

TEST_P(StoreConformanceTest, SupportWritesInAReadAreRefused) {
  EXPECT_TRUE(HasCode(InRead(store(),
                             [&](Transaction& tx) {
                               return tx.Support().InsertVendor(
                                   MakeVendor(kVendorA, "Acme Support Ltd"));
                             }),
                      absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(
      HasCode(InRead(store(), [&](Transaction& tx) { return tx.Support().PutSetting("k", "v"); }),
              absl::StatusCode::kFailedPrecondition));
  absl::StatusOr<std::vector<VendorRecord>> vendors =
      InRead(store(), [&](Transaction& tx) { return tx.Support().ListVendors(); });
  ASSERT_TRUE(Ok(vendors));
  EXPECT_THAT(*vendors, IsEmpty());
}

// OpenID Connect

// A key with every field set; `retired` and `expires` included.
OidcKeyRecord MakeOidcKey(const TenantId& tenant, std::string kid, absl::Time created) {
  return OidcKeyRecord{.kid = std::move(kid),
                       .tenant_id = tenant,
                       .alg = "ES256",
                       .public_jwk = R"({"kty":"EC","crv":"P-256","x":"f83O","y":"x_FE"})",
                       // Binary, NUL and high bytes included, like a real sealed key.
                       .sealed_private = std::string("\x00\x01\xfe\xff sealed", 11),
                       .created = created,
                       .activates = created + absl::Hours(24),
                       .retired = created + absl::Hours(24 * 90),
                       .expires = created + absl::Hours(24 * 91)};
}

AppRecord MakeApp(const TenantId& tenant, std::string id, std::string label) {
  return AppRecord{.id = std::move(id),
                   .tenant_id = tenant,
                   .label = std::move(label),
                   .status = std::string(kAppActive),
                   .application_type = "web",
                   .token_endpoint_auth_method = "client_secret_basic",
                   .client_secret_hash = "2cf24dba5fb0a30e26e83b2ac5b9e29e",
                   .settings_json = R"({"redirect_uris":["https://app.example.com/cb"]})",
                   .created = At(20),
                   .last_updated = At(21)};
}

// A code that has been used, so every optional field is set.
AuthCodeRecord MakeCode(const TenantId& tenant, std::string hash, absl::Time expires) {
  return AuthCodeRecord{.code_hash = std::move(hash),
                        .tenant_id = tenant,
                        .client_id = "0oaAPP1",
                        .user_id = UserId("00uADA"),
                        .session_id = SessionId("102SESSION1"),
                        .redirect_uri = "https://app.example.com/cb",
                        .scope = "openid profile offline_access",
                        .nonce = "n-0S6_WzA2Mj",
                        .code_challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                        .code_challenge_method = "S256",
                        .dpop_jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
                        .auth_time = At(30),
                        .amr = "pwd otp",
                        .created = At(31),
                        .expires = expires,
                        .used = At(32),
                        .family_id = "rftFAMILY1"};
}

// A rotated and revoked token, so every optional field is set; MakeLiveToken clears them.
RefreshTokenRecord MakeRefreshToken(const TenantId& tenant, std::string id, std::string hash) {
  return RefreshTokenRecord{.id = std::move(id),
                            .token_hash = std::move(hash),
                            .tenant_id = tenant,
                            .client_id = "0oaAPP1",
                            .user_id = UserId("00uADA"),
                            .scope = "openid offline_access",
                            .family_id = "rftFAMILY1",
                            .session_id = SessionId("102SESSION1"),
                            .auth_time = At(40),
                            .amr = "pwd",
                            .dpop_jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
                            .created = At(41),
                            .expires = At(41 + 30 * 86400),
                            .rotated = At(42),
                            .revoked = At(43)};
}

RefreshTokenRecord MakeLiveToken(const TenantId& tenant, std::string id, std::string family,
                                 std::string session) {
  RefreshTokenRecord token = MakeRefreshToken(tenant, id, "hash-" + id);
  token.family_id = std::move(family);
  token.session_id = SessionId(std::move(session));
  token.rotated.reset();
  token.revoked.reset();
  return token;
}

TEST_P(StoreConformanceTest, OidcKeysRoundTripOldestFirstUpdateAndClash) {
  // Inserted newest first, and one without its optional times.
  const OidcKeyRecord newer = MakeOidcKey(tenant_a(), "kid-a", At(100));
  OidcKeyRecord older = MakeOidcKey(tenant_a(), "kid-b", At(0));
  older.alg = "EdDSA";
  older.retired.reset();
  older.expires.reset();
  const OidcKeyRecord same_kid_in_b = MakeOidcKey(tenant_b(), "kid-a", At(50));
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Oidc().InsertKey(newer));
    RETURN_IF_ERROR(tx.Oidc().InsertKey(older));
    return tx.Oidc().InsertKey(same_kid_in_b);
  })));
  absl::StatusOr<std::vector<OidcKeyRecord>> keys =
      InRead(store(), [&](Transaction& tx) { return tx.Oidc().ListKeys(tenant_a()); });
  ASSERT_TRUE(Ok(keys));
  EXPECT_THAT(Describe(*keys), ElementsAre(Describe(older), Describe(newer)));
  keys = InRead(store(), [&](Transaction& tx) { return tx.Oidc().ListKeys(tenant_b()); });
  ASSERT_TRUE(Ok(keys));
  EXPECT_THAT(Describe(*keys), ElementsAre(Describe(same_kid_in_b)));

  OidcKeyRecord retired = older;
  retired.public_jwk = R"({"kty":"OKP","crv":"Ed25519","x":"11qY"})";
  retired.sealed_private = std::string("\xff\x00 resealed", 10);
  retired.activates = At(5);
  retired.retired = At(200);
  retired.expires = At(300);
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Oidc().UpdateKey(retired); })));
  keys = InRead(store(), [&](Transaction& tx) { return tx.Oidc().ListKeys(tenant_a()); });
  ASSERT_TRUE(Ok(keys));
  EXPECT_THAT(Describe(*keys), ElementsAre(Describe(retired), Describe(newer)));

  OidcKeyRecord in_wrong_tenant = retired;
  in_wrong_tenant.tenant_id = tenant_b();
  EXPECT_TRUE(HasCode(
      InWrite(store(), [&](Transaction& tx) { return tx.Oidc().UpdateKey(in_wrong_tenant); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(InWrite(store(), [&](Transaction& tx) { return tx.Oidc().InsertKey(newer); }),
                      absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Oidc().InsertKey(
                                    MakeOidcKey(TenantId("00oNOPE"), "kid-c", At(0)));
                              }),
                      absl::StatusCode::kNotFound));
  keys = InRead(store(), [&](Transaction& tx) { return tx.Oidc().ListKeys(tenant_b()); });
  ASSERT_TRUE(Ok(keys));
  EXPECT_THAT(Describe(*keys), ElementsAre(Describe(same_kid_in_b)))
      << "refused writes changed nothing";
  keys = InRead(store(), [&](Transaction& tx) {
    return tx.Oidc().ListKeys(TenantId("00oTENANTCCCCCCCCCC"));
  });
  ASSERT_TRUE(Ok(keys));
  EXPECT_THAT(*keys, IsEmpty());
}

TEST_P(StoreConformanceTest, AppsRoundTripPageByIdAndStayInTheirTenant) {
  // Inserted out of id order; tenant B has an app with one of the same ids.
  const AppRecord a3 = MakeApp(tenant_a(), "0oaAPP3", "Payroll");
  AppRecord a1 = MakeApp(tenant_a(), "0oaAPP1", "Wiki");
  a1.application_type = "browser";
  a1.token_endpoint_auth_method = "none";
  a1.client_secret_hash.clear();
  const AppRecord a2 = MakeApp(tenant_a(), "0oaAPP2", "Chat");
  const AppRecord b1 = MakeApp(tenant_b(), "0oaAPP1", "Globex CRM");
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    for (const AppRecord* app : std::initializer_list<const AppRecord*>{&a3, &a1, &a2, &b1})
      RETURN_IF_ERROR(tx.Oidc().InsertApp(*app));
    return absl::OkStatus();
  })));

  absl::StatusOr<AppRecord> found =
      InRead(store(), [&](Transaction& tx) { return tx.Oidc().GetApp(tenant_a(), "0oaAPP1"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(a1));
  found = InRead(store(), [&](Transaction& tx) { return tx.Oidc().GetApp(tenant_b(), "0oaAPP1"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(b1));
  EXPECT_TRUE(HasCode(
      InRead(store(), [&](Transaction& tx) { return tx.Oidc().GetApp(tenant_b(), "0oaAPP2"); }),
      absl::StatusCode::kNotFound));

  absl::StatusOr<std::vector<AppRecord>> page = InRead(
      store(), [&](Transaction& tx) { return tx.Oidc().ListApps(tenant_a(), Page{.limit = 2}); });
  ASSERT_TRUE(Ok(page));
  EXPECT_THAT(Describe(*page), ElementsAre(Describe(a1), Describe(a2)));
  page = InRead(store(), [&](Transaction& tx) {
    return tx.Oidc().ListApps(tenant_a(), Page{.after = "0oaAPP2", .limit = 2});
  });
  ASSERT_TRUE(Ok(page));
  EXPECT_THAT(Describe(*page), ElementsAre(Describe(a3)));
  page = InRead(store(), [&](Transaction& tx) {
    return tx.Oidc().ListApps(tenant_a(), Page{.after = "0oaAPP3", .limit = 2});
  });
  ASSERT_TRUE(Ok(page));
  EXPECT_THAT(*page, IsEmpty());
  page = InRead(store(), [&](Transaction& tx) { return tx.Oidc().ListApps(tenant_b(), Page{}); });
  ASSERT_TRUE(Ok(page));
  EXPECT_THAT(Describe(*page), ElementsAre(Describe(b1)));
  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.Oidc().ListApps(tenant_a(), Page{.limit = 0}); }),
      absl::StatusCode::kInvalidArgument));

  AppRecord changed = a2;
  changed.label = "Chat (retired)";
  changed.status = std::string(kAppInactive);
  changed.application_type = "service";
  changed.token_endpoint_auth_method = "private_key_jwt";
  changed.client_secret_hash.clear();
  changed.settings_json = R"({"jwks":{"keys":[]}})";
  changed.created = At(22);
  changed.last_updated = At(23);
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Oidc().UpdateApp(changed); })));
  found = InRead(store(), [&](Transaction& tx) { return tx.Oidc().GetApp(tenant_a(), "0oaAPP2"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(changed));

  AppRecord in_wrong_tenant = changed;
  in_wrong_tenant.tenant_id = tenant_b();
  EXPECT_TRUE(HasCode(
      InWrite(store(), [&](Transaction& tx) { return tx.Oidc().UpdateApp(in_wrong_tenant); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(InWrite(store(), [&](Transaction& tx) { return tx.Oidc().InsertApp(a3); }),
                      absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Oidc().InsertApp(
                                    MakeApp(TenantId("00oNOPE"), "0oaAPP9", "Nowhere"));
                              }),
                      absl::StatusCode::kNotFound));

  ASSERT_TRUE(Ok(InWrite(
      store(), [&](Transaction& tx) { return tx.Oidc().DeleteApp(tenant_a(), "0oaAPP1"); })));
  EXPECT_TRUE(HasCode(
      InWrite(store(), [&](Transaction& tx) { return tx.Oidc().DeleteApp(tenant_a(), "0oaAPP1"); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(
      InWrite(store(), [&](Transaction& tx) { return tx.Oidc().DeleteApp(tenant_b(), "0oaAPP2"); }),
      absl::StatusCode::kNotFound));
  page = InRead(store(), [&](Transaction& tx) { return tx.Oidc().ListApps(tenant_a(), Page{}); });
  ASSERT_TRUE(Ok(page));
  EXPECT_THAT(Describe(*page), ElementsAre(Describe(changed), Describe(a3)));
  found = InRead(store(), [&](Transaction& tx) { return tx.Oidc().GetApp(tenant_b(), "0oaAPP1"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(b1)) << "tenant B's app of the same id stays";
}

TEST_P(StoreConformanceTest, AuthCodesRoundTripAreMarkedUsedAndSwept) {
  AuthCodeRecord fresh = MakeCode(tenant_a(), "code-1", At(600));
  fresh.used.reset();
  fresh.code_challenge.clear();
  fresh.code_challenge_method.clear();
  fresh.dpop_jkt.clear();
  fresh.family_id.clear();
  const AuthCodeRecord expiring = MakeCode(tenant_a(), "code-2", At(60));
  const AuthCodeRecord expired = MakeCode(tenant_a(), "code-3", At(59));
  const AuthCodeRecord same_hash_in_b = MakeCode(tenant_b(), "code-1", At(0));
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    for (const AuthCodeRecord* code : std::initializer_list<const AuthCodeRecord*>{
             &fresh, &expiring, &expired, &same_hash_in_b}) {
      RETURN_IF_ERROR(tx.Oidc().InsertCode(*code));
    }
    return absl::OkStatus();
  })));
  for (const AuthCodeRecord* code :
       std::initializer_list<const AuthCodeRecord*>{&fresh, &expiring, &same_hash_in_b}) {
    absl::StatusOr<AuthCodeRecord> found = InRead(store(), [&](Transaction& tx) {
      return tx.Oidc().FindCode(code->tenant_id, code->code_hash);
    });
    ASSERT_TRUE(Ok(found));
    EXPECT_EQ(Describe(*found), Describe(*code));
  }
  EXPECT_TRUE(HasCode(
      InRead(store(), [&](Transaction& tx) { return tx.Oidc().FindCode(tenant_b(), "code-2"); }),
      absl::StatusCode::kNotFound));

  AuthCodeRecord used = fresh;
  used.used = At(61);
  used.family_id = "rftFAMILY9";
  used.scope = "openid";
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) { return tx.Oidc().UpdateCode(used); })));
  absl::StatusOr<AuthCodeRecord> found =
      InRead(store(), [&](Transaction& tx) { return tx.Oidc().FindCode(tenant_a(), "code-1"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(used));
  found =
      InRead(store(), [&](Transaction& tx) { return tx.Oidc().FindCode(tenant_b(), "code-1"); });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(same_hash_in_b)) << "tenant B's code is unchanged";

  EXPECT_TRUE(
      HasCode(InWrite(store(), [&](Transaction& tx) { return tx.Oidc().InsertCode(expiring); }),
              absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Oidc().UpdateCode(MakeCode(tenant_a(), "nope", At(0)));
                              }),
                      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Oidc().InsertCode(
                                    MakeCode(TenantId("00oNOPE"), "code-9", At(0)));
                              }),
                      absl::StatusCode::kNotFound));

  // expires <= now goes: code-2 expires exactly at At(60), code-3 before it.
  absl::StatusOr<int> swept = InWrite(
      store(), [&](Transaction& tx) { return tx.Oidc().DeleteExpiredCodes(tenant_a(), At(60)); });
  ASSERT_TRUE(Ok(swept));
  EXPECT_EQ(*swept, 2);
  swept = InWrite(
      store(), [&](Transaction& tx) { return tx.Oidc().DeleteExpiredCodes(tenant_a(), At(60)); });
  ASSERT_TRUE(Ok(swept));
  EXPECT_EQ(*swept, 0);
  EXPECT_TRUE(HasCode(
      InRead(store(), [&](Transaction& tx) { return tx.Oidc().FindCode(tenant_a(), "code-2"); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(Ok(
      InRead(store(), [&](Transaction& tx) { return tx.Oidc().FindCode(tenant_a(), "code-1"); })));
  EXPECT_TRUE(Ok(InRead(store(), [&](Transaction& tx) {
    return tx.Oidc().FindCode(tenant_b(), "code-1");
  }))) << "tenant B's expired code waits for tenant B's sweep";
  swept = InWrite(
      store(), [&](Transaction& tx) { return tx.Oidc().DeleteExpiredCodes(tenant_b(), At(60)); });
  ASSERT_TRUE(Ok(swept));
  EXPECT_EQ(*swept, 1);
}

TEST_P(StoreConformanceTest, RefreshTokensRoundTripRotateAndClash) {
  const RefreshTokenRecord rotated = MakeRefreshToken(tenant_a(), "rftTOKEN1", "hash-1");
  const RefreshTokenRecord live = MakeLiveToken(tenant_a(), "rftTOKEN2", "rftFAMILY1", "102S1");
  const RefreshTokenRecord same_in_b = MakeRefreshToken(tenant_b(), "rftTOKEN1", "hash-1");
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    for (const RefreshTokenRecord* token : {&rotated, &live, &same_in_b}) {
      RETURN_IF_ERROR(tx.Oidc().InsertRefreshToken(*token));
    }
    return absl::OkStatus();
  })));
  for (const RefreshTokenRecord* token : {&rotated, &live, &same_in_b}) {
    absl::StatusOr<RefreshTokenRecord> found = InRead(store(), [&](Transaction& tx) {
      return tx.Oidc().FindRefreshToken(token->tenant_id, token->token_hash);
    });
    ASSERT_TRUE(Ok(found));
    EXPECT_EQ(Describe(*found), Describe(*token));
  }
  EXPECT_TRUE(HasCode(InRead(store(),
                             [&](Transaction& tx) {
                               return tx.Oidc().FindRefreshToken(tenant_b(), live.token_hash);
                             }),
                      absl::StatusCode::kNotFound));

  RefreshTokenRecord now_rotated = live;
  now_rotated.rotated = At(500);
  now_rotated.scope = "openid";
  now_rotated.expires = At(501);
  ASSERT_TRUE(Ok(InWrite(
      store(), [&](Transaction& tx) { return tx.Oidc().UpdateRefreshToken(now_rotated); })));
  absl::StatusOr<RefreshTokenRecord> found = InRead(store(), [&](Transaction& tx) {
    return tx.Oidc().FindRefreshToken(tenant_a(), live.token_hash);
  });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(now_rotated));

  RefreshTokenRecord same_id = MakeRefreshToken(tenant_a(), "rftTOKEN1", "hash-other");
  RefreshTokenRecord same_hash = MakeRefreshToken(tenant_a(), "rftTOKEN3", "hash-1");
  RefreshTokenRecord hash_onto_other = now_rotated;
  hash_onto_other.token_hash = "hash-1";
  for (const RefreshTokenRecord* clash : {&same_id, &same_hash}) {
    EXPECT_TRUE(HasCode(
        InWrite(store(), [&](Transaction& tx) { return tx.Oidc().InsertRefreshToken(*clash); }),
        absl::StatusCode::kAlreadyExists))
        << clash->id << " " << clash->token_hash;
  }
  EXPECT_TRUE(HasCode(
      InWrite(store(),
              [&](Transaction& tx) { return tx.Oidc().UpdateRefreshToken(hash_onto_other); }),
      absl::StatusCode::kAlreadyExists));
  RefreshTokenRecord in_wrong_tenant = now_rotated;
  in_wrong_tenant.tenant_id = tenant_b();
  in_wrong_tenant.id = "rftTOKEN2";
  EXPECT_TRUE(HasCode(
      InWrite(store(),
              [&](Transaction& tx) { return tx.Oidc().UpdateRefreshToken(in_wrong_tenant); }),
      absl::StatusCode::kNotFound));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Oidc().InsertRefreshToken(
                                    MakeRefreshToken(TenantId("00oNOPE"), "rftTOKEN9", "hash-9"));
                              }),
                      absl::StatusCode::kNotFound));
  found = InRead(store(), [&](Transaction& tx) {
    return tx.Oidc().FindRefreshToken(tenant_a(), live.token_hash);
  });
  ASSERT_TRUE(Ok(found));
  EXPECT_EQ(Describe(*found), Describe(now_rotated)) << "refused writes changed nothing";
}

// Tokens for the revocation tests, in tenant A unless said:
//         family  session
//   t1    F1      S1
//   t2    F1      S2
//   t3    F2      S1
//   t4    F1      S1      revoked at At(-5)
//   t5    F2      S2
//   b1    F1      S1      (tenant B)
absl::Status InsertFamilies(Store& store, const TenantId& a, const TenantId& b) {
  return store.Write([&](Transaction& tx) -> absl::Status {
    OidcRepository& oidc = tx.Oidc();
    RETURN_IF_ERROR(oidc.InsertRefreshToken(MakeLiveToken(a, "t1", "F1", "102S1")));
    RETURN_IF_ERROR(oidc.InsertRefreshToken(MakeLiveToken(a, "t2", "F1", "102S2")));
    RETURN_IF_ERROR(oidc.InsertRefreshToken(MakeLiveToken(a, "t3", "F2", "102S1")));
    RefreshTokenRecord revoked = MakeLiveToken(a, "t4", "F1", "102S1");
    revoked.revoked = At(-5);
    RETURN_IF_ERROR(oidc.InsertRefreshToken(revoked));
    RETURN_IF_ERROR(oidc.InsertRefreshToken(MakeLiveToken(a, "t5", "F2", "102S2")));
    return oidc.InsertRefreshToken(MakeLiveToken(b, "b1", "F1", "102S1"));
  });
}

// "id=revoked time" of each token, tenant A's t1..t5 then tenant B's b1.
std::vector<std::string> RevokedTimes(Store& store, const TenantId& a, const TenantId& b) {
  std::vector<std::string> out;
  const absl::Status status = store.Read([&](Transaction& tx) -> absl::Status {
    for (const auto& [tenant, id] : std::vector<std::pair<TenantId, std::string>>{
             {a, "t1"}, {a, "t2"}, {a, "t3"}, {a, "t4"}, {a, "t5"}, {b, "b1"}}) {
      ASSIGN_OR_RETURN(RefreshTokenRecord token, tx.Oidc().FindRefreshToken(tenant, "hash-" + id));
      out.push_back(fmt::format("{}={}", id,
                                token.revoked.has_value()
                                    ? std::to_string(absl::ToInt64Seconds(*token.revoked - kT0))
                                    : "-"));
    }
    return absl::OkStatus();
  });
  if (!status.ok()) out.push_back(std::string(status.message()));
  return out;
}

TEST_P(StoreConformanceTest, RevokeFamilyCountsOnlyItsUnrevokedTokens) {
  ASSERT_TRUE(Ok(InsertFamilies(store(), tenant_a(), tenant_b())));
  absl::StatusOr<int> count = InWrite(
      store(), [&](Transaction& tx) { return tx.Oidc().RevokeFamily(tenant_a(), "F1", At(100)); });
  ASSERT_TRUE(Ok(count));
  EXPECT_EQ(*count, 2) << "t1 and t2; t4 was revoked already";
  count = InWrite(
      store(), [&](Transaction& tx) { return tx.Oidc().RevokeFamily(tenant_a(), "F1", At(200)); });
  ASSERT_TRUE(Ok(count));
  EXPECT_EQ(*count, 0) << "nothing left to revoke";
  count = InWrite(
      store(), [&](Transaction& tx) { return tx.Oidc().RevokeFamily(tenant_a(), "F9", At(200)); });
  ASSERT_TRUE(Ok(count));
  EXPECT_EQ(*count, 0);
  EXPECT_THAT(RevokedTimes(store(), tenant_a(), tenant_b()),
              ElementsAre("t1=100", "t2=100", "t3=-", "t4=-5", "t5=-", "b1=-"))
      << "each token keeps the time it was first revoked; tenant B's family of the same id stays";
}

TEST_P(StoreConformanceTest, RevokeRefreshTokensOfSessionCountsOnlyItsUnrevokedTokens) {
  ASSERT_TRUE(Ok(InsertFamilies(store(), tenant_a(), tenant_b())));
  absl::StatusOr<int> count = InWrite(store(), [&](Transaction& tx) {
    return tx.Oidc().RevokeRefreshTokensOfSession(tenant_a(), SessionId("102S1"), At(100));
  });
  ASSERT_TRUE(Ok(count));
  EXPECT_EQ(*count, 2) << "t1 and t3; t4 was revoked already";
  count = InWrite(
      store(), [&](Transaction& tx) { return tx.Oidc().RevokeFamily(tenant_a(), "F2", At(200)); });
  ASSERT_TRUE(Ok(count));
  EXPECT_EQ(*count, 1) << "t5; t3 went with its session";
  count = InWrite(store(), [&](Transaction& tx) {
    return tx.Oidc().RevokeRefreshTokensOfSession(tenant_a(), SessionId("102S1"), At(300));
  });
  ASSERT_TRUE(Ok(count));
  EXPECT_EQ(*count, 0);
  EXPECT_THAT(RevokedTimes(store(), tenant_a(), tenant_b()),
              ElementsAre("t1=100", "t2=-", "t3=100", "t4=-5", "t5=200", "b1=-"));
}

TEST_P(StoreConformanceTest, RevokeRefreshTokensOfUserEndsEverySessionsTokensOfThatUserOnly) {
  ASSERT_TRUE(Ok(InsertFamilies(store(), tenant_a(), tenant_b())));
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    RefreshTokenRecord other = MakeLiveToken(tenant_a(), "t6", "F3", "102S3");
    other.token_hash = "hash-t6";
    other.user_id = UserId("00uBOB");
    return tx.Oidc().InsertRefreshToken(other);
  })));
  absl::StatusOr<int> count = InWrite(store(), [&](Transaction& tx) {
    return tx.Oidc().RevokeTokensOfUser(tenant_a(), UserId("00uADA"), At(100), At(1000));
  });
  ASSERT_TRUE(Ok(count));
  EXPECT_EQ(*count, 4) << "t1, t2, t3 and t5 in both sessions; t4 was revoked already";
  EXPECT_THAT(RevokedTimes(store(), tenant_a(), tenant_b()),
              ElementsAre("t1=100", "t2=100", "t3=100", "t4=-5", "t5=100", "b1=-"))
      << "tenant B's token of a user with the same id stays";
  absl::StatusOr<bool> bob_revoked = InRead(store(), [&](Transaction& tx) -> absl::StatusOr<bool> {
    ASSIGN_OR_RETURN(RefreshTokenRecord token, tx.Oidc().FindRefreshToken(tenant_a(), "hash-t6"));
    return token.revoked.has_value();
  });
  ASSERT_TRUE(Ok(bob_revoked));
  EXPECT_FALSE(*bob_revoked) << "another user's token stays";

  auto revoked_at = [&](const TenantId& tenant, const char* user) {
    return InRead(store(), [&](Transaction& tx) {
      return tx.Oidc().UserTokensRevokedAt(tenant, UserId(user));
    });
  };
  ASSERT_TRUE(Ok(revoked_at(tenant_a(), "00uADA")));
  EXPECT_EQ(*revoked_at(tenant_a(), "00uADA"), At(100));
  EXPECT_EQ(*revoked_at(tenant_a(), "00uBOB"), std::nullopt);
  EXPECT_EQ(*revoked_at(tenant_b(), "00uADA"), std::nullopt);
  // A later revocation moves the time forward; an older one (a late writer) does not go back.
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) {
    return tx.Oidc().RevokeTokensOfUser(tenant_a(), UserId("00uADA"), At(300), At(400));
  })));
  EXPECT_EQ(*revoked_at(tenant_a(), "00uADA"), At(300));
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) {
    return tx.Oidc().RevokeTokensOfUser(tenant_a(), UserId("00uADA"), At(200), At(400));
  })));
  EXPECT_EQ(*revoked_at(tenant_a(), "00uADA"), At(300));
  // Swept with the other revocations once kept long enough (the later keep_until, 1000).
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) {
    return tx.Oidc().DeleteExpiredRevoked(tenant_a(), At(999));
  })));
  EXPECT_EQ(*revoked_at(tenant_a(), "00uADA"), At(300));
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) {
    return tx.Oidc().DeleteExpiredRevoked(tenant_a(), At(1000));
  })));
  EXPECT_EQ(*revoked_at(tenant_a(), "00uADA"), std::nullopt);
}

TEST_P(StoreConformanceTest, ExpiredRefreshTokensAreSweptPerTenant) {
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    for (int i = 1; i <= 4; ++i) {
      RefreshTokenRecord token = MakeLiveToken(tenant_a(), fmt::format("t{}", i), "F1", "102S1");
      token.expires = At(100 * i);  // 100, 200, 300, 400
      RETURN_IF_ERROR(tx.Oidc().InsertRefreshToken(token));
    }
    RefreshTokenRecord in_b = MakeLiveToken(tenant_b(), "b1", "F1", "102S1");
    in_b.expires = At(0);
    return tx.Oidc().InsertRefreshToken(in_b);
  })));
  absl::StatusOr<int> swept = InWrite(store(), [&](Transaction& tx) {
    return tx.Oidc().DeleteExpiredRefreshTokens(tenant_a(), At(200));
  });
  ASSERT_TRUE(Ok(swept));
  EXPECT_EQ(*swept, 2) << "expires <= now: t1 and t2";
  swept = InWrite(store(), [&](Transaction& tx) {
    return tx.Oidc().DeleteExpiredRefreshTokens(tenant_a(), At(200));
  });
  ASSERT_TRUE(Ok(swept));
  EXPECT_EQ(*swept, 0);
  ASSERT_TRUE(Ok(store().Read([&](Transaction& tx) -> absl::Status {
    EXPECT_TRUE(
        HasCode(tx.Oidc().FindRefreshToken(tenant_a(), "hash-t2"), absl::StatusCode::kNotFound));
    EXPECT_TRUE(Ok(tx.Oidc().FindRefreshToken(tenant_a(), "hash-t3")));
    EXPECT_TRUE(Ok(tx.Oidc().FindRefreshToken(tenant_b(), "hash-b1")))
        << "tenant B's expired token waits for tenant B's sweep";
    return absl::OkStatus();
  })));
}

TEST_P(StoreConformanceTest, RevokedTokensAreRecordedOnceCheckedAndSwept) {
  const RevokedTokenRecord jti{
      .tenant_id = tenant_a(), .jti = "AT.jti.1", .revoked = At(10), .expires = At(100)};
  const RevokedTokenRecord family{
      .tenant_id = tenant_a(), .jti = "family:F1", .revoked = At(11), .expires = At(200)};
  const RevokedTokenRecord in_b{
      .tenant_id = tenant_b(), .jti = "AT.jti.2", .revoked = At(12), .expires = At(50)};
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    for (const RevokedTokenRecord* r : {&jti, &family, &in_b}) {
      RETURN_IF_ERROR(tx.Oidc().InsertRevoked(*r));
    }
    return absl::OkStatus();
  })));
  // A second revocation of the same jti, expiring later, does nothing: the first one stays.
  RevokedTokenRecord again = jti;
  again.revoked = At(20);
  again.expires = At(1000);
  ASSERT_TRUE(
      Ok(InWrite(store(), [&](Transaction& tx) { return tx.Oidc().InsertRevoked(again); })));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                RevokedTokenRecord unknown = jti;
                                unknown.tenant_id = TenantId("00oNOPE");
                                return tx.Oidc().InsertRevoked(unknown);
                              }),
                      absl::StatusCode::kNotFound));

  const auto is_revoked = [&](const TenantId& tenant, std::string_view id) {
    return InRead(store(), [&](Transaction& tx) { return tx.Oidc().IsRevoked(tenant, id); });
  };
  struct Check {
    TenantId tenant;
    std::string jti;
    bool revoked;
  };
  for (const Check& c : std::vector<Check>{{tenant_a(), "AT.jti.1", true},
                                           {tenant_a(), "family:F1", true},
                                           {tenant_a(), "family:F2", false},
                                           {tenant_a(), "AT.jti.2", false},
                                           {tenant_b(), "AT.jti.2", true},
                                           {tenant_b(), "AT.jti.1", false}}) {
    absl::StatusOr<bool> revoked = is_revoked(c.tenant, c.jti);
    ASSERT_TRUE(Ok(revoked));
    EXPECT_EQ(*revoked, c.revoked) << c.tenant.value() << " " << c.jti;
  }

  // expires <= now goes; the repeated insert did not move AT.jti.1's expiry to At(1000).
  absl::StatusOr<int> swept = InWrite(store(), [&](Transaction& tx) {
    return tx.Oidc().DeleteExpiredRevoked(tenant_a(), At(100));
  });
  ASSERT_TRUE(Ok(swept));
  EXPECT_EQ(*swept, 1);
  swept = InWrite(store(), [&](Transaction& tx) {
    return tx.Oidc().DeleteExpiredRevoked(tenant_a(), At(100));
  });
  ASSERT_TRUE(Ok(swept));
  EXPECT_EQ(*swept, 0);
  for (const Check& c : std::vector<Check>{{tenant_a(), "AT.jti.1", false},
                                           {tenant_a(), "family:F1", true},
                                           {tenant_b(), "AT.jti.2", true}}) {
    absl::StatusOr<bool> revoked = is_revoked(c.tenant, c.jti);
    ASSERT_TRUE(Ok(revoked));
    EXPECT_EQ(*revoked, c.revoked) << "after the sweep: " << c.tenant.value() << " " << c.jti;
  }
  swept = InWrite(store(), [&](Transaction& tx) {
    return tx.Oidc().DeleteExpiredRevoked(tenant_b(), At(1000));
  });
  ASSERT_TRUE(Ok(swept));
  EXPECT_EQ(*swept, 1);
}

TEST_P(StoreConformanceTest, OidcWritesInAReadAreRefused) {
  EXPECT_TRUE(HasCode(InRead(store(),
                             [&](Transaction& tx) {
                               return tx.Oidc().InsertApp(MakeApp(tenant_a(), "0oaAPP1", "Wiki"));
                             }),
                      absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(HasCode(InRead(store(),
                             [&](Transaction& tx) {
                               return tx.Oidc().InsertRevoked({.tenant_id = tenant_a(),
                                                               .jti = "AT.jti.1",
                                                               .revoked = At(0),
                                                               .expires = At(1)});
                             }),
                      absl::StatusCode::kFailedPrecondition));
  absl::StatusOr<std::vector<AppRecord>> apps =
      InRead(store(), [&](Transaction& tx) { return tx.Oidc().ListApps(tenant_a(), Page{}); });
  ASSERT_TRUE(Ok(apps));
  EXPECT_THAT(*apps, IsEmpty());
}

// Incident response

// A support view by an operator, every field set; `tag` makes its event uuids.
SupportActivityRecord MakeActivity(const TenantId& tenant, absl::Time published,
                                   const std::string& tag) {
  return SupportActivityRecord{.published = published,
                               .tenant_id = tenant,
                               .tenant_event_uuid = "tenant-" + tag,
                               .provider_event_uuid = "provider-" + tag,
                               .event_type = "support.view",
                               .outcome = "SUCCESS",
                               .reason = "",
                               .actor_id = "00uOPERATOR1",
                               .by_operator = true,
                               .operator_id = "00uOPERATOR1",
                               .vendor_id = std::string(kVendorA),
                               .device_id = "devDEVICE1",
                               .session_id = "102SESSION1",
                               .ip = "203.0.113.7",
                               .grant_id = "sgrGRANT1",
                               .case_id = "casCASE1",
                               .resource = "users",
                               .fields = "id,status,profile.login"};
}

// An unauthenticated attempt: no operator, vendor, device or session is known.
SupportActivityRecord MakeUnknownAttempt(const TenantId& tenant, absl::Time published,
                                         const std::string& tag, std::string ip) {
  return SupportActivityRecord{.published = published,
                               .tenant_id = tenant,
                               .tenant_event_uuid = "tenant-" + tag,
                               .provider_event_uuid = "provider-" + tag,
                               .event_type = "support.gate.deny",
                               .outcome = "DENY",
                               .reason = "token_unknown",
                               .actor_id = "unknown",
                               .by_operator = false,
                               .ip = std::move(ip)};
}

// Inserts the rows in order, in one transaction; returns them with their seq.
std::vector<SupportActivityRecord> InsertActivities(Store& store,
                                                    std::vector<SupportActivityRecord> rows) {
  const absl::Status status = store.Write([&](Transaction& tx) -> absl::Status {
    for (SupportActivityRecord& row : rows) {
      ASSIGN_OR_RETURN(row.seq, tx.Incidents().InsertActivity(row));
    }
    return absl::OkStatus();
  });
  EXPECT_TRUE(Ok(status));
  return rows;
}

absl::StatusOr<std::vector<SupportActivityRecord>> QueryActivity(Store& store,
                                                                 const ActivityQuery& query) {
  return InRead(store, [&](Transaction& tx) { return tx.Incidents().QueryActivity(query); });
}

// The tags (MakeActivity's) of what the query returns, in order; the failure when it fails.
std::vector<std::string> Tags(Store& store, const ActivityQuery& query) {
  absl::StatusOr<std::vector<SupportActivityRecord>> rows = QueryActivity(store, query);
  if (!rows.ok()) return {rows.status().ToString()};
  std::vector<std::string> tags;
  for (const SupportActivityRecord& row : *rows) {
    tags.push_back(row.tenant_event_uuid.substr(std::string_view("tenant-").size()));
  }
  return tags;
}

ActivityQuery Window(absl::Time from, absl::Time to) {
  return ActivityQuery{.from = from, .to = to};
}

TEST_P(StoreConformanceTest, ActivityRoundTripsWithSeqInInsertOrder) {
  SupportActivityRecord unknown = MakeUnknownAttempt(tenant_a(), At(20), "unknown", "198.51.100.1");
  SupportActivityRecord on_behalf = MakeActivity(tenant_b(), At(5), "on-behalf");
  on_behalf.event_type = "user.session.impersonation.grant";
  on_behalf.actor_id = "00TADMINTOKEN1";
  on_behalf.by_operator = false;
  on_behalf.session_id = "";
  on_behalf.resource = "";
  on_behalf.fields = "";
  const std::vector<SupportActivityRecord> rows =
      InsertActivities(store(), {MakeActivity(tenant_a(), At(10), "view"), on_behalf, unknown});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_GT(rows[0].seq, 0);
  EXPECT_LT(rows[0].seq, rows[1].seq);
  EXPECT_LT(rows[1].seq, rows[2].seq);

  absl::StatusOr<std::vector<SupportActivityRecord>> read =
      QueryActivity(store(), Window(At(0), At(100)));
  ASSERT_TRUE(Ok(read));
  EXPECT_THAT(Describe(*read), ElementsAre(Describe(rows[1]), Describe(rows[0]), Describe(rows[2])))
      << "every field round-trips, across tenants, by time";

  // A later transaction's rows come after.
  const std::vector<SupportActivityRecord> later =
      InsertActivities(store(), {MakeActivity(tenant_a(), At(1), "later")});
  EXPECT_GT(later[0].seq, rows[2].seq);

  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Incidents().InsertActivity(
                                    MakeActivity(TenantId("00oNOPE"), At(3), "nope"));
                              }),
                      absl::StatusCode::kNotFound));
  EXPECT_THAT(Tags(store(), Window(At(0), At(100))),
              ElementsAre("later", "on-behalf", "view", "unknown"));
}

TEST_P(StoreConformanceTest, ActivityWindowIncludesFromAndExcludesTo) {
  InsertActivities(store(),
                   {MakeActivity(tenant_a(), At(0), "t0"), MakeActivity(tenant_a(), At(10), "t10"),
                    MakeActivity(tenant_b(), At(20), "t20")});
  const absl::Duration us = absl::Microseconds(1);
  const absl::Duration ns = absl::Nanoseconds(1);
  // The time index, and an operator's index: both keep the same bounds.
  for (const bool filtered : {false, true}) {
    auto tags = [&](absl::Time from, absl::Time to) {
      ActivityQuery query = Window(from, to);
      if (filtered) query.operator_ids = {"00uOPERATOR1"};
      return Tags(store(), query);
    };
    SCOPED_TRACE(filtered ? "by operator" : "by time");
    EXPECT_THAT(tags(At(0), At(20)), ElementsAre("t0", "t10"));
    EXPECT_THAT(tags(At(0) + us, At(20) + us), ElementsAre("t10", "t20"));
    EXPECT_THAT(tags(At(10), At(10)), IsEmpty());
    EXPECT_THAT(tags(At(10) - ns, At(10) + ns), ElementsAre("t10"))
        << "bounds finer than a microsecond";
    EXPECT_THAT(tags(At(10) + ns, At(20)), IsEmpty());
    EXPECT_THAT(tags(absl::InfinitePast(), absl::InfiniteFuture()),
                ElementsAre("t0", "t10", "t20"));
  }
}

TEST_P(StoreConformanceTest, ActivityFiltersAreOredAcrossLists) {
  auto row = [](const TenantId& tenant, absl::Time published, const std::string& tag,
                std::string op, std::string_view vendor, std::string device, std::string session,
                std::string ip) {
    SupportActivityRecord r = MakeActivity(tenant, published, tag);
    r.actor_id = r.operator_id = std::move(op);
    r.vendor_id = std::string(vendor);
    r.device_id = std::move(device);
    r.session_id = std::move(session);
    r.ip = std::move(ip);
    return r;
  };
  SupportActivityRecord on_behalf =
      row(tenant_a(), At(5), "r5", "00uOP2", kVendorA, "devD2", "", "192.0.2.5");
  on_behalf.actor_id = "00TADMINTOKEN1";
  on_behalf.by_operator = false;
  InsertActivities(
      store(),
      {row(tenant_a(), At(1), "r1", "00uOP1", kVendorA, "devD1", "102S1", "203.0.113.1"),
       row(tenant_a(), At(2), "r2", "00uOP2", kVendorA, "devD2", "102S2", "203.0.113.2"),
       row(tenant_b(), At(3), "r3", "00uOP3", kVendorB, "devD3", "102S3", "198.51.100.3"),
       MakeUnknownAttempt(tenant_a(), At(4), "r4", "192.0.2.4"), on_behalf,
       row(tenant_a(), At(500), "late", "00uOP1", kVendorA, "devD1", "102S1", "203.0.113.1")});

  auto tags = [&](ActivityQuery query) {
    query.from = At(0);
    query.to = At(100);
    return Tags(store(), query);
  };
  EXPECT_THAT(tags({.operator_ids = {"00uOP1"}}), ElementsAre("r1")) << "only in the window";
  EXPECT_THAT(tags({.vendor_ids = {std::string(kVendorA)}}), ElementsAre("r1", "r2", "r5"));
  EXPECT_THAT(tags({.device_ids = {"devD3"}}), ElementsAre("r3"));
  EXPECT_THAT(tags({.session_ids = {"102S2"}}), ElementsAre("r2"));
  EXPECT_THAT(tags({.ips = {"192.0.2.4"}}), ElementsAre("r4"));
  EXPECT_THAT(tags({.operator_ids = {"00uOP3", "00uOP1"}}), ElementsAre("r1", "r3"));
  EXPECT_THAT(tags({.operator_ids = {"00uOP1"}, .device_ids = {"devD3"}, .ips = {"192.0.2.4"}}),
              ElementsAre("r1", "r3", "r4"))
      << "any list may match";
  EXPECT_THAT(tags({.operator_ids = {"00uOP2"}, .vendor_ids = {std::string(kVendorA)}}),
              ElementsAre("r1", "r2", "r5"))
      << "a row that matches twice comes once";
  EXPECT_THAT(tags({.session_ids = {"102S1"}, .ips = {"203.0.113.2", "198.51.100.3"}}),
              ElementsAre("r1", "r2", "r3"));
  EXPECT_THAT(tags({}), ElementsAre("r1", "r2", "r3", "r4", "r5")) << "no list: every row";
  EXPECT_THAT(tags({.vendor_ids = {std::string(kVendorA)}, .by_operator_only = true}),
              ElementsAre("r1", "r2"));
  EXPECT_THAT(tags({.by_operator_only = true}), ElementsAre("r1", "r2", "r3"));
  EXPECT_THAT(tags({.operator_ids = {"00uNOBODY"}}), IsEmpty());
  EXPECT_THAT(tags({.operator_ids = {""}}), IsEmpty())
      << "an empty id is no wildcard, and matches no row without an operator";
  EXPECT_THAT(tags({.operator_ids = {""}, .device_ids = {"devD1"}}), ElementsAre("r1"));
  // Ids that need quoting in any list format are ids like the others.
  EXPECT_THAT(tags({.session_ids = {"\"", "\\", "'", std::string("\x01", 1), "102S3"}}),
              ElementsAre("r3"));
}

TEST_P(StoreConformanceTest, ActivityIsOrderedByTimeThenSeqAndPagesAfterSeq) {
  SupportActivityRecord other = MakeActivity(tenant_b(), At(15), "other");
  other.operator_id = "00uOP2";
  other.device_id = "devD2";
  // Inserted out of time order: seq and published disagree.
  const std::vector<SupportActivityRecord> rows = InsertActivities(
      store(), {MakeActivity(tenant_a(), At(30), "p"), MakeActivity(tenant_a(), At(10), "q"),
                MakeActivity(tenant_b(), At(20), "r"), MakeActivity(tenant_a(), At(10), "s"), other,
                MakeActivity(tenant_a(), At(20), "t"), MakeActivity(tenant_b(), At(10), "u")});
  auto seq_of = [&](std::string_view tag) {
    for (const SupportActivityRecord& row : rows) {
      if (row.tenant_event_uuid == fmt::format("tenant-{}", tag)) return row.seq;
    }
    return int64_t{-1};
  };
  for (const bool filtered : {false, true}) {
    SCOPED_TRACE(filtered ? "by operator or device" : "by time");
    ActivityQuery query = Window(At(0), At(100));
    query.limit = 2;
    if (filtered) {
      query.operator_ids = {"00uOPERATOR1"};
      query.device_ids = {"devDEVICE1", "devNONE"};
    }
    std::vector<std::vector<std::string>> pages;
    for (int i = 0; i < 5; ++i) {
      std::vector<std::string> page = Tags(store(), query);
      pages.push_back(page);
      if (page.empty()) break;
      query.after_seq = seq_of(page.back());
      ASSERT_GT(query.after_seq, 0) << page.back();
    }
    if (filtered) {
      EXPECT_THAT(pages, ElementsAre(ElementsAre("q", "s"), ElementsAre("u", "r"),
                                     ElementsAre("t", "p"), IsEmpty()));
    } else {
      EXPECT_THAT(pages, ElementsAre(ElementsAre("q", "s"), ElementsAre("u", "other"),
                                     ElementsAre("r", "t"), ElementsAre("p"), IsEmpty()));
    }
  }

  ActivityQuery bad = Window(At(0), At(100));
  bad.after_seq = rows.back().seq + 1000;
  EXPECT_TRUE(HasCode(QueryActivity(store(), bad), absl::StatusCode::kInvalidArgument));
  bad.after_seq = 0;
  bad.limit = 0;
  EXPECT_TRUE(HasCode(QueryActivity(store(), bad), absl::StatusCode::kInvalidArgument));
}

TEST_P(StoreConformanceTest, ActivityIpsAreListedOncePerWindow) {
  SupportActivityRecord no_ip = MakeActivity(tenant_a(), At(4), "no-ip");
  no_ip.ip = "";
  InsertActivities(store(), {MakeUnknownAttempt(tenant_a(), At(1), "a", "203.0.113.9"),
                             MakeUnknownAttempt(tenant_b(), At(2), "b", "198.51.100.3"),
                             MakeUnknownAttempt(tenant_a(), At(3), "c", "203.0.113.9"), no_ip,
                             MakeUnknownAttempt(tenant_a(), At(5), "d", "2001:db8::1"),
                             MakeUnknownAttempt(tenant_a(), At(500), "e", "192.0.2.1")});
  auto ips = [&](absl::Time from, absl::Time to) {
    return InRead(store(),
                  [&](Transaction& tx) { return tx.Incidents().ListActivityIps(from, to); });
  };
  absl::StatusOr<std::vector<std::string>> listed = ips(At(0), At(100));
  ASSERT_TRUE(Ok(listed));
  EXPECT_THAT(*listed, ElementsAre("198.51.100.3", "2001:db8::1", "203.0.113.9"));
  listed = ips(At(3), At(5));
  ASSERT_TRUE(Ok(listed));
  EXPECT_THAT(*listed, ElementsAre("203.0.113.9")) << "[from, to), and no empty address";
  listed = ips(At(6), At(500));
  ASSERT_TRUE(Ok(listed));
  EXPECT_THAT(*listed, IsEmpty());
}

IncidentRecord MakeIncident(std::string id, absl::Time created) {
  return IncidentRecord{
      .id = std::move(id),
      .title = "Contractor workstation taken over",
      .status = std::string(kIncidentDeclared),
      .indicators_json = R"({"deviceIds":["devDEVICE1"],"ipRanges":["203.0.113.0/24"]})",
      .window_start = created - absl::Hours(120),
      .window_end = created,
      .compromise_start = created - absl::Minutes(25),
      .compromise_end = created,
      .scope_json = "",
      .notes = "reported by the vendor",
      .created = created,
      .updated = created,
      .created_by = "00uRESPONDER1"};
}

TEST_P(StoreConformanceTest, IncidentsRoundTripNewestFirstAndUpdate) {
  const IncidentRecord first = MakeIncident("incFIRST", At(10));
  const IncidentRecord newest = MakeIncident("incNEWEST", At(30));
  const IncidentRecord middle = MakeIncident("incMIDDLE", At(20));
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Incidents().Insert(first));
    RETURN_IF_ERROR(tx.Incidents().Insert(newest));
    return tx.Incidents().Insert(middle);
  })));
  absl::StatusOr<IncidentRecord> read =
      InRead(store(), [&](Transaction& tx) { return tx.Incidents().Get("incFIRST"); });
  ASSERT_TRUE(Ok(read));
  EXPECT_EQ(Describe(*read), Describe(first));
  EXPECT_TRUE(HasCode(InRead(store(), [&](Transaction& tx) { return tx.Incidents().Get("incNO"); }),
                      absl::StatusCode::kNotFound));

  absl::StatusOr<std::vector<IncidentRecord>> listed =
      InRead(store(), [&](Transaction& tx) { return tx.Incidents().List(10); });
  ASSERT_TRUE(Ok(listed));
  EXPECT_THAT(Describe(*listed), ElementsAre(Describe(newest), Describe(middle), Describe(first)));
  listed = InRead(store(), [&](Transaction& tx) { return tx.Incidents().List(2); });
  ASSERT_TRUE(Ok(listed));
  EXPECT_THAT(Describe(*listed), ElementsAre(Describe(newest), Describe(middle)));
  EXPECT_TRUE(HasCode(InRead(store(), [&](Transaction& tx) { return tx.Incidents().List(0); }),
                      absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(
      HasCode(InWrite(store(), [&](Transaction& tx) { return tx.Incidents().Insert(first); }),
              absl::StatusCode::kAlreadyExists));

  IncidentRecord scoped = first;
  scoped.title = "Contractor workstation taken over (confirmed)";
  scoped.status = std::string(kIncidentScoped);
  scoped.indicators_json = R"({"sessionIds":["102SESSION1"]})";
  scoped.window_start = At(1);
  scoped.window_end = At(2);
  scoped.compromise_start = At(3);
  scoped.compromise_end = At(4);
  scoped.scope_json = R"({"potential":366,"confirmed":2})";
  scoped.notes = "";
  scoped.updated = At(40);
  IncidentRecord attempted = scoped;
  attempted.created = At(99);
  attempted.created_by = "00uSOMEONEELSE";
  ASSERT_TRUE(
      Ok(InWrite(store(), [&](Transaction& tx) { return tx.Incidents().Update(attempted); })));
  read = InRead(store(), [&](Transaction& tx) { return tx.Incidents().Get("incFIRST"); });
  ASSERT_TRUE(Ok(read));
  EXPECT_EQ(Describe(*read), Describe(scoped)) << "created and created_by never change";
  EXPECT_TRUE(HasCode(
      InWrite(store(),
              [&](Transaction& tx) { return tx.Incidents().Update(MakeIncident("incNO", At(0))); }),
      absl::StatusCode::kNotFound));
}

SecurityContactRecord MakeContact(const TenantId& tenant, std::string id, std::string_view type) {
  SecurityContactRecord contact{.id = std::move(id),
                                .tenant_id = tenant,
                                .type = std::string(type),
                                .name = "Security team",
                                .created = At(7)};
  if (type == kContactWebhook) {
    contact.address = "https://hooks.example.com/custos";
    contact.sealed_secret = std::string("\x00\x01\xfe\xff sealed", 11);
  } else {
    contact.address = "security@example.com";
  }
  return contact;
}

TEST_P(StoreConformanceTest, SecurityContactsStayInTheirTenant) {
  const SecurityContactRecord hook = MakeContact(tenant_a(), "sctHOOK", kContactWebhook);
  const SecurityContactRecord mail = MakeContact(tenant_a(), "sctAMAIL", kContactEmail);
  SecurityContactRecord in_b = MakeContact(tenant_b(), "sctHOOK", kContactEmail);
  in_b.address = "soc@globex.example";
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Incidents().InsertContact(hook));
    RETURN_IF_ERROR(tx.Incidents().InsertContact(mail));
    return tx.Incidents().InsertContact(in_b);
  })));
  auto list = [&](const TenantId& tenant) {
    return InRead(store(), [&](Transaction& tx) { return tx.Incidents().ListContacts(tenant); });
  };
  absl::StatusOr<std::vector<SecurityContactRecord>> listed = list(tenant_a());
  ASSERT_TRUE(Ok(listed));
  EXPECT_THAT(Describe(*listed), ElementsAre(Describe(mail), Describe(hook)));
  absl::StatusOr<SecurityContactRecord> got = InRead(
      store(), [&](Transaction& tx) { return tx.Incidents().GetContact(tenant_b(), "sctHOOK"); });
  ASSERT_TRUE(Ok(got));
  EXPECT_EQ(Describe(*got), Describe(in_b));
  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.Incidents().GetContact(tenant_b(), "sctAMAIL"); }),
      absl::StatusCode::kNotFound));

  EXPECT_TRUE(
      HasCode(InWrite(store(), [&](Transaction& tx) { return tx.Incidents().InsertContact(mail); }),
              absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Incidents().InsertContact(
                                    MakeContact(TenantId("00oNOPE"), "sctX", kContactEmail));
                              }),
                      absl::StatusCode::kNotFound));

  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Incidents().DeleteContact(tenant_b(), "sctAMAIL");
                              }),
                      absl::StatusCode::kNotFound));
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) {
    return tx.Incidents().DeleteContact(tenant_a(), "sctHOOK");
  })));
  listed = list(tenant_a());
  ASSERT_TRUE(Ok(listed));
  EXPECT_THAT(Describe(*listed), ElementsAre(Describe(mail)));
  listed = list(tenant_b());
  ASSERT_TRUE(Ok(listed));
  EXPECT_THAT(Describe(*listed), ElementsAre(Describe(in_b))) << "the same id in B stays";
  EXPECT_TRUE(HasCode(
      InWrite(store(),
              [&](Transaction& tx) { return tx.Incidents().DeleteContact(tenant_a(), "sctHOOK"); }),
      absl::StatusCode::kNotFound));
  listed = list(TenantId("00oTENANTCCCCCCCCCC"));
  ASSERT_TRUE(Ok(listed));
  EXPECT_THAT(*listed, IsEmpty());
}

NotificationRecord MakeNotification(const TenantId& tenant, std::string id, std::string incident_id,
                                    absl::Time created) {
  return NotificationRecord{.id = std::move(id),
                            .incident_id = std::move(incident_id),
                            .tenant_id = tenant,
                            .contact_id = "sctHOOK",
                            .channel = std::string(kContactWebhook),
                            .payload_json = R"({"type":"security.incident.notify"})",
                            .status = std::string(kNotificationPending),
                            .attempts = 0,
                            .next_attempt = created,
                            .last_error = "",
                            .created = created};
}

absl::Status InsertIncidents(Store& store) {
  return store.Write([&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Incidents().Insert(MakeIncident("inc1", At(0))));
    return tx.Incidents().Insert(MakeIncident("inc2", At(1)));
  });
}

TEST_P(StoreConformanceTest, NotificationsRoundTripUpdateAndStayInTheirTenant) {
  ASSERT_TRUE(Ok(InsertIncidents(store())));
  const NotificationRecord a1 = MakeNotification(tenant_a(), "ntfA1", "inc1", At(2));
  const NotificationRecord b1 = MakeNotification(tenant_b(), "ntfB1", "inc1", At(1));
  const NotificationRecord a2 = MakeNotification(tenant_a(), "ntfA2", "inc2", At(3));
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(
        tx.Incidents().InsertContact(MakeContact(tenant_a(), "sctHOOK", kContactWebhook)));
    RETURN_IF_ERROR(tx.Incidents().InsertNotification(a1));
    RETURN_IF_ERROR(tx.Incidents().InsertNotification(b1));
    return tx.Incidents().InsertNotification(a2);
  })));
  auto of_incident = [&](std::string_view id) {
    return InRead(store(), [&](Transaction& tx) { return tx.Incidents().ListNotifications(id); });
  };
  auto of_tenant = [&](const TenantId& tenant) {
    return InRead(store(), [&](Transaction& tx) {
      return tx.Incidents().ListNotificationsForTenant(tenant);
    });
  };
  absl::StatusOr<std::vector<NotificationRecord>> listed = of_incident("inc1");
  ASSERT_TRUE(Ok(listed));
  EXPECT_THAT(Describe(*listed), ElementsAre(Describe(b1), Describe(a1)));
  listed = of_tenant(tenant_a());
  ASSERT_TRUE(Ok(listed));
  EXPECT_THAT(Describe(*listed), ElementsAre(Describe(a1), Describe(a2)));
  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.Incidents().GetNotification(tenant_b(), "ntfA1"); }),
      absl::StatusCode::kNotFound));

  EXPECT_TRUE(HasCode(
      InWrite(store(), [&](Transaction& tx) { return tx.Incidents().InsertNotification(a1); }),
      absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Incidents().InsertNotification(
                                    MakeNotification(tenant_a(), "ntfX", "incNONE", At(4)));
                              }),
                      absl::StatusCode::kNotFound))
      << "an unknown incident";
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Incidents().InsertNotification(
                                    MakeNotification(TenantId("00oNOPE"), "ntfX", "inc1", At(4)));
                              }),
                      absl::StatusCode::kNotFound))
      << "an unknown tenant";

  NotificationRecord delivered = a1;
  delivered.status = std::string(kNotificationDelivered);
  delivered.attempts = 2;
  delivered.next_attempt = At(9);
  delivered.lease_until = At(10);
  delivered.last_error = "HTTP 503 on the first attempt";
  delivered.delivered = At(8);
  delivered.acknowledged = At(11);
  delivered.acknowledged_by = "00TACMEADMIN1";
  NotificationRecord attempted = delivered;
  attempted.payload_json = R"({"changed":true})";
  attempted.channel = std::string(kContactEmail);
  attempted.contact_id = "sctOTHER";
  attempted.created = At(99);
  ASSERT_TRUE(Ok(InWrite(
      store(), [&](Transaction& tx) { return tx.Incidents().UpdateNotification(attempted); })));
  absl::StatusOr<NotificationRecord> got = InRead(store(), [&](Transaction& tx) {
    return tx.Incidents().GetNotification(tenant_a(), "ntfA1");
  });
  ASSERT_TRUE(Ok(got));
  EXPECT_EQ(Describe(*got), Describe(delivered)) << "what was sent and to whom never changes";
  NotificationRecord in_wrong_tenant = delivered;
  in_wrong_tenant.tenant_id = tenant_b();
  EXPECT_TRUE(HasCode(
      InWrite(store(),
              [&](Transaction& tx) { return tx.Incidents().UpdateNotification(in_wrong_tenant); }),
      absl::StatusCode::kNotFound));

  // Deleting the contact keeps the delivery history.
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) {
    return tx.Incidents().DeleteContact(tenant_a(), "sctHOOK");
  })));
  listed = of_tenant(tenant_a());
  ASSERT_TRUE(Ok(listed));
  EXPECT_THAT(Describe(*listed), ElementsAre(Describe(delivered), Describe(a2)));
}

TEST_P(StoreConformanceTest, LeaseDueSkipsLeasedRowsUntilTheLeaseLapses) {
  ASSERT_TRUE(Ok(InsertIncidents(store())));
  auto pending = [&](const TenantId& tenant, std::string id, absl::Time next) {
    NotificationRecord n = MakeNotification(tenant, std::move(id), "inc1", At(0));
    n.next_attempt = next;
    return n;
  };
  NotificationRecord delivered = pending(tenant_a(), "ntfDELIVERED", At(0));
  delivered.status = std::string(kNotificationDelivered);
  delivered.delivered = At(1);
  NotificationRecord failed = pending(tenant_b(), "ntfFAILED", At(0));
  failed.status = std::string(kNotificationFailed);
  NotificationRecord leased = pending(tenant_a(), "ntfLEASED", At(10));
  leased.lease_until = At(130);
  NotificationRecord lapsed = pending(tenant_b(), "ntfLAPSED", At(20));
  lapsed.lease_until = At(90);
  const std::vector<NotificationRecord> rows = {pending(tenant_a(), "ntfDUE1", At(50)),
                                                pending(tenant_b(), "ntfDUE2", At(100)),
                                                pending(tenant_a(), "ntfLATER", At(101)),
                                                delivered,
                                                failed,
                                                leased,
                                                lapsed};
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    for (const NotificationRecord& n : rows) RETURN_IF_ERROR(tx.Incidents().InsertNotification(n));
    return absl::OkStatus();
  })));
  auto lease = [&](absl::Time now, absl::Time until, int limit) -> std::vector<std::string> {
    absl::StatusOr<std::vector<NotificationRecord>> leased_rows = InWrite(
        store(), [&](Transaction& tx) { return tx.Incidents().LeaseDue(now, until, limit); });
    if (!leased_rows.ok()) return {leased_rows.status().ToString()};
    std::vector<std::string> ids;
    for (const NotificationRecord& n : *leased_rows) {
      EXPECT_EQ(n.lease_until, until) << n.id;
      ids.push_back(n.id);
    }
    return ids;
  };

  auto any_due = [&](absl::Time now) {
    absl::StatusOr<bool> due =
        InRead(store(), [&](Transaction& tx) { return tx.Incidents().AnyDue(now); });
    return due.ok() ? (*due ? "due" : "none") : due.status().ToString();
  };
  EXPECT_EQ(any_due(At(49)), "none") << "the rows due by then are still leased";
  EXPECT_EQ(any_due(At(50)), "due") << "ntfDUE1, asked in a Read";
  EXPECT_THAT(lease(At(100), At(130), 10), ElementsAre("ntfLAPSED", "ntfDUE1", "ntfDUE2"))
      << "pending, due (next_attempt <= now) and not leased, by next_attempt";
  EXPECT_EQ(any_due(At(100)), "none") << "every due row is leased";
  EXPECT_EQ(any_due(At(101)), "due") << "ntfLATER";
  absl::StatusOr<NotificationRecord> got = InRead(store(), [&](Transaction& tx) {
    return tx.Incidents().GetNotification(tenant_a(), "ntfDUE1");
  });
  ASSERT_TRUE(Ok(got));
  NotificationRecord expected = rows[0];
  expected.lease_until = At(130);
  EXPECT_EQ(Describe(*got), Describe(expected)) << "the lease is stored, nothing else changes";

  EXPECT_THAT(lease(At(100), At(130), 10), IsEmpty()) << "a leased row is not handed out again";
  EXPECT_THAT(lease(At(130), At(200), 10), ElementsAre("ntfLATER"))
      << "a lease still holds at its lease_until";
  EXPECT_THAT(lease(At(130) + absl::Microseconds(1), At(300), 2),
              ElementsAre("ntfLEASED", "ntfLAPSED"))
      << "lapsed leases, up to the limit";
  EXPECT_THAT(lease(At(130) + absl::Microseconds(1), At(300), 10),
              ElementsAre("ntfDUE1", "ntfDUE2"));

  // The worker gives the row back (a failed attempt): due again at its next_attempt.
  NotificationRecord retry = expected;
  retry.attempts = 1;
  retry.next_attempt = At(140);
  retry.lease_until.reset();
  retry.last_error = "connection refused";
  ASSERT_TRUE(Ok(
      InWrite(store(), [&](Transaction& tx) { return tx.Incidents().UpdateNotification(retry); })));
  EXPECT_THAT(lease(At(139), At(400), 10), IsEmpty());
  EXPECT_THAT(lease(At(140), At(400), 10), ElementsAre("ntfDUE1"));

  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.Incidents().LeaseDue(At(1000), At(2000), 10); }),
      absl::StatusCode::kFailedPrecondition))
      << "even when rows are due: a lease must be written";
  EXPECT_TRUE(HasCode(
      InWrite(store(),
              [&](Transaction& tx) { return tx.Incidents().LeaseDue(At(1000), At(2000), 0); }),
      absl::StatusCode::kInvalidArgument));
}

StatusNoticeRecord MakeNotice(std::string id, std::string_view kind, absl::Time published) {
  return StatusNoticeRecord{.id = std::move(id),
                            .kind = std::string(kind),
                            .title = "Support access incident",
                            .body = "A contractor's workstation reached two tenants.",
                            .incident_id = kind == kNoticeSecurity ? "inc1" : "",
                            .published = published,
                            .updated = published};
}

TEST_P(StoreConformanceTest, StatusNoticesNewestFirstAndUpdated) {
  const StatusNoticeRecord first = MakeNotice("stnFIRST", kNoticeSecurity, At(10));
  const StatusNoticeRecord newest = MakeNotice("stnNEWEST", kNoticeAvailability, At(30));
  const StatusNoticeRecord middle = MakeNotice("stnMIDDLE", kNoticeAvailability, At(20));
  ASSERT_TRUE(Ok(InWrite(store(), [&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Incidents().InsertNotice(first));
    RETURN_IF_ERROR(tx.Incidents().InsertNotice(newest));
    return tx.Incidents().InsertNotice(middle);
  })));
  auto list = [&](int limit) {
    return InRead(store(), [&](Transaction& tx) { return tx.Incidents().ListNotices(limit); });
  };
  absl::StatusOr<std::vector<StatusNoticeRecord>> listed = list(10);
  ASSERT_TRUE(Ok(listed));
  EXPECT_THAT(Describe(*listed), ElementsAre(Describe(newest), Describe(middle), Describe(first)));
  listed = list(1);
  ASSERT_TRUE(Ok(listed));
  EXPECT_THAT(Describe(*listed), ElementsAre(Describe(newest)));
  EXPECT_TRUE(HasCode(list(0), absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(
      HasCode(InWrite(store(), [&](Transaction& tx) { return tx.Incidents().InsertNotice(first); }),
              absl::StatusCode::kAlreadyExists));

  StatusNoticeRecord resolved = first;
  resolved.kind = std::string(kNoticeAvailability);
  resolved.title = "Resolved: support access incident";
  resolved.body = "Both affected customers were notified.";
  resolved.incident_id = "inc2";
  resolved.updated = At(40);
  StatusNoticeRecord attempted = resolved;
  attempted.published = At(50);
  ASSERT_TRUE(Ok(
      InWrite(store(), [&](Transaction& tx) { return tx.Incidents().UpdateNotice(attempted); })));
  listed = list(10);
  ASSERT_TRUE(Ok(listed));
  EXPECT_THAT(Describe(*listed),
              ElementsAre(Describe(newest), Describe(middle), Describe(resolved)))
      << "published never changes";
  EXPECT_TRUE(HasCode(InWrite(store(),
                              [&](Transaction& tx) {
                                return tx.Incidents().UpdateNotice(
                                    MakeNotice("stnNONE", kNoticeSecurity, At(0)));
                              }),
                      absl::StatusCode::kNotFound));
}

TEST_P(StoreConformanceTest, IncidentWritesInAReadAreRefused) {
  EXPECT_TRUE(HasCode(InRead(store(),
                             [&](Transaction& tx) {
                               return tx.Incidents().InsertActivity(
                                   MakeActivity(tenant_a(), At(1), "read"));
                             }),
                      absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(HasCode(InRead(store(),
                             [&](Transaction& tx) {
                               return tx.Incidents().Insert(MakeIncident("incREAD", At(1)));
                             }),
                      absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(HasCode(InRead(store(),
                             [&](Transaction& tx) {
                               return tx.Incidents().InsertContact(
                                   MakeContact(tenant_a(), "sctREAD", kContactEmail));
                             }),
                      absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(HasCode(InRead(store(),
                             [&](Transaction& tx) {
                               return tx.Incidents().InsertNotice(
                                   MakeNotice("stnREAD", kNoticeSecurity, At(1)));
                             }),
                      absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Tags(store(), Window(absl::InfinitePast(), absl::InfiniteFuture())), IsEmpty());
}

// Transactions

TEST_P(StoreConformanceTest, FailedCallbackRollsBackEverything) {
  absl::StatusOr<int64_t> before = InWrite(store(), [&](Transaction& tx) {
    return tx.Events().Append(MakeEvent(tenant_a(), "before", At(0)));
  });
  ASSERT_TRUE(Ok(before));

  const absl::Status refused = absl::PermissionDeniedError("policy says no");
  const absl::Status status = store().Write([&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Users().Insert(MakeUser(tenant_a(), "00uADA", "ada@example.com")));
    RETURN_IF_ERROR(tx.Groups().Insert(MakeGroup(tenant_a(), "00gENG", "engineering")));
    RETURN_IF_ERROR(tx.Groups().AddMember(tenant_a(), GroupId("00gENG"), UserId("00uADA")));
    RETURN_IF_ERROR(tx.Events().Append(MakeEvent(tenant_a(), "rolled-back", At(1))).status());
    RETURN_IF_ERROR(tx.Tenants().Insert(
        {.id = TenantId("00oROLLEDBACK"), .name = "rolled-back", .created = At(0)}));
    return refused;
  });
  EXPECT_EQ(status, refused) << "Write returns the callback's status unchanged";

  ASSERT_TRUE(Ok(store().Read([&](Transaction& tx) -> absl::Status {
    EXPECT_EQ(tx.Users().Count(tenant_a()).value_or(-1), 0);
    EXPECT_TRUE(
        HasCode(tx.Groups().Get(tenant_a(), GroupId("00gENG")), absl::StatusCode::kNotFound));
    EXPECT_TRUE(HasCode(tx.Tenants().GetByName("rolled-back"), absl::StatusCode::kNotFound));
    EXPECT_THAT(Uuids(tx.Events().Query(tenant_a(), EventQuery{})), ElementsAre("before"));
    return absl::OkStatus();
  })));

  absl::StatusOr<int64_t> after = InWrite(store(), [&](Transaction& tx) {
    return tx.Events().Append(MakeEvent(tenant_a(), "after", At(2)));
  });
  ASSERT_TRUE(Ok(after));
  EXPECT_GT(*after, *before);
}

TEST_P(StoreConformanceTest, RepositoryErrorInCallbackRollsBackEarlierWrites) {
  ASSERT_TRUE(Ok(InsertUsers(store(), {MakeUser(tenant_a(), "00uADA", "ada@example.com")})));
  const absl::Status status =
      InsertUsers(store(), {MakeUser(tenant_a(), "00uBOB", "bob@example.com"),
                            MakeUser(tenant_a(), "00uADA2", "ADA@example.com")});
  EXPECT_TRUE(HasCode(status, absl::StatusCode::kAlreadyExists));
  EXPECT_TRUE(
      HasCode(InRead(store(),
                     [&](Transaction& tx) { return tx.Users().Get(tenant_a(), UserId("00uBOB")); }),
              absl::StatusCode::kNotFound))
      << "the insert before the clash was rolled back";
}

TEST_P(StoreConformanceTest, ReadTransactionCannotWrite) {
  const absl::Status status = store().Read([&](Transaction& tx) {
    return tx.Users().Insert(MakeUser(tenant_a(), "00uADA", "ada@example.com"));
  });
  EXPECT_FALSE(status.ok());
  absl::StatusOr<int64_t> count =
      InRead(store(), [&](Transaction& tx) { return tx.Users().Count(tenant_a()); });
  ASSERT_TRUE(Ok(count));
  EXPECT_EQ(*count, 0);
}

TEST_P(StoreConformanceTest, NestedTransactionIsRefusedNotDeadlocked) {
  absl::Status inner_write;
  absl::Status inner_read;
  ASSERT_TRUE(Ok(store().Write([&](Transaction&) {
    inner_write = store().Write([](Transaction&) { return absl::OkStatus(); });
    inner_read = store().Read([](Transaction&) { return absl::OkStatus(); });
    return absl::OkStatus();
  })));
  EXPECT_TRUE(HasCode(inner_write, absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(HasCode(inner_read, absl::StatusCode::kFailedPrecondition));
  ASSERT_TRUE(Ok(store().Read([&](Transaction&) {
    inner_read = store().Read([](Transaction&) { return absl::OkStatus(); });
    return absl::OkStatus();
  })));
  EXPECT_TRUE(HasCode(inner_read, absl::StatusCode::kFailedPrecondition));
}

constexpr absl::Duration kThreadWait = absl::Seconds(20);

TEST_P(StoreConformanceTest, ReadSeesOneSnapshotWhileAWriteCommits) {
  ASSERT_TRUE(Ok(InsertUsers(store(), {MakeUser(tenant_a(), "00u1", "one@example.com")})));
  absl::Notification first_read_done;
  absl::Notification write_committed;
  absl::Status read_status;
  int64_t count_before = -1;
  int64_t count_after = -1;
  {
    std::jthread reader([&] {
      read_status = store().Read([&](Transaction& tx) -> absl::Status {
        ASSIGN_OR_RETURN(count_before, tx.Users().Count(tenant_a()));
        first_read_done.Notify();
        if (!write_committed.WaitForNotificationWithTimeout(kThreadWait)) {
          return absl::DeadlineExceededError("the write did not commit");
        }
        ASSIGN_OR_RETURN(count_after, tx.Users().Count(tenant_a()));
        return absl::OkStatus();
      });
      if (!first_read_done.HasBeenNotified()) first_read_done.Notify();
    });
    ASSERT_TRUE(first_read_done.WaitForNotificationWithTimeout(kThreadWait));
    const absl::Status write =
        InsertUsers(store(), {MakeUser(tenant_a(), "00u2", "two@example.com")});
    write_committed.Notify();
    EXPECT_TRUE(Ok(write)) << "a write commits while a read is open";
  }
  ASSERT_TRUE(Ok(read_status));
  EXPECT_EQ(count_before, 1);
  EXPECT_EQ(count_after, 1) << "the read kept its snapshot";
  absl::StatusOr<int64_t> now =
      InRead(store(), [&](Transaction& tx) { return tx.Users().Count(tenant_a()); });
  ASSERT_TRUE(Ok(now));
  EXPECT_EQ(*now, 2);
}

TEST_P(StoreConformanceTest, ReadersAreNotBlockedByAnOpenWrite) {
  absl::Notification write_started;
  absl::Notification readers_done;
  absl::Status write_status;
  std::jthread writer([&] {
    write_status = store().Write([&](Transaction& tx) -> absl::Status {
      RETURN_IF_ERROR(tx.Users().Insert(MakeUser(tenant_a(), "00u1", "one@example.com")));
      write_started.Notify();
      if (!readers_done.WaitForNotificationWithTimeout(kThreadWait)) {
        return absl::DeadlineExceededError("the readers were blocked by the write");
      }
      return absl::OkStatus();
    });
    if (!write_started.HasBeenNotified()) write_started.Notify();
  });
  ASSERT_TRUE(write_started.WaitForNotificationWithTimeout(kThreadWait));

  constexpr int kReaders = 6;
  std::vector<absl::StatusOr<int64_t>> counts(kReaders, absl::InternalError("not run"));
  {
    std::vector<std::jthread> readers;
    for (int i = 0; i < kReaders; ++i) {
      readers.emplace_back([&, i] {
        counts[i] = InRead(store(), [&](Transaction& tx) { return tx.Users().Count(tenant_a()); });
      });
    }
  }
  readers_done.Notify();
  writer.join();
  ASSERT_TRUE(Ok(write_status));
  for (const absl::StatusOr<int64_t>& count : counts) {
    ASSERT_TRUE(Ok(count));
    EXPECT_EQ(*count, 0) << "uncommitted rows are invisible";
  }
}

TEST_P(StoreConformanceTest, ConcurrentWritesAreSerialised) {
  constexpr int kThreads = 4;
  constexpr int kWritesPerThread = 10;
  std::vector<absl::Status> statuses(kThreads);
  {
    std::vector<std::jthread> writers;
    for (int t = 0; t < kThreads; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; i < kWritesPerThread && statuses[t].ok(); ++i) {
          const std::string id = fmt::format("00u{}x{:02}", t, i);
          statuses[t] = store().Write([&](Transaction& tx) -> absl::Status {
            ASSIGN_OR_RETURN(const int64_t count, tx.Users().Count(tenant_a()));
            RETURN_IF_ERROR(tx.Users().Insert(MakeUser(tenant_a(), id, id + "@example.com")));
            // The count read at the start still holds: no other write interleaved.
            ASSIGN_OR_RETURN(const int64_t after, tx.Users().Count(tenant_a()));
            if (after != count + 1) return absl::InternalError("writes interleaved");
            return tx.Events().Append(MakeEvent(tenant_a(), id, At(i))).status();
          });
        }
      });
    }
  }
  for (const absl::Status& status : statuses) EXPECT_TRUE(Ok(status));
  absl::StatusOr<std::vector<EventRecord>> events = InRead(store(), [&](Transaction& tx) {
    return tx.Events().Query(tenant_a(), EventQuery{.limit = 1000});
  });
  ASSERT_TRUE(Ok(events));
  ASSERT_EQ(events->size(), static_cast<size_t>(kThreads * kWritesPerThread));
  for (size_t i = 1; i < events->size(); ++i) EXPECT_GT((*events)[i].seq, (*events)[i - 1].seq);
  absl::StatusOr<int64_t> count =
      InRead(store(), [&](Transaction& tx) { return tx.Users().Count(tenant_a()); });
  ASSERT_TRUE(Ok(count));
  EXPECT_EQ(*count, kThreads * kWritesPerThread);
}

// Observer, Ping, Close

class RecordingObserver final : public StoreObserver {
 public:
  void OnTransaction(std::string_view kind, absl::Duration elapsed, bool ok) override {
    absl::MutexLock lock(&mu_);
    seen_.push_back(fmt::format("{}:{}", kind, ok ? "ok" : "failed"));
    if (elapsed < absl::ZeroDuration()) seen_.push_back("negative latency");
  }
  std::vector<std::string> seen() const {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> seen_ ABSL_GUARDED_BY(mu_);
};

TEST_P(StoreConformanceTest, ObserverSeesEachTransaction) {
  RecordingObserver observer;
  store().SetObserver(&observer);
  EXPECT_TRUE(Ok(store().Write([](Transaction&) { return absl::OkStatus(); })));
  EXPECT_FALSE(store().Write([](Transaction&) { return absl::AbortedError("no"); }).ok());
  EXPECT_TRUE(Ok(store().Read([](Transaction&) { return absl::OkStatus(); })));
  store().SetObserver(nullptr);
  EXPECT_TRUE(Ok(store().Read([](Transaction&) { return absl::OkStatus(); })));
  EXPECT_THAT(observer.seen(), ElementsAre("write:ok", "write:failed", "read:ok"));
}

TEST_P(StoreConformanceTest, CloseRefusesLaterCalls) {
  EXPECT_TRUE(Ok(store().Ping()));
  store().Close();
  EXPECT_TRUE(HasCode(store().Write([](Transaction&) { return absl::OkStatus(); }),
                      absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(HasCode(store().Read([](Transaction&) { return absl::OkStatus(); }),
                      absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(HasCode(store().Ping(), absl::StatusCode::kFailedPrecondition));
  store().Close();  // a second Close is harmless
}

TEST_P(StoreConformanceTest, CloseWaitsForARunningRead) {
  absl::Notification reading;
  absl::Notification finish;
  std::atomic<bool> closed{false};
  absl::Status read_status;
  std::jthread reader([&] {
    read_status = store().Read([&](Transaction& tx) -> absl::Status {
      reading.Notify();
      finish.WaitForNotificationWithTimeout(kThreadWait);
      return tx.Users().Count(tenant_a()).status();
    });
    if (!reading.HasBeenNotified()) reading.Notify();
  });
  ASSERT_TRUE(reading.WaitForNotificationWithTimeout(kThreadWait));
  std::jthread closer([&] {
    store().Close();
    closed = true;
  });
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(closed) << "Close returned while a read was still running";
  finish.Notify();
  reader.join();
  closer.join();
  EXPECT_TRUE(Ok(read_status)) << "the running read finished normally";
  EXPECT_TRUE(closed);
}

// Shared state (replay keys and rate windows)

// The value, or nullopt after reporting the error.
template <typename T>
std::optional<T> Got(const absl::StatusOr<T>& result) {
  if (!result.ok()) {
    ADD_FAILURE() << result.status();
    return std::nullopt;
  }
  return *result;
}

absl::StatusOr<bool> RememberKey(Store& store, std::string_view scope, std::string_view key,
                                 absl::Time expires, absl::Time now) {
  return InWrite(
      store, [&](Transaction& tx) { return tx.SharedState().Remember(scope, key, expires, now); });
}

// Remember, expecting an answer.
std::optional<bool> IsNew(Store& store, std::string_view scope, std::string_view key,
                          absl::Time expires, absl::Time now) {
  return Got(RememberKey(store, scope, key, expires, now));
}

absl::StatusOr<int64_t> CountIn(Store& store, std::string_view scope, std::string_view key,
                                absl::Time window_start, absl::Time window_end, int64_t increment) {
  return InWrite(store, [&](Transaction& tx) {
    return tx.SharedState().Count(scope, key, window_start, window_end, increment);
  });
}

// Count, expecting an answer.
std::optional<int64_t> Counted(Store& store, std::string_view scope, std::string_view key,
                               absl::Time window_start, absl::Time window_end, int64_t increment) {
  return Got(CountIn(store, scope, key, window_start, window_end, increment));
}

TEST_P(StoreConformanceTest, ReplayKeyIsNewOnlyUntilItExpires) {
  EXPECT_EQ(IsNew(store(), "dpop.support", "jkt:jti-1", At(60), At(0)), true);
  EXPECT_EQ(IsNew(store(), "dpop.support", "jkt:jti-1", At(60), At(59)), false)
      << "a live key is remembered";
  EXPECT_EQ(IsNew(store(), "dpop.support", "jkt:JTI-1", At(60), At(1)), true)
      << "keys compare exactly";
  EXPECT_EQ(IsNew(store(), "dpop.oidc", "jkt:jti-1", At(60), At(1)), true)
      << "each scope has its own keys";

  EXPECT_EQ(IsNew(store(), "dpop.support", "jkt:jti-1", At(120), At(60)), true)
      << "a key that expired at or before now is absent";
  EXPECT_EQ(IsNew(store(), "dpop.support", "jkt:jti-1", At(180), At(119)), false)
      << "and the new expiry replaced the old one";
  EXPECT_EQ(IsNew(store(), "dpop.support", "jkt:jti-1", At(180), At(120)), true);
}

TEST_P(StoreConformanceTest, DeleteExpiredKeysDropsOnlyThoseExpiredByTheBound) {
  ASSERT_EQ(IsNew(store(), "s", "a", At(10), At(0)), true);
  ASSERT_EQ(IsNew(store(), "s", "b", At(20), At(0)), true);
  ASSERT_EQ(IsNew(store(), "s", "c", At(30), At(0)), true);
  EXPECT_EQ(
      Got(InWrite(store(),
                  [&](Transaction& tx) { return tx.SharedState().DeleteExpiredKeys(At(20)); })),
      2);
  // Asked at a time when all three would still be live: only the deleted ones are new again.
  EXPECT_EQ(IsNew(store(), "s", "a", At(10), At(5)), true);
  EXPECT_EQ(IsNew(store(), "s", "b", At(20), At(5)), true);
  EXPECT_EQ(IsNew(store(), "s", "c", At(30), At(5)), false);
}

TEST_P(StoreConformanceTest, RateCountsAddUpPerKeyAndWindow) {
  EXPECT_EQ(Counted(store(), "authn", "198.51.100.7", At(0), At(10), 1), 1);
  EXPECT_EQ(Counted(store(), "authn", "198.51.100.7", At(0), At(10), 1), 2);
  EXPECT_EQ(Counted(store(), "authn", "198.51.100.7", At(0), At(10), 3), 5);
  EXPECT_EQ(Counted(store(), "authn", "198.51.100.7", At(0), At(10), 0), 5) << "0 only reads";
  EXPECT_EQ(Counted(store(), "authn", "198.51.100.8", At(0), At(10), 1), 1);
  EXPECT_EQ(Counted(store(), "refused_auth", "198.51.100.7", At(0), At(10), 1), 1);

  EXPECT_EQ(Counted(store(), "authn", "198.51.100.7", At(10), At(20), 1), 1)
      << "a new window starts from its own increment";
  EXPECT_EQ(Counted(store(), "authn", "198.51.100.7", At(0), At(10), 1), 2)
      << "a late count of an earlier window goes to the later one";
  EXPECT_EQ(Counted(store(), "authn", "198.51.100.7", At(10), At(20), 0), 2);

  EXPECT_TRUE(HasCode(CountIn(store(), "authn", "198.51.100.7", At(10), At(20), -1),
                      absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(HasCode(CountIn(store(), "authn", "198.51.100.7", At(10), At(10), 1),
                      absl::StatusCode::kInvalidArgument));
}

TEST_P(StoreConformanceTest, DeleteEndedWindowsKeepsCurrentCounts) {
  ASSERT_EQ(Counted(store(), "authn", "a", At(0), At(10), 4), 4);
  ASSERT_EQ(Counted(store(), "authn", "b", At(0), At(10), 4), 4);
  ASSERT_EQ(Counted(store(), "authn", "b", At(10), At(20), 3), 3);
  EXPECT_EQ(
      Got(InWrite(store(),
                  [&](Transaction& tx) { return tx.SharedState().DeleteEndedWindows(At(10)); })),
      1);
  // Read back in the windows first counted: a's row is gone, b's later window stays.
  EXPECT_EQ(Counted(store(), "authn", "a", At(0), At(10), 0), 0);
  EXPECT_EQ(Counted(store(), "authn", "b", At(0), At(10), 0), 3);
}

TEST_P(StoreConformanceTest, SharedStateWritesInAReadAreRefused) {
  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.SharedState().Remember("s", "k", At(10), At(0)); }),
      absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(HasCode(
      InRead(store(),
             [&](Transaction& tx) { return tx.SharedState().Count("s", "k", At(0), At(10), 1); }),
      absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(IsNew(store(), "s", "k", At(10), At(0)), true) << "the read left nothing";
}

TEST_P(StoreConformanceTest, ConcurrentRemembersOfOneKeySucceedOnce) {
  constexpr int kThreads = 4;
  constexpr int kRoundsPerThread = 10;
  std::atomic<int> firsts{0};
  std::atomic<int> failures{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < kRoundsPerThread; ++i) {
          absl::StatusOr<bool> first =
              RememberKey(store(), "dpop.support", fmt::format("jti-{}", i), At(60), At(0));
          if (!first.ok()) ++failures;
          if (first.value_or(false)) ++firsts;
          if (!CountIn(store(), "authn", "203.0.113.9", At(0), At(10), 1).ok()) ++failures;
        }
      });
    }
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(firsts.load(), kRoundsPerThread) << "each key is new exactly once";
  EXPECT_EQ(Counted(store(), "authn", "203.0.113.9", At(0), At(10), 0),
            kThreads * kRoundsPerThread);
}

// ---------------------------------------------------------------------------------------------
// Leader leases

TEST_P(StoreConformanceTest, ALeaseIsExclusiveUntilItIsDestroyed) {
  absl::StatusOr<std::unique_ptr<LeaderLease>> first = store().TryLead("log-sequencer");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_NE(*first, nullptr);
  EXPECT_TRUE((*first)->Held());

  absl::StatusOr<std::unique_ptr<LeaderLease>> second = store().TryLead("log-sequencer");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, nullptr) << "two holders of one name";
  EXPECT_TRUE((*first)->Held()) << "a refused TryLead leaves the holder alone";

  absl::StatusOr<std::unique_ptr<LeaderLease>> other = store().TryLead("other-job");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_NE(*other, nullptr) << "different names do not clash";

  first->reset();
  absl::StatusOr<std::unique_ptr<LeaderLease>> third = store().TryLead("log-sequencer");
  ASSERT_TRUE(third.ok()) << third.status();
  ASSERT_NE(*third, nullptr) << "destroying the lease frees the name";
  EXPECT_TRUE((*third)->Held());
}

TEST_P(StoreConformanceTest, ALeaseHasAPlainName) {
  for (const std::string& name :
       {std::string(""), std::string("Log"), std::string("a b"), std::string("../x"),
        std::string("a.lock"), std::string("a\0b", 3)}) {
    EXPECT_TRUE(HasCode(store().TryLead(name).status(), absl::StatusCode::kInvalidArgument))
        << "'" << name << "'";
  }
  EXPECT_TRUE(
      HasCode(store().TryLead(std::string(65, 'a')).status(), absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(store().TryLead(std::string(64, 'a')).ok());
}

TEST_P(StoreConformanceTest, ALeaseOutlivesItsStoreAndAClosedStoreGivesNone) {
  absl::StatusOr<std::unique_ptr<LeaderLease>> lease = store().TryLead("log-sequencer");
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_NE(*lease, nullptr);
  store().Close();
  EXPECT_TRUE(
      HasCode(store().TryLead("other-job").status(), absl::StatusCode::kFailedPrecondition));
  lease->reset();  // after Close: must not touch the store
}

}  // namespace
}  // namespace custos::store::conformance
