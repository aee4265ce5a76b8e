#include "incident/replay.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <tuple>
#include <utility>

#include <fmt/format.h>

#include "authn/sign_in.h"
#include "authn/totp_factor.h"
#include "common/errors.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "crypto/totp.h"
#include "directory/directory.h"
#include "directory/tenants.h"
#include "support/access_gate.h"
#include "support/anomaly.h"
#include "support/device_key.h"
#include "support/dpop.h"
#include "support/jwk.h"
#include "support/plane.h"
#include "support/redaction.h"

namespace custos::incident {
namespace {

namespace sp = ::custos::support;

// ---- Names ----

constexpr std::string_view kCompanyWords[] = {
    "Alder",     "Amber",       "Apex",     "Arbor",     "Aster",     "Atlas",      "Beacon",
    "Birch",     "Bluewater",   "Brighton", "Brook",     "Canyon",    "Cedar",      "Cobalt",
    "Copper",    "Coral",       "Crescent", "Crystal",   "Delta",     "Elm",        "Ember",
    "Evergreen", "Falcon",      "Fern",     "Golden",    "Granite",   "Harbor",     "Hawthorn",
    "Highland",  "Horizon",     "Indigo",   "Ironwood",  "Juniper",   "Keystone",   "Lakeside",
    "Laurel",    "Lighthouse",  "Lumen",    "Maple",     "Meadow",    "Meridian",   "Northwind",
    "Oakridge",  "Orchid",      "Pacific",  "Pinecrest", "Prairie",   "Quartz",     "Redwood",
    "Ridgeline", "Riverside",   "Saffron",  "Sage",      "Sequoia",   "Silverline", "Sierra",
    "Spruce",    "Stonebridge", "Summit",   "Sunrise",   "Tidewater", "Timber",     "Trident",
    "Vantage",   "Willow",      "Zenith"};
constexpr std::string_view kIndustries[] = {
    "Analytics", "Bank",      "Biotech",  "Capital", "Clinics", "Logistics", "Foods",    "Freight",
    "Health",    "Insurance", "Labs",     "Legal",   "Media",   "Motors",    "Energy",   "Pharma",
    "Retail",    "Robotics",  "Software", "Systems", "Telecom", "Travel",    "Ventures", "Works",
    "Airlines",  "Dental",    "Hotels",   "Mining",  "Realty",  "Press",     "Credit",   "Marine"};
constexpr std::string_view kFirstNames[] = {
    "Ana",   "Bruno",  "Carla",  "Diego",  "Elena", "Felipe",  "Gabriela", "Hugo",
    "Irene", "Jorge",  "Karina", "Luis",   "Maria", "Nicolas", "Olga",     "Pablo",
    "Rosa",  "Sergio", "Teresa", "Victor", "Aisha", "Ben",     "Chloe",    "David",
    "Emma",  "Farid",  "Grace",  "Hannah", "Ian",   "Julia",   "Kenji",    "Leah",
    "Mateo", "Nora",   "Omar",   "Priya",  "Quinn", "Ravi",    "Sofia",    "Tom"};
constexpr std::string_view kLastNames[] = {
    "Vargas",   "Mora",      "Jimenez", "Rojas",  "Solano",  "Castro",   "Araya",    "Chaves",
    "Quesada",  "Salas",     "Herrera", "Brenes", "Campos",  "Alfaro",   "Madrigal", "Ulate",
    "Smith",    "Chen",      "Okafor",  "Novak",  "Schmidt", "Tanaka",   "Rossi",    "Dubois",
    "Kowalski", "Larsen",    "Murphy",  "Nguyen", "Patel",   "Silva",    "Cohen",    "Haddad",
    "Ivanova",  "Johansson", "Khan",    "Lopez",  "Meyer",   "Nakamura", "Olsen",    "Park"};
constexpr std::string_view kGroups[] = {"Engineering", "Finance", "Sales",     "Support",
                                        "Operations",  "People",  "Marketing", "Legal"};
constexpr std::string_view kReadSubjects[] = {
    "Users cannot sign in after the weekend", "SSO to the expense app fails",
    "A user is missing from a group",         "Why is this user locked out?",
    "Question about group memberships",       "New hire cannot see the HR app",
    "Sign-in is slow for remote staff",       "Audit question about a user's status",
    "Users see an error on the sign-in page", "Deactivated user still appears in app"};
constexpr std::string_view kPasswordSubjects[] = {"User locked out, asks for a password reset",
                                                  "Password reset link expired"};
constexpr std::string_view kMfaSubjects[] = {"User lost their phone, needs an MFA reset",
                                             "Authenticator app does not accept codes"};
constexpr std::string_view kProviderSubjects[] = {"Follow-up on a spike of sign-in errors",
                                                  "Proactive check after a configuration alert",
                                                  "Review of a failed directory sync"};

constexpr std::string_view kVendorName = "Harbourline Support";
constexpr std::string_view kVendorEntity = "Harbourline Support S.A.";
constexpr std::string_view kVendorDomain = "harbourline.example";
constexpr std::string_view kStaffVendorName = "Custos Support";
constexpr std::string_view kStaffVendorEntity = "Custos Inc.";
constexpr std::string_view kStaffDomain = "custos.example";
constexpr std::string_view kAttackerIp = "203.0.113.77";
constexpr std::string_view kAttackerRange = "203.0.113.0/24";
constexpr std::string_view kUserAgent = "custos-device/1.0 (Windows 10)";
constexpr absl::Duration kCompromiseLength = absl::Minutes(25);

std::string Slug(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == ' ') {
      out.push_back('-');
    } else {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  return out;
}

// ---- The plan's randomness ----

// mt19937_64 with our own reductions (the standard distributions differ between libraries), so
// a seed gives the same plan everywhere.
class PlanRandom {
 public:
  explicit PlanRandom(uint64_t seed) : rng_(seed) {}
  // Uniform in [lo, hi].
  int64_t Uniform(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(rng_() % static_cast<uint64_t>(hi - lo + 1));
  }
  double Unit() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }
  bool Chance(double p) { return Unit() < p; }
  // A duration uniform between lo and hi minutes, to the second.
  absl::Duration Minutes(int lo, int hi) { return absl::Seconds(Uniform(lo * 60, hi * 60)); }
  template <typename T, size_t N>
  std::string Pick(const T (&items)[N]) {
    return std::string(items[Uniform(0, N - 1)]);
  }
  // An index drawn with the cumulative weights `cumulative` (ascending, last = total).
  int Weighted(const std::vector<double>& cumulative) {
    const double x = Unit() * cumulative.back();
    return static_cast<int>(std::upper_bound(cumulative.begin(), cumulative.end(), x) -
                            cumulative.begin());
  }
  template <typename T>
  void Shuffle(std::vector<T>& items) {
    for (size_t i = items.size(); i > 1; --i) {
      std::swap(items[i - 1], items[static_cast<size_t>(Uniform(0, static_cast<int64_t>(i) - 1))]);
    }
  }

