#pragma once

// incident::Replay: the January 2022 incident at scale, played through the real support plane
// and access gate of a store, for `custos demo` and for the tests that prove the scoping exact.
//
// The story (ReplayOptions scales it): `tenants` customer tenants (a tenant admin and a few users
// each; support policy approval_required for most, auto_approve_read for some, blocked for a
// few); a contractor vendor whose `engineers` support engineers, and the provider's own `staff`,
// each on an enrolled managed device with a compliant posture, sign in every working morning
// with password and TOTP and work support cases for `days` days: a case (opened by the tenant,
// or by the engineer), an access request, a tenant admin's approval (or the policy's), a few
// redacted views, sometimes a refused attempt (a view before the approval, a reset without the
// scope, a case in a tenant that blocks support), sometimes a password or MFA reset that a
// tenant admin confirms, and the case's close. On the last day one contractor engineer leaves
// two cases open and steps away; their workstation is then taken over for 25 minutes from an
// address never seen before: the attacker uses the engineer's session and device key to reach
// the two tenants the device holds live grants for (redacted views) and tries password and MFA
// resets, which are refused (scope missing, a confirmation asked for and then denied by the
// tenant's admin).
//
// The plan (who does what, where, when, and what the plane must answer) is generated first,
// deterministically from the seed, without touching a store: MakeReplayPlan. A test computes
// the expected scopes from it independently of the store. Run then plays it: every step is a
// call of directory::Tenants / Directory, authn::SignIn, support::SupportPlane or
// support::AccessGate as api/ makes it (DPoP proofs and all), with the clock set to the step's
// time; nothing is inserted into the store behind their backs. Each answer is checked against
// the plan: an allowed step that is refused, or a refusal with another reason than planned,
// stops the run (kInternal, naming the step).
//
// Thread-compatible: one Run at a time. The store and services given must outlive the Replay.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit/event.h"
#include "common/clock.h"
#include "common/config.h"
#include "crypto/password_hasher.h"
#include "crypto/random.h"
#include "crypto/sealer.h"
#include "incident/scope.h"
#include "store/records.h"
#include "store/store.h"

namespace custos::incident {

struct ReplayOptions {
  int tenants = 400;   // 2..5000
  int engineers = 40;  // the contractor's; 1..1000
  int staff = 4;       // the provider's own operators (another vendor); 0..1000
  int days = 5;        // working days, 1..30; the takeover is on the last
  uint64_t seed = 20220121;
  // Midnight (UTC) of the first working day: Monday 17 January 2022.
  absl::Time start = absl::FromUnixSeconds(1642377600);
  // Where the operators' requests go (DPoP proofs name it): the server's public base URL.
  std::string base_url = "http://127.0.0.1:8080";
};

// ---- The plan ----

struct PlannedUser {
  std::string first_name;
  std::string last_name;
  std::string login;  // an e-mail address at the tenant's domain
};

struct PlannedTenant {
  std::string name;                // URL name, e.g. "cobalt-freight"
  std::string company;             // "Cobalt Freight"
  std::string policy;              // store::kSupportPolicy*
  std::vector<PlannedUser> users;  // users[0] is the tenant admin
  std::string admin_ip;            // where the tenant admin works from
};

struct PlannedOperator {
  std::string login;  // e.g. "maria.vargas@harbourline.example"
  std::string first_name;
  std::string last_name;
  bool contractor = true;  // the contractor's engineer; false: the provider's own staff
  std::string device_name;
  std::string ip;  // the office address the operator works from
};

struct PlannedCase {
  int tenant = -1;
  int op = -1;
  bool opened_by_tenant = true;
  std::string subject;
  std::string justification;       // support::kJustification*
  std::vector<std::string> scope;  // support::kScopeRead and actions
  absl::Duration duration;
};

enum class StepKind {
  kSignIn,              // op: password + TOTP, after the device reports its posture
  kCheckIn,             // op: support/me and the operator's grants (read nothing of a tenant)
  kTenantOpensCase,     // the tenant admin opens the case
  kOperatorOpensCase,   // op opens the case (refused in a tenant that blocks support)
  kRequestAccess,       // op asks for the case's scope
  kApprove,             // the tenant admin approves the case's request
  kDeny,                // the tenant admin denies it
  kView,                // op: a redacted view (`view`, `user`)
  kGuardedAction,       // op: `action` on `user`
  kConfirm,             // the tenant admin confirms the case's pending confirmation
  kRefuseConfirmation,  // the tenant admin denies it
  kCloseCase,           // the tenant admin closes the case (its grants end)
};
std::string_view StepKindName(StepKind kind);

enum class ViewKind { kUsers, kUser, kUserFactors, kGroups };

struct PlannedStep {
  absl::Time at;
  StepKind kind = StepKind::kSignIn;
  int op = -1;            // the operator acting; -1 when the tenant admin acts
  bool attacker = false;  // done by the attacker from the taken-over workstation
  int tenant = -1;
  int case_index = -1;
  ViewKind view = ViewKind::kUsers;
  int user = -1;       // kView of one user, kGuardedAction's target: index in the tenant's users
  std::string action;  // kGuardedAction: support::kActionPasswordReset or kActionMfaReset
  std::string ip;      // where the request comes from
  // What the plane must answer: empty when allowed, else the refusal's reason
  // (policy_blocked, no_grant, scope_missing, confirmation_required, confirmation_denied).
  std::string refusal;