 private:
  std::mt19937_64 rng_;
};

// A grant the plan gave an operator, to know what the gate will answer later.
struct PlannedGrant {
  int tenant;
  std::vector<std::string> scope;
  absl::Time expires;
  absl::Time closed = absl::InfiniteFuture();

  bool LiveAt(absl::Time t) const { return t < expires && t < closed; }
  bool Has(std::string_view need) const {
    return std::find(scope.begin(), scope.end(), need) != scope.end();
  }
};

// How one case of the plan goes, when not left to chance.
struct CaseOptions {
  bool close_soon = false;  // the tenant closes it right after the work
  bool keep_open = false;   // nobody closes it
  std::optional<std::vector<std::string>> scope;
  std::optional<absl::Duration> duration;
};

class Planner {
 public:
  Planner(const ReplayOptions& options, ReplayPlan& plan)
      : options_(options), plan_(plan), rng_(options.seed) {}

  void Make() {
    MakeTenants();
    EnsureTwoApprovalTenants();
    MakeOperators();
    plan_.window = {options_.start, options_.start + absl::Hours(24) * options_.days};
    plan_.attacker_ip = std::string(kAttackerIp);
    plan_.attacker_range = std::string(kAttackerRange);
    plan_.vendor_name = std::string(kVendorName);
    plan_.staff_vendor_name = std::string(kStaffVendorName);
    plan_.compromised = static_cast<int>(rng_.Uniform(0, options_.engineers - 1));
    grants_.resize(plan_.operators.size());
    for (int day = 0; day < options_.days; ++day) {
      for (int op = 0; op < static_cast<int>(plan_.operators.size()); ++op) PlanDay(op, day);
    }
    std::stable_sort(plan_.steps.begin(), plan_.steps.end(),
                     [](const PlannedStep& a, const PlannedStep& b) { return a.at < b.at; });
  }

 private:
  PlannedUser MakeUser(std::string_view domain, std::set<std::string>& logins) {
    PlannedUser user{rng_.Pick(kFirstNames), rng_.Pick(kLastNames), ""};
    const std::string base = Slug(user.first_name) + "." + Slug(user.last_name);
    user.login = fmt::format("{}@{}", base, domain);
    for (int n = 2; !logins.insert(user.login).second; ++n) {
      user.login = fmt::format("{}{}@{}", base, n, domain);
    }
    return user;
  }

  void MakeTenants() {
    std::vector<std::string> companies;
    for (std::string_view word : kCompanyWords) {
      for (std::string_view industry : kIndustries) {
        companies.push_back(fmt::format("{} {}", word, industry));
      }
    }
    rng_.Shuffle(companies);
    std::vector<int> ranks(static_cast<size_t>(options_.tenants));
    for (int i = 0; i < options_.tenants; ++i) ranks[static_cast<size_t>(i)] = i;
    rng_.Shuffle(ranks);
    double total = 0;
    for (int i = 0; i < options_.tenants; ++i) {
      PlannedTenant tenant;
      tenant.company = companies[static_cast<size_t>(i)];
      tenant.name = Slug(tenant.company);
      // 100.64.0.0/10: the customers' admins, away from every operator and the attacker.
      tenant.admin_ip = fmt::format("100.64.{}.{}", i / 250, 1 + i % 250);
      const double p = rng_.Unit();
      tenant.policy = std::string(p < 0.03   ? store::kSupportPolicyBlocked
                                  : p < 0.15 ? store::kSupportPolicyAutoApproveRead
                                             : store::kSupportPolicyApprovalRequired);
      const std::string domain = tenant.name + ".example";
      std::set<std::string> logins;
      const int users = static_cast<int>(rng_.Uniform(4, 6));  // the admin and 3 to 5 more
      for (int u = 0; u < users; ++u) tenant.users.push_back(MakeUser(domain, logins));
      plan_.tenants.push_back(std::move(tenant));
      // Some customers open far more tickets than others: a Zipf-like weight by a random rank,
      // so that a week of work reaches most tenants but not all.
      total += 1.0 / std::pow(ranks[static_cast<size_t>(i)] + 10.0, 0.9);
      cumulative_.push_back(total);
    }
  }

  // The takeover needs two tenants that wait for their admin's approval.
  void EnsureTwoApprovalTenants() {
    int approval = 0;
    for (const PlannedTenant& t : plan_.tenants) {
      approval += t.policy == store::kSupportPolicyApprovalRequired;
    }
    for (PlannedTenant& t : plan_.tenants) {
      if (approval >= 2) break;
      if (t.policy != store::kSupportPolicyApprovalRequired) {
        t.policy = std::string(store::kSupportPolicyApprovalRequired);
        ++approval;
      }
    }
  }

  void MakeOperators() {
    std::set<std::string> logins;
    const int count = options_.engineers + options_.staff;
    for (int i = 0; i < count; ++i) {
      const bool contractor = i < options_.engineers;
      PlannedUser user = MakeUser(contractor ? kVendorDomain : kStaffDomain, logins);
      PlannedOperator op{.login = user.login,
                         .first_name = user.first_name,
                         .last_name = user.last_name,
                         .contractor = contractor,
                         .device_name = contractor ? fmt::format("hl-ws-{:03}", i + 1)
                                                   : fmt::format("custos-mbp-{:02}", i + 1),
                         // 198.18.0.0/15: the office networks (RFC 2544 benchmarking space).
                         .ip = fmt::format("198.18.{}.{}", i / 200, 20 + i % 200)};
      plan_.operators.push_back(std::move(op));
    }
  }

  PlannedStep& Add(absl::Time at, StepKind kind, int op, int tenant, int case_index) {
    PlannedStep step;
    step.at = at;
    step.kind = kind;
    step.op = op;
    step.tenant = tenant;
    step.case_index = case_index;
    step.ip = op >= 0 ? plan_.operators[static_cast<size_t>(op)].ip
                      : plan_.tenants[static_cast<size_t>(tenant)].admin_ip;
    plan_.steps.push_back(std::move(step));
    return plan_.steps.back();
  }

  bool HadGrant(int op, int tenant) const {
    for (const PlannedGrant& g : grants_[static_cast<size_t>(op)]) {
      if (g.tenant == tenant) return true;
    }
    return false;
  }
  bool LiveGrantWith(int op, int tenant, absl::Time at, std::string_view need) const {
    for (const PlannedGrant& g : grants_[static_cast<size_t>(op)]) {
      if (g.tenant == tenant && g.LiveAt(at) && g.Has(need)) return true;
    }
    return false;
  }

  int PickTenant(std::optional<std::string_view> policy, const std::set<int>& avoid = {}) {
    for (;;) {
      const int t = rng_.Weighted(cumulative_);
      if (avoid.contains(t)) continue;
      if (!policy.has_value() || plan_.tenants[static_cast<size_t>(t)].policy == *policy) return t;
    }
  }

  // A user of the tenant that no support reset has touched yet (not the admin); -1 when none.
  int FreshUser(int tenant) {
    const PlannedTenant& t = plan_.tenants[static_cast<size_t>(tenant)];
    std::vector<int> fresh;
    for (int u = 1; u < static_cast<int>(t.users.size()); ++u) {
      if (!reset_users_.contains({tenant, u})) fresh.push_back(u);
    }
    if (fresh.empty()) return -1;
    return fresh[static_cast<size_t>(rng_.Uniform(0, static_cast<int64_t>(fresh.size()) - 1))];
  }

  int AnyUser(int tenant) {
    return static_cast<int>(rng_.Uniform(
        0, static_cast<int64_t>(plan_.tenants[static_cast<size_t>(tenant)].users.size()) - 1));
  }

  // The operator's redacted views from `t` on; returns the time of the last.
  absl::Time PlanViews(int op, int tenant, int case_index, absl::Time t, int count) {
    for (int i = 0; i < count; ++i) {
      PlannedStep& step = Add(t, StepKind::kView, op, tenant, case_index);
      const int64_t kind = i == 0 ? rng_.Uniform(0, 1) * 3 : rng_.Uniform(0, 3);
      step.view = static_cast<ViewKind>(kind);
      if (step.view == ViewKind::kUser || step.view == ViewKind::kUserFactors) {
        step.user = AnyUser(tenant);
      }
      if (i + 1 < count) t += rng_.Minutes(2, 9);
    }
    return t;
  }

  // One support case of `op` in `tenant` beginning at `t`; returns the time of the operator's
  // last step in it (the next case begins after).
  absl::Time PlanCase(int op, int tenant, absl::Time t, const CaseOptions& options = {}) {
    const PlannedTenant& tn = plan_.tenants[static_cast<size_t>(tenant)];
    const int case_index = static_cast<int>(plan_.cases.size());
    PlannedCase c;
    c.tenant = tenant;
    c.op = op;
    const bool blocked = tn.policy == store::kSupportPolicyBlocked;
    c.opened_by_tenant = !blocked && rng_.Chance(0.8);
    if (options.scope.has_value()) {
      c.scope = *options.scope;
    } else {
      const double s = rng_.Unit();
      c.scope = {std::string(sp::kScopeRead)};
      if (s >= 0.8) {
        c.scope.push_back(std::string(s < 0.93 ? sp::kActionPasswordReset : sp::kActionMfaReset));
      }
    }
    c.duration = options.duration.value_or(absl::Hours(rng_.Chance(0.5) ? 2 : 4));
    if (!c.opened_by_tenant) {
      c.subject = rng_.Pick(kProviderSubjects);
      c.justification = std::string(sp::kJustificationProviderReview);
    } else {
      c.subject = c.scope.size() == 1                      ? rng_.Pick(kReadSubjects)
                  : c.scope[1] == sp::kActionPasswordReset ? rng_.Pick(kPasswordSubjects)
                                                           : rng_.Pick(kMfaSubjects);
      c.justification = std::string(sp::kJustificationCustomerInitiated);
    }
    plan_.cases.push_back(c);

    if (blocked) {
      // A provider-initiated review in a tenant that does not let support in: refused.
      Add(t, StepKind::kOperatorOpensCase, op, tenant, case_index).refusal = "policy_blocked";
      return t;
    }
    if (c.opened_by_tenant) {
      Add(t - rng_.Minutes(10, 180), StepKind::kTenantOpensCase, -1, tenant, case_index);
    } else {
      Add(t, StepKind::kOperatorOpensCase, op, tenant, case_index);
      t += rng_.Minutes(1, 2);
    }
    const absl::Time asked = t;
    Add(asked, StepKind::kRequestAccess, op, tenant, case_index);
    const bool automatic = tn.policy == store::kSupportPolicyAutoApproveRead &&
                           c.scope.size() == 1 && c.opened_by_tenant;
    absl::Time last = asked;
    if (!automatic && !HadGrant(op, tenant) && rng_.Chance(0.12)) {
      // Too quick: a look before the tenant's admin has approved.
      last = asked + rng_.Minutes(1, 2);
      Add(last, StepKind::kView, op, tenant, case_index).refusal = "no_grant";
    }
    absl::Time approved = asked;
    if (!automatic) {
      approved = asked + rng_.Minutes(4, 35);
      if (!options.keep_open && rng_.Chance(0.04)) {
        Add(approved, StepKind::kDeny, -1, tenant, case_index);
        return last;
      }
      Add(approved, StepKind::kApprove, -1, tenant, case_index);
    }
    PlannedGrant grant{tenant, c.scope, approved + c.duration};
    last = PlanViews(op, tenant, case_index, approved + rng_.Minutes(1, 4),
                     static_cast<int>(rng_.Uniform(2, 5)));
    if (c.scope.size() > 1) {
      // A reset the case needs: asked for, confirmed by the tenant's admin, done.
      const int user = FreshUser(tenant);
      if (user >= 0) {
        reset_users_.insert({tenant, user});
        absl::Time at = last + rng_.Minutes(1, 4);
        PlannedStep& ask = Add(at, StepKind::kGuardedAction, op, tenant, case_index);
        ask.action = c.scope[1];
        ask.user = user;
        ask.refusal = "confirmation_required";
        at += rng_.Minutes(2, 10);
        Add(at, StepKind::kConfirm, -1, tenant, case_index);
        at += rng_.Minutes(1, 3);
        PlannedStep& run = Add(at, StepKind::kGuardedAction, op, tenant, case_index);
        run.action = c.scope[1];
        run.user = user;
        last = at;
      }
    } else if (rng_.Chance(0.06) && !LiveGrantWith(op, tenant, last, sp::kActionPasswordReset)) {
      // A reset the grant does not allow.
      last += rng_.Minutes(1, 3);
      PlannedStep& step = Add(last, StepKind::kGuardedAction, op, tenant, case_index);
      step.action = std::string(sp::kActionPasswordReset);
      step.user = AnyUser(tenant);
      step.refusal = "scope_missing";
    }
    if (!options.keep_open && (options.close_soon || rng_.Chance(0.75))) {
      const absl::Time closed =
          last + (options.close_soon ? rng_.Minutes(2, 8) : rng_.Minutes(5, 60));
      Add(closed, StepKind::kCloseCase, -1, tenant, case_index);
      grant.closed = closed;
    }
    grants_[static_cast<size_t>(op)].push_back(std::move(grant));
    return last;
  }