  // True when an operator (or the attacker as one) acts on a tenant: a reach in the sense of
  // incident/scope.h.
  bool IsReach() const { return op >= 0 && tenant >= 0; }
};

struct ReplayPlan {
  ReplayOptions options;
  std::vector<PlannedTenant> tenants;
  std::vector<PlannedOperator> operators;  // the contractor's engineers first, then staff
  std::vector<PlannedCase> cases;
  std::vector<PlannedStep> steps;        // by time (stable)
  std::string vendor_name;               // the contractor
  std::string staff_vendor_name;         // the provider itself, as a vendor of its own staff
  int compromised = -1;                  // the operator whose workstation is taken over
  std::vector<int> compromised_tenants;  // the two tenants its device holds live grants for
  std::string attacker_ip;
  std::string attacker_range;  // CIDR holding attacker_ip and no operator's address
  Window window;               // the working days, midnight to midnight
  Window compromise;           // the 25 minutes

  // Tenant indexes (ascending) of the reaches (PlannedStep::IsReach) in [window.start,
  // window.end) whose operator passes `which`.
  std::vector<int> TenantsReached(const Window& window,
                                  const std::function<bool(const PlannedStep&)>& which) const;
};

// The plan of `options`: the same options give the same plan. kInvalidArgument for options out
// of range.
absl::StatusOr<ReplayPlan> MakeReplayPlan(const ReplayOptions& options);

// ---- Running it ----

struct ReplayProgress {
  int day = 0;  // 1..days; 0 while the tenants and operators are set up
  int days = 0;
  size_t steps_done = 0;
  size_t steps = 0;
  int tenants_created = 0;
  int tenants_reached = 0;  // distinct tenants an operator reached so far
  absl::Duration elapsed;   // real time since Run began
};

// What a responder would know afterwards, and the ids the run made.
struct ReplayResult {
  std::string vendor_id;  // the contractor
  std::string staff_vendor_id;
  std::vector<std::string> tenant_ids;    // by plan index
  std::vector<std::string> operator_ids;  // the provider users' ids, by plan index
  std::vector<std::string> device_ids;    // by plan index
  std::string compromised_device_id;
  // The provider's security team (an admin API token of the provider tenant) as a request
  // context, for the incident response that follows.
  audit::RequestContext security_team;
  // The indicators of the incident: the contractor, the taken-over device, the attacker's
  // network.
  Indicators indicators;
  Window window;
  Window compromise;
  // Counts of what happened.
  int sign_ins = 0;
  int requests = 0;  // operator requests through the access gate
  int views = 0;
  int refusals = 0;  // planned refusals, each answered as planned
  absl::Duration elapsed;
};

class Replay {
 public:
  // Called once per tenant right after its admin's API token exists (e.g. to add a security
  // contact); `admin` is that token's request context.
  using TenantHook = std::function<absl::Status(const store::TenantRecord& tenant,
                                                const audit::RequestContext& admin)>;
  // Called every 50 tenants set up, every 200 steps, when a day begins and at the end, from
  // the thread that runs.
  using ProgressFn = std::function<void(const ReplayProgress&)>;

  // `clock` is set to a week before options.start for the setup (tenants, vendors, operators,
  // devices), then to each step's time. `random` makes ids, tokens, secrets, keys and every
  // password (the plan has its own generator). `hasher` hashes the passwords of the operators
  // and of the tenants' users (thousands of them: a caller in a hurry may give light Argon2id
  // settings, since the passwords are random and never shown, and a real sign-in rehashes with
  // the configured ones). `sealer` seals the operators' TOTP seeds. The store must hold the
  // provider tenant (support::EnsureProviderTenant) and no tenant of the plan's names.
  Replay(store::Store& store, const Config& config, FakeClock& clock, crypto::Random& random,
         const crypto::PasswordHasher& hasher, const crypto::Sealer& sealer, ReplayPlan plan);
  ~Replay();

  const ReplayPlan& plan() const { return plan_; }

  // Plays the plan once. Errors: kInternal when the plane answered a step otherwise than
  // planned (naming the step), or what the services returned.
  absl::StatusOr<ReplayResult> Run(const TenantHook& on_tenant = nullptr,
                                   const ProgressFn& progress = nullptr);

 private:
  struct State;

  store::Store& store_;
  const Config& config_;
  FakeClock& clock_;
  crypto::Random& random_;
  const crypto::PasswordHasher& hasher_;
  const crypto::Sealer& sealer_;
  ReplayPlan plan_;
};

}  // namespace custos::incident