  void PlanDay(int op, int day) {
    const PlannedOperator& who = plan_.operators[static_cast<size_t>(op)];
    const bool takeover_day = op == plan_.compromised && day == options_.days - 1;
    const absl::Time begin =
        options_.start + absl::Hours(24) * day + absl::Hours(8) + rng_.Minutes(0, 45);
    // The engineer whose workstation is taken over works the morning only.
    const absl::Time end = begin + (takeover_day     ? rng_.Minutes(180, 240)
                                    : who.contractor ? absl::Minutes(510)
                                                     : absl::Minutes(240));
    Add(begin, StepKind::kSignIn, op, -1, -1);
    absl::Time t = begin + rng_.Minutes(2, 10);
    while (t < end) {
      const int tenant = PickTenant(std::nullopt);
      t = PlanCase(op, tenant, t, {.close_soon = takeover_day}) + rng_.Minutes(10, 40);
    }
    if (takeover_day) PlanTakeover(op, t);
  }

  // The last two cases of the engineer, left open with grants that outlast the day; then the
  // engineer steps away and the attacker takes the workstation over.
  void PlanTakeover(int op, absl::Time t) {
    const std::string_view approval = store::kSupportPolicyApprovalRequired;
    const int first = PickTenant(approval);
    const int second = PickTenant(approval, {first});
    plan_.compromised_tenants = {first, second};
    const std::vector<std::string> reset_scope = {std::string(sp::kScopeRead),
                                                  std::string(sp::kActionPasswordReset)};
    const std::vector<std::string> read_scope = {std::string(sp::kScopeRead)};
    t = PlanCase(op, first, t,
                 {.keep_open = true, .scope = reset_scope, .duration = absl::Hours(8)}) +
        rng_.Minutes(3, 10);
    t = PlanCase(op, second, t,
                 {.keep_open = true, .scope = read_scope, .duration = absl::Hours(8)});
    // The cases closed earlier today are closed by now (close_soon), and yesterday's grants
    // (4 h at most) have expired: the device holds live grants for these two tenants only.
    const absl::Time start = t + rng_.Minutes(20, 40);
    plan_.compromise = {start, start + kCompromiseLength};
    const int first_case = FindCase(op, first);
    const int second_case = FindCase(op, second);
    auto attack = [&](int seconds, StepKind kind, int tenant, int case_index) -> PlannedStep& {
      PlannedStep& step = Add(start + absl::Seconds(seconds), kind,
                              kind == StepKind::kRefuseConfirmation ? -1 : op, tenant, case_index);
      if (step.op >= 0) {
        step.attacker = true;
        step.ip = plan_.attacker_ip;
      }
      return step;
    };
    auto view = [&](int seconds, int tenant, int case_index, ViewKind kind, int user = -1) {
      PlannedStep& step = attack(seconds, StepKind::kView, tenant, case_index);
      step.view = kind;
      step.user = user;
    };
    auto reset = [&](int seconds, int tenant, int case_index, std::string_view action,
                     std::string_view refusal) {
      PlannedStep& step = attack(seconds, StepKind::kGuardedAction, tenant, case_index);
      step.action = std::string(action);
      step.user = 0;  // the tenant's admin
      step.refusal = std::string(refusal);
    };
    attack(30, StepKind::kCheckIn, -1, -1);
    view(120, first, first_case, ViewKind::kUsers);
    view(180, first, first_case, ViewKind::kUser, 0);
    view(270, first, first_case, ViewKind::kUserFactors, 0);
    reset(360, first, first_case, sp::kActionPasswordReset, "confirmation_required");
    reset(450, first, first_case, sp::kActionMfaReset, "scope_missing");
    view(540, second, second_case, ViewKind::kUsers);
    view(630, second, second_case, ViewKind::kGroups);
    view(720, second, second_case, ViewKind::kUser, 0);
    reset(780, second, second_case, sp::kActionPasswordReset, "scope_missing");
    reset(840, second, second_case, sp::kActionMfaReset, "scope_missing");
    attack(960, StepKind::kRefuseConfirmation, first, first_case);
    reset(1080, first, first_case, sp::kActionPasswordReset, "confirmation_denied");
    view(1260, first, first_case, ViewKind::kUsers);
    view(1410, second, second_case, ViewKind::kUserFactors, 0);
  }

  int FindCase(int op, int tenant) const {
    for (int i = static_cast<int>(plan_.cases.size()) - 1; i >= 0; --i) {
      const PlannedCase& c = plan_.cases[static_cast<size_t>(i)];
      if (c.op == op && c.tenant == tenant) return i;
    }
    return -1;
  }

  const ReplayOptions& options_;
  ReplayPlan& plan_;
  PlanRandom rng_;
  std::vector<double> cumulative_;                 // tenant weights, cumulated
  std::vector<std::vector<PlannedGrant>> grants_;  // per operator
  std::set<std::pair<int, int>> reset_users_;      // (tenant, user) reset by support
};

// ---- Running it ----

// A workstation's key, held in memory: Ed25519, so that proofs are cheap and, under a seeded
// random source, reproducible. Signs as support::FileDeviceKey does.
class WorkstationKey final : public sp::DeviceKey {
 public:
  explicit WorkstationKey(crypto::Random& random) : seed_(crypto::ed25519::GenerateSeed(random)) {
    jwk_ = {{"kty", "OKP"},
            {"crv", "Ed25519"},
            {"x", crypto::Base64UrlEncode(*crypto::ed25519::PublicKeyFromSeed(seed_))}};
    jkt_ = sp::Thumbprint(*sp::ParsePublicJwk(jwk_));
  }
  Json PublicJwk() const override { return jwk_; }
  std::string Algorithm() const override { return "EdDSA"; }
  absl::StatusOr<std::string> SignJws(const Json& header, const Json& payload) const override {
    Json protected_header = header;
    protected_header["alg"] = Algorithm();
    const std::string input = crypto::Base64UrlEncode(DumpJson(protected_header)) + "." +
                              crypto::Base64UrlEncode(DumpJson(payload));
    ASSIGN_OR_RETURN(std::string signature, crypto::ed25519::Sign(seed_, input));
    return input + "." + crypto::Base64UrlEncode(signature);
  }
  const std::string& jkt() const { return jkt_; }

 private:
  std::string seed_;
  Json jwk_;
  std::string jkt_;
};

std::string ViewPath(ViewKind kind, const std::string& user_id) {
  switch (kind) {
    case ViewKind::kUsers:
      return "users";
    case ViewKind::kUser:
      return "users/" + user_id;
    case ViewKind::kUserFactors:
      return "users/" + user_id + "/factors";
    case ViewKind::kGroups:
      return "groups";
  }
  return "";
}

std::string_view ActionPath(std::string_view action) {
  return action == sp::kActionMfaReset ? "reset_factors" : "reset_password";
}

// The fields a list of redacted objects showed, in first-seen order (as api/support does).
void AddShown(std::vector<std::string>& shown, const sp::RedactedView& view) {
  for (const std::string& field : view.shown) {
    if (std::find(shown.begin(), shown.end(), field) == shown.end()) shown.push_back(field);
  }
}

}  // namespace

std::string_view StepKindName(StepKind kind) {
  switch (kind) {
    case StepKind::kSignIn:
      return "sign-in";
    case StepKind::kCheckIn:
      return "check-in";
    case StepKind::kTenantOpensCase:
      return "tenant opens case";
    case StepKind::kOperatorOpensCase:
      return "operator opens case";
    case StepKind::kRequestAccess:
      return "access request";
    case StepKind::kApprove:
      return "approval";
    case StepKind::kDeny:
      return "denial";
    case StepKind::kView:
      return "view";
    case StepKind::kGuardedAction:
      return "guarded action";
    case StepKind::kConfirm:
      return "confirmation";
    case StepKind::kRefuseConfirmation:
      return "refused confirmation";
    case StepKind::kCloseCase:
      return "case close";
  }
  return "?";
}

std::vector<int> ReplayPlan::TenantsReached(
    const Window& within, const std::function<bool(const PlannedStep&)>& which) const {
  std::set<int> reached;
  for (const PlannedStep& step : steps) {
    if (step.IsReach() && step.at >= within.start && step.at < within.end && which(step)) {
      reached.insert(step.tenant);
    }
  }
  return {reached.begin(), reached.end()};
}

absl::StatusOr<ReplayPlan> MakeReplayPlan(const ReplayOptions& options) {
  auto out_of_range = [](std::string_view what, int lo, int hi) {
    return absl::InvalidArgumentError(fmt::format("{} must be {}..{}", what, lo, hi));
  };
  if (options.tenants < 2 || options.tenants > 2000) return out_of_range("tenants", 2, 2000);
  if (options.engineers < 1 || options.engineers > 1000) {
    return out_of_range("engineers", 1, 1000);
  }
  if (options.staff < 0 || options.staff > 1000) return out_of_range("staff", 0, 1000);
  if (options.days < 1 || options.days > 30) return out_of_range("days", 1, 30);
  ReplayPlan plan;
  plan.options = options;
  Planner(options, plan).Make();
  return plan;
}

// What the run keeps per operator, tenant and case.
struct Replay::State {
  struct Token {
    std::string token;
    absl::Time expires;
  };
  struct Operator {
    UserId user_id;
    std::string password;
    std::string totp_secret;  // raw bytes
    FactorId factor_id;
    std::unique_ptr<WorkstationKey> key;
    store::DeviceRecord device;
    std::string session;  // today's session token
    Token token;          // the engineer's
    Token attacker;       // the attacker's, on the engineer's session and device
  };
  struct Tenant {
    store::TenantRecord record;
    audit::RequestContext admin;
    std::vector<std::string> user_ids;  // by plan index
  };
  struct Case {
    std::string id;
    std::string request_id;
    std::string confirmation_id;
  };

  State(store::Store& store, const Config& config, FakeClock& clock, crypto::Random& random,
        const crypto::PasswordHasher& hasher, const crypto::Sealer& sealer)
      : config(config),
        tenants_service(store, clock, random),
        directory(store, this->config, clock, random, hasher, sealer),
        sign_in(store, this->config, clock, random, hasher, sealer),
        plane(store, this->config, clock, random),
        dpop(clock, sp::DpopOptions{.max_age = config.dpop_max_age,
                                    .max_clock_skew = config.dpop_max_age}),
        anomalies(sp::AnomalyRules{.max_tenants = config.anomaly_max_tenants,
                                   .window = config.anomaly_window,
                                   .max_refused_actions = config.anomaly_max_refused_actions}),
        gate(store, this->config, clock, random, plane, dpop, anomalies, nullptr) {}

  Config config;
  directory::Tenants tenants_service;
  directory::Directory directory;
  authn::SignIn sign_in;
  sp::SupportPlane plane;
  sp::DpopVerifier dpop;
  sp::AnomalyDetector anomalies;
  sp::AccessGate gate;

  audit::RequestContext provider_admin;
  std::vector<Operator> operators;
  std::vector<Tenant> tenants;
  std::vector<Case> cases;
};

Replay::Replay(store::Store& store, const Config& config, FakeClock& clock, crypto::Random& random,
               const crypto::PasswordHasher& hasher, const crypto::Sealer& sealer, ReplayPlan plan)
    : store_(store),
      config_(config),
      clock_(clock),
      random_(random),
      hasher_(hasher),
      sealer_(sealer),
      plan_(std::move(plan)) {}

Replay::~Replay() = default;

absl::StatusOr<ReplayResult> Replay::Run(const TenantHook& on_tenant, const ProgressFn& progress) {
  const auto started = std::chrono::steady_clock::now();
  auto since_start = [&] { return absl::FromChrono(std::chrono::steady_clock::now() - started); };
  const ReplayOptions& options = plan_.options;
  // The story is one of alerts, not of suspensions: an anomaly rule that suspended an operator
  // would refuse the planned steps that follow.
  Config config = config_;
  config.anomaly_suspend_operator = false;
  State s(store_, config, clock_, random_, hasher_, sealer_);
  const TenantId provider{std::string(store::kProviderLogId)};
  ReplayResult result;
  result.window = plan_.window;
  result.compromise = plan_.compromise;
  ReplayProgress report{.days = options.days, .steps = plan_.steps.size()};
  auto tell = [&] {
    if (!progress) return;
    report.elapsed = since_start();
    progress(report);
  };

  // ---- The week before: the provider's security team, the vendors, operators, devices and
  // the customers' tenants. ----
  clock_.Set(options.start - absl::Hours(24 * 7));
  audit::RequestContext system;
  system.actor = audit::SystemPrincipal();
  system.request_id = "replay-setup";
  system.user_agent = "custos-demo";
  ASSIGN_OR_RETURN(
      directory::IssuedApiToken secops,
      s.tenants_service.CreateApiToken(system, sp::kProviderTenantName, "Security operations"));
  s.provider_admin.actor = {secops.record.id.value(), "ApiToken", secops.record.name,
                            secops.record.name};
  s.provider_admin.request_id = random_.Id("req");
  s.provider_admin.ip_address = "192.0.2.10";
  s.provider_admin.user_agent = "curl/8.5.0";
  ASSIGN_OR_RETURN(store::VendorRecord vendor,
                   s.plane.CreateVendor(s.provider_admin, {std::string(kVendorName),
                                                           std::string(kVendorEntity), "CR"}));
  result.vendor_id = vendor.id;
  if (options.staff > 0) {
    ASSIGN_OR_RETURN(
        store::VendorRecord staff,
        s.plane.CreateVendor(s.provider_admin, {std::string(kStaffVendorName),
                                                std::string(kStaffVendorEntity), "US"}));
    result.staff_vendor_id = staff.id;
  }
  // An active TOTP factor for the user, enrolled by `ctx` as an admin does with the user's
  // authenticator app at hand; its id and raw secret.
  auto enrol_totp =
      [&](const TenantId& tenant, const audit::RequestContext& ctx, const UserId& user,
          std::string_view issuer) -> absl::StatusOr<std::pair<FactorId, std::string>> {
    ASSIGN_OR_RETURN(directory::FactorEnrollment factor,
                     s.directory.EnrollFactor(tenant, ctx, user.value(), authn::kTotpFactorType,
                                              authn::kTotpProvider, issuer));
    std::optional<std::string> secret = crypto::Base32Decode(factor.shared_secret);
    if (!secret.has_value()) return absl::InternalError("the TOTP secret is not base32");
    RETURN_IF_ERROR(s.directory
                        .ActivateFactor(tenant, ctx, user.value(), factor.factor.id.value(),
                                        crypto::TotpCode(*secret, crypto::TotpStep(clock_.Now())))
                        .status());
    return std::make_pair(factor.factor.id, *std::move(secret));
  };
  for (const PlannedOperator& planned : plan_.operators) {
    clock_.Advance(absl::Seconds(20));
    State::Operator op;
    op.password = random_.Token(18);
    const Json profile = {{"login", planned.login},
                          {"email", planned.login},
                          {"firstName", planned.first_name},
                          {"lastName", planned.last_name}};
    ASSIGN_OR_RETURN(store::UserRecord user,
                     s.directory.CreateUser(provider, s.provider_admin, profile, op.password,
                                            /*activate=*/true));
    op.user_id = user.id;
    ASSIGN_OR_RETURN(std::tie(op.factor_id, op.totp_secret),
                     enrol_totp(provider, s.provider_admin, user.id, "Custos"));
    const std::string& vendor_id = planned.contractor ? result.vendor_id : result.staff_vendor_id;
    RETURN_IF_ERROR(s.plane.CreateOperator(s.provider_admin, user.id, vendor_id).status());
    ASSIGN_OR_RETURN(
        sp::IssuedEnrollmentToken enrolment,
        s.plane.CreateEnrollmentToken(s.provider_admin, vendor_id, planned.device_name));
    op.key = std::make_unique<WorkstationKey>(random_);
    audit::RequestContext device_ctx{.actor = {"unknown", "Device", "", ""},
                                     .request_id = random_.Id("req"),
                                     .ip_address = planned.ip,
                                     .user_agent = std::string(kUserAgent),
                                     .url = "/provider/api/v1/devices/enroll"};
    ASSIGN_OR_RETURN(op.device, s.plane.EnrollDevice(device_ctx, enrolment.token,
                                                     op.key->PublicJwk(), op.key->jkt()));
    result.operator_ids.push_back(user.id.value());
    result.device_ids.push_back(op.device.id);
    s.operators.push_back(std::move(op));
  }
  result.compromised_device_id = result.device_ids[static_cast<size_t>(plan_.compromised)];
  for (size_t i = 0; i < plan_.tenants.size(); ++i) {
    const PlannedTenant& planned = plan_.tenants[i];
    clock_.Advance(absl::Seconds(1));
    State::Tenant tenant;
    ASSIGN_OR_RETURN(tenant.record, s.tenants_service.Create(system, planned.name));
    const PlannedUser& admin = planned.users[0];
    ASSIGN_OR_RETURN(
        directory::IssuedApiToken token,
        s.tenants_service.CreateApiToken(
            system, planned.name, fmt::format("{} {} (admin)", admin.first_name, admin.last_name)));
    tenant.admin.actor = {token.record.id.value(), "ApiToken", token.record.name,
                          token.record.name};
    tenant.admin.ip_address = planned.admin_ip;
    tenant.admin.user_agent = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) Safari/605.1.15";
    for (const PlannedUser& u : planned.users) {
      tenant.admin.request_id = random_.Id("req");
      const Json profile = {
          {"login", u.login},
          {"email", u.login},
          {"firstName", u.first_name},
          {"lastName", u.last_name},
          {"mobilePhone", fmt::format("+1 555 01{:02}", random_.Bytes(1)[0] & 63)}};
      // A password nobody keeps makes the user ACTIVE, as people who sign in every day are.
      ASSIGN_OR_RETURN(store::UserRecord user,
                       s.directory.CreateUser(tenant.record.id, tenant.admin, profile,
                                              random_.Token(18), /*activate=*/true));
      tenant.user_ids.push_back(user.id.value());
    }
    // The tenant's admin signs in with a second factor: what support sees of it is redacted.
    RETURN_IF_ERROR(
        enrol_totp(tenant.record.id, tenant.admin, UserId(tenant.user_ids[0]), planned.company)
            .status());
    RETURN_IF_ERROR(s.directory
                        .CreateGroup(tenant.record.id, tenant.admin,
                                     {{"name", std::string(kGroups[i % std::size(kGroups)])},
                                      {"description", planned.company}})
                        .status());
    if (planned.policy != store::kSupportPolicyApprovalRequired) {
      ASSIGN_OR_RETURN(tenant.record,
                       s.plane.SetPolicy(tenant.admin, tenant.record, planned.policy));
    }
    if (on_tenant) RETURN_IF_ERROR(on_tenant(tenant.record, tenant.admin));
    result.tenant_ids.push_back(tenant.record.id.value());
    s.tenants.push_back(std::move(tenant));
    report.tenants_created = static_cast<int>(i + 1);
    if (i % 50 == 49) tell();
  }
  s.cases.resize(plan_.cases.size());
  tell();

  // ---- The working days ----
  const std::string base_url = [&] {
    std::string url = options.base_url;
    while (url.ends_with('/')) url.pop_back();
    return url;
  }();
  std::set<int> reached;
  // The request of one operator step: a token from the (engineer's or attacker's) session on
  // the workstation when the last one is about to expire, a fresh DPoP proof, the gate.
  auto authenticate = [&](const PlannedStep& step, std::string_view method, const std::string& path,
                          std::string_view tenant_name) -> absl::StatusOr<sp::OperatorContext> {
    State::Operator& op = s.operators[static_cast<size_t>(step.op)];
    State::Token& token = step.attacker ? op.attacker : op.token;
    const absl::Time now = clock_.Now();
    if (token.token.empty() || token.expires - now < absl::Minutes(1)) {
      audit::RequestContext ctx{.actor = {"unknown", "User", "", ""},
                                .request_id = random_.Id("req"),
                                .ip_address = step.ip,
                                .user_agent = std::string(kUserAgent),
                                .url = "/provider/oauth2/v1/token"};
      ASSIGN_OR_RETURN(sp::IssuedOperatorToken issued,
                       s.plane.IssueOperatorToken(ctx, op.session, op.key->jkt()));
      token = {issued.token, issued.record.expires};
    }
    sp::GateRequest request;
    request.method = std::string(method);
    request.url = base_url + path;
    request.authorization = "DPoP " + token.token;
    ASSIGN_OR_RETURN(request.dpop,
                     sp::MakeDpopProof(*op.key, method, request.url, token.token, now, random_));
    request.tenant_name = std::string(tenant_name);
    request.context = {.request_id = random_.Id("req"),
                       .ip_address = step.ip,
                       .user_agent = std::string(kUserAgent),
                       .url = path};
    ++result.requests;
    return s.gate.Authenticate(request);
  };
  // Compares what the plane answered with the plan.
  auto expect = [&](size_t index, const PlannedStep& step,
                    const absl::Status& status) -> absl::Status {
    const std::string reason = status.ok() ? "" : ReasonOf(status);
    if (status.ok() == step.refusal.empty() && reason == step.refusal) {
      if (!status.ok()) ++result.refusals;
      return absl::OkStatus();
    }
    return absl::InternalError(fmt::format(
        "replay step {} ({} at {}) was answered {} but the plan says {}", index,
        StepKindName(step.kind), absl::FormatTime(step.at, absl::UTCTimeZone()),
        status.ok() ? "OK" : fmt::format("{} ({})", std::string(status.message()), reason),
        step.refusal.empty() ? "allowed" : step.refusal));
  };

  const sp::Posture posture_base{.os_name = "Windows",
                                 .os_version = "10.0.19045",
                                 .disk_encrypted = true,
                                 .screen_lock = true,
                                 .edr_running = true};
  for (size_t index = 0; index < plan_.steps.size(); ++index) {
    const PlannedStep& step = plan_.steps[index];
    if (step.at > clock_.Now()) clock_.Set(step.at);
    const int day = static_cast<int>((step.at - options.start) / absl::Hours(24)) + 1;
    if (day != report.day) {
      report.day = day;
      tell();
    }
    State::Tenant* tenant =
        step.tenant >= 0 ? &s.tenants[static_cast<size_t>(step.tenant)] : nullptr;
    State::Case* the_case =
        step.case_index >= 0 ? &s.cases[static_cast<size_t>(step.case_index)] : nullptr;
    const PlannedCase* planned_case =
        step.case_index >= 0 ? &plan_.cases[static_cast<size_t>(step.case_index)] : nullptr;
    if (tenant != nullptr) tenant->admin.request_id = random_.Id("req");
    absl::Status answer;
    switch (step.kind) {
      case StepKind::kSignIn: {
        State::Operator& op = s.operators[static_cast<size_t>(step.op)];
        const PlannedOperator& who = plan_.operators[static_cast<size_t>(step.op)];
        // The device's agent reports its posture at boot; then the engineer signs in.
        sp::Posture posture = posture_base;
        posture.last_patch =
            absl::FormatTime("%Y-%m-%d", clock_.Now() - absl::Hours(24 * 6), absl::UTCTimeZone());
        ASSIGN_OR_RETURN(
            std::string report_jws,
            sp::MakePostureReport(*op.key, op.device.id, posture, clock_.Now(), random_));
        audit::RequestContext device_ctx{
            .actor = {"unknown", "Device", "", ""},
            .request_id = random_.Id("req"),
            .ip_address = step.ip,
            .user_agent = std::string(kUserAgent),
            .url = "/provider/api/v1/devices/" + op.device.id + "/posture"};
        ASSIGN_OR_RETURN(op.device, s.plane.ReportPosture(device_ctx, op.device.id, report_jws));
        audit::RequestContext ctx{.request_id = random_.Id("req"),
                                  .ip_address = step.ip,
                                  .user_agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
                                  .url = "/t/provider/api/v1/authn"};
        authn::AuthnAttempt first = s.sign_in.Authenticate(provider, who.login, op.password, ctx);
        RETURN_IF_ERROR(first.result.status());
        if (first.result->status != authn::AuthnStatus::kMfaRequired) {
          return absl::InternalError("an operator signed in without a second factor");
        }
        ctx.url = "/t/provider/api/v1/authn/factors/" + op.factor_id.value() + "/verify";
        authn::AuthnAttempt second = s.sign_in.VerifyFactor(
            provider, first.result->token, op.factor_id,
            crypto::TotpCode(op.totp_secret, crypto::TotpStep(clock_.Now())), ctx);
        RETURN_IF_ERROR(second.result.status());
        op.session = second.result->token;
        op.token = {};
        ++result.sign_ins;
        break;
      }
      case StepKind::kCheckIn: {
        ASSIGN_OR_RETURN(sp::OperatorContext op,
                         authenticate(step, "GET", "/provider/api/v1/support/me", ""));
        RETURN_IF_ERROR(s.gate.RecordAllow(op, "support.me"));
        ASSIGN_OR_RETURN(op, authenticate(step, "GET", "/provider/api/v1/support/grants", ""));
        RETURN_IF_ERROR(s.gate.RecordAllow(op, "support.grants.list"));
        RETURN_IF_ERROR(s.plane.ListGrantsOfOperator(op.op.user_id).status());
        break;
      }
      case StepKind::kTenantOpensCase: {
        ASSIGN_OR_RETURN(
            store::SupportCaseRecord opened,
            s.plane.OpenCase(tenant->admin, nullptr, tenant->record, planned_case->subject));
        the_case->id = opened.id;
        break;
      }
      case StepKind::kOperatorOpensCase: {
        ASSIGN_OR_RETURN(sp::OperatorContext op,
                         authenticate(step, "POST", "/provider/api/v1/support/cases", ""));
        absl::StatusOr<store::SupportCaseRecord> opened =
            s.plane.OpenCase(op.request, &op, tenant->record, planned_case->subject);
        if (opened.ok()) the_case->id = opened->id;
        answer = opened.status();
        break;
      }
      case StepKind::kRequestAccess: {
        ASSIGN_OR_RETURN(
            sp::OperatorContext op,
            authenticate(step, "POST", "/provider/api/v1/support/access_requests", ""));
        ASSIGN_OR_RETURN(sp::AccessRequestInfo info,
                         s.plane.RequestAccess(op, {.tenant_name = tenant->record.name,
                                                    .case_id = the_case->id,
                                                    .justification = planned_case->justification,
                                                    .scope = planned_case->scope,
                                                    .duration = planned_case->duration}));
        the_case->request_id = info.request.id;
        break;
      }
      case StepKind::kApprove:
        answer = s.plane
                     .Approve(tenant->admin, tenant->record, the_case->request_id, std::nullopt,
                              fmt::format("ticket {}", 40000 + step.case_index))
                     .status();
        break;
      case StepKind::kDeny:
        answer =
            s.plane
                .Deny(tenant->admin, tenant->record, the_case->request_id, "we solved it ourselves")
                .status();
        break;
      case StepKind::kView: {
        const std::string user_id =
            step.user >= 0 ? tenant->user_ids[static_cast<size_t>(step.user)] : "";
        const std::string resource = ViewPath(step.view, user_id);
        ASSIGN_OR_RETURN(
            sp::OperatorContext op,
            authenticate(step, "GET",
                         "/provider/api/v1/support/tenants/" + tenant->record.name + "/" + resource,
                         tenant->record.name));
        absl::StatusOr<sp::TenantAccess> access =
            s.gate.AuthorizeTenant(op, tenant->record.name, sp::kScopeRead);
        answer = access.status();
        if (!access.ok()) break;
        // What api/support reads and shows for this resource.
        std::vector<std::string> shown;
        const TenantId& id = access->tenant.id;
        switch (step.view) {
          case ViewKind::kUsers: {
            ASSIGN_OR_RETURN(directory::ListResult<store::UserRecord> users,
                             s.directory.ListUsers(id, directory::ListQuery{}));
            for (const store::UserRecord& u : users.items) {
              AddShown(shown, sp::Redact(directory::UserView(u), sp::kUserFields));
            }
            break;
          }
          case ViewKind::kUser: {
            ASSIGN_OR_RETURN(store::UserRecord user, s.directory.GetUser(id, user_id));
            AddShown(shown, sp::Redact(directory::UserView(user), sp::kUserFields));
            break;
          }
          case ViewKind::kUserFactors: {
            ASSIGN_OR_RETURN(store::UserRecord user, s.directory.GetUser(id, user_id));
            ASSIGN_OR_RETURN(std::vector<store::FactorRecord> factors,
                             s.directory.ListFactors(id, user_id));
            for (const store::FactorRecord& f : factors) {
              AddShown(shown, sp::Redact(directory::FactorView(f, user.login), sp::kFactorFields));
            }
            break;
          }
          case ViewKind::kGroups: {
            ASSIGN_OR_RETURN(directory::ListResult<store::GroupRecord> groups,
                             s.directory.ListGroups(id, directory::ListQuery{}));
            for (const store::GroupRecord& g : groups.items) {
              AddShown(shown, sp::Redact(directory::GroupView(g), sp::kGroupFields));
            }
            break;
          }
        }
        RETURN_IF_ERROR(s.gate.RecordView(op, *access, resource, shown));
        ++result.views;
        break;
      }
      case StepKind::kGuardedAction: {
        const std::string user_id = tenant->user_ids[static_cast<size_t>(step.user)];
        ASSIGN_OR_RETURN(
            sp::OperatorContext op,
            authenticate(step, "POST",
                         fmt::format("/provider/api/v1/support/tenants/{}/users/{}/"
                                     "lifecycle/{}",
                                     tenant->record.name, user_id, ActionPath(step.action)),
                         tenant->record.name));
        sp::ConfirmationRequired pending;
        auto user_exists = [&](const sp::TenantAccess& access) {
          return s.directory.GetUser(access.tenant.id, user_id).status();
        };
        absl::StatusOr<sp::GuardedPermit> permit = s.gate.BeginGuardedAction(
            op, tenant->record.name, step.action, user_id, &pending, user_exists);
        if (!pending.confirmation_id.empty()) the_case->confirmation_id = pending.confirmation_id;
        answer = permit.status();
        if (!permit.ok()) break;
        absl::Status done =
            step.action == sp::kActionMfaReset
                ? s.directory.ResetFactors(permit->access.tenant.id, op.request, user_id)
                : s.directory.ResetPassword(permit->access.tenant.id, op.request, user_id).status();
        RETURN_IF_ERROR(s.gate.FinishGuardedAction(op, *permit, done));
        answer = done;
        break;
      }
      case StepKind::kConfirm:
      case StepKind::kRefuseConfirmation:
        answer = s.plane
                     .DecideConfirmation(tenant->admin, tenant->record, the_case->confirmation_id,
                                         step.kind == StepKind::kConfirm)
                     .status();
        break;
      case StepKind::kCloseCase:
        answer = s.plane.CloseCase(tenant->admin, tenant->record, the_case->id).status();
        break;
    }
    RETURN_IF_ERROR(expect(index, step, answer));
    if (step.IsReach()) reached.insert(step.tenant);
    report.steps_done = index + 1;
    report.tenants_reached = static_cast<int>(reached.size());
    if (index % 200 == 199) tell();
  }
  report.steps_done = plan_.steps.size();
  tell();

  result.security_team = s.provider_admin;
  result.indicators.vendor_ids = {result.vendor_id};
  result.indicators.device_ids = {result.compromised_device_id};
  result.indicators.ip_ranges = {plan_.attacker_range};
  result.elapsed = since_start();
  return result;
}

}  // namespace custos::incident
