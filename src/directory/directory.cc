#include "directory/directory.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "absl/strings/ascii.h"
#include "audit/filter.h"
#include "authn/totp_factor.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "common/time_format.h"
#include "crypto/hash.h"
#include "directory/user_profile.h"

namespace custos::directory {
namespace {

// How long the record of a user's token revocation is kept: longer than any access token lives
// (oidc/apps.h caps access-token lifetimes at a day).
constexpr absl::Duration kUserRevocationKept = absl::Hours(25);

// Ends every sign-in session of the user and, with them, the user's OpenID Connect tokens:
// refresh tokens of every session, and access tokens issued until now. Suspension,
// deactivation, a password reset or an admin clearing the sessions must not leave an app able to
// act for the user, nor make old tokens live again after an unsuspend. Returns the sessions
// ended.
absl::StatusOr<int> EndSessions(store::Transaction& tx, const TenantId& tenant, const UserId& user,
                                absl::Time now) {
  ASSIGN_OR_RETURN(int sessions, tx.Sessions().DeleteAllForUser(tenant, user));
  RETURN_IF_ERROR(
      tx.Oidc().RevokeTokensOfUser(tenant, user, now, now + kUserRevocationKept).status());
  return sessions;
}

using store::FactorRecord;
using store::GroupRecord;
using store::Transaction;
using store::UserRecord;

constexpr int kScanPage = 200;
constexpr absl::Duration kActivationTokenLifetime = absl::Hours(24 * 7);

Json TimeOrNull(const std::optional<absl::Time>& t) {
  return t ? Json(FormatRfc3339(*t)) : Json(nullptr);
}

std::string ProfileString(const Json& profile, const char* key) {
  auto it = profile.find(key);
  return it != profile.end() && it->is_string() ? it->get<std::string>() : std::string();
}

audit::Principal UserPrincipal(const UserRecord& user) {
  Json profile = Json::parse(user.profile_json, nullptr, false);
  std::string name = ProfileString(profile, "firstName");
  std::string last = ProfileString(profile, "lastName");
  if (!last.empty()) name += (name.empty() ? "" : " ") + last;
  return {user.id.value(), "User", user.login, name};
}

audit::Principal GroupPrincipal(const GroupRecord& group) {
  return {group.id.value(), "UserGroup", group.name, group.name};
}

absl::Status UserNotFound(std::string_view id) {
  return NotFoundError(fmt::format("{} (User)", id));
}

absl::StatusOr<UserRecord> FindUser(Transaction& tx, const TenantId& tenant,
                                    std::string_view id_or_login) {
  if (id_or_login.empty()) return UserNotFound(id_or_login);
  absl::StatusOr<UserRecord> user = tx.Users().Get(tenant, UserId(std::string(id_or_login)));
  if (absl::IsNotFound(user.status())) user = tx.Users().GetByLogin(tenant, id_or_login);
  if (absl::IsNotFound(user.status())) return UserNotFound(id_or_login);
  return user;
}

absl::StatusOr<GroupRecord> FindGroup(Transaction& tx, const TenantId& tenant,
                                      std::string_view id) {
  absl::StatusOr<GroupRecord> group = tx.Groups().Get(tenant, GroupId(std::string(id)));
  if (absl::IsNotFound(group.status())) return NotFoundError(fmt::format("{} (UserGroup)", id));
  return group;
}

absl::StatusOr<FactorRecord> FindFactor(Transaction& tx, const TenantId& tenant, const UserId& user,
                                        std::string_view id) {
  absl::StatusOr<FactorRecord> factor = tx.Factors().Get(tenant, user, FactorId(std::string(id)));
  if (absl::IsNotFound(factor.status())) {
    return NotFoundError(fmt::format("{} (UserFactor)", id));
  }
  return factor;
}

absl::Status LoginTaken() {
  return ValidationError(
      "Api validation failed: login",
      {"login: An object with this field already exists in the current organization"});
}

// A filter/search/q matcher over the API view of a record.
struct Matcher {
  std::optional<audit::Filter> filter;
  std::optional<audit::Filter> search;
  std::string q;  // lower case

  static absl::StatusOr<Matcher> Make(const ListQuery& query) {
    Matcher m;
    if (!query.filter.empty()) {
      absl::StatusOr<audit::Filter> f = audit::ParseFilter(query.filter);
      if (!f.ok()) {
        return ValidationError("Invalid search criteria.", {std::string(f.status().message())});
      }
      m.filter = std::move(*f);
    }
    if (!query.search.empty()) {
      absl::StatusOr<audit::Filter> f = audit::ParseFilter(query.search);
      if (!f.ok()) {
        return ValidationError("Invalid search criteria.",
                               {"search: " + std::string(f.status().message())});
      }
      m.search = std::move(*f);
    }
    m.q = absl::AsciiStrToLower(query.q);
    return m;
  }

  bool Matches(const Json& view, std::initializer_list<const char*> q_fields) const {
    if (filter && !filter->Matches(view)) return false;
    if (search && !search->Matches(view)) return false;
    if (q.empty()) return true;
    const Json& profile = view["profile"];
    for (const char* field : q_fields) {
      std::string value = absl::AsciiStrToLower(ProfileString(profile, field));
      if (value.rfind(q, 0) == 0) return true;
    }
    return false;
  }
};

// Scans records in id order from `after`, keeping those `keep` accepts, until `limit` are
// found; peeks one further match to decide whether a next page exists. At most `budget`
// records are examined per call: past that the page ends early (perhaps empty) with a cursor at
// the last record examined, so a selective filter over a large tenant costs bounded work per
// request and the client still reaches every match by following the next link.
template <typename Record, typename Fetch, typename Keep, typename IdOf>
absl::StatusOr<ListResult<Record>> Scan(const std::string& after, int limit, int budget,
                                        Fetch fetch, Keep keep, IdOf id_of) {
  ListResult<Record> result;
  store::Page page{after, std::min(kScanPage, std::max(1, budget))};
  int examined = 0;
  while (true) {
    ASSIGN_OR_RETURN(std::vector<Record> batch, fetch(page));
    // Taken before the loop moves matching records out of the batch.
    const std::string last_id = batch.empty() ? std::string() : id_of(batch.back());
    for (Record& r : batch) {
      if (!keep(r)) {
        ++examined;
        continue;
      }
      if (static_cast<int>(result.items.size()) == limit) {
        result.next_after = id_of(result.items.back());
        return result;
      }
      ++examined;
      result.items.push_back(std::move(r));
    }
    if (static_cast<int>(batch.size()) < page.limit) return result;
    page.after = last_id;
    if (examined >= budget) {
      result.next_after = page.after;
      return result;
    }
  }
}

}  // namespace

Json UserView(const UserRecord& user) {
  Json profile = Json::parse(user.profile_json, nullptr, false);
  if (profile.is_discarded()) profile = Json::object();
  Json credentials = {{"provider", {{"type", "OKTA"}, {"name", "OKTA"}}}};
  if (!user.password_hash.empty()) credentials["password"] = Json::object();
  return {{"id", user.id.value()},
          {"status", user.status},
          {"created", FormatRfc3339(user.created)},
          {"activated", TimeOrNull(user.activated)},
          {"statusChanged", FormatRfc3339(user.status_changed)},
          {"lastLogin", TimeOrNull(user.last_login)},
          {"lastUpdated", FormatRfc3339(user.last_updated)},
          {"passwordChanged", TimeOrNull(user.password_changed)},
          {"type", {{"id", "oty_default"}}},
          {"profile", profile},
          {"credentials", credentials}};
}

Json GroupView(const GroupRecord& group) {
  return {{"id", group.id.value()},
          {"created", FormatRfc3339(group.created)},
          {"lastUpdated", FormatRfc3339(group.last_updated)},
          {"lastMembershipUpdated", FormatRfc3339(group.last_membership_updated)},
          {"objectClass", {"okta:user_group"}},
          {"type", "OKTA_GROUP"},
          {"profile", {{"name", group.name}, {"description", group.description}}}};
}

Json FactorView(const FactorRecord& factor, std::string_view login) {
  return {{"id", factor.id.value()},
          {"factorType", factor.factor_type},
          {"provider", factor.provider},
          {"vendorName", factor.provider},
          {"status", factor.status},
          {"created", FormatRfc3339(factor.created)},
          {"lastUpdated", FormatRfc3339(factor.last_updated)},
          {"profile", {{"credentialId", std::string(login)}}}};
}

Directory::Directory(store::Store& store, const Config& config, const Clock& clock,
                     crypto::Random& random, const crypto::PasswordHasher& hasher,
                     const crypto::Sealer& sealer)
    : store_(store),
      config_(config),
      clock_(clock),
      random_(random),
      hasher_(hasher),
      sealer_(sealer),
      policy_(config.password_min_length, config.password_max_length) {}

store::EventRecord Directory::Event(const TenantId& tenant, const audit::RequestContext& ctx,
                                    audit::EventSpec spec) const {
  return audit::MakeEvent(tenant, ctx, spec, clock_, random_);
}

// Users

absl::StatusOr<UserRecord> Directory::CreateUser(const TenantId& tenant,
                                                 const audit::RequestContext& ctx,
                                                 const Json& profile,
                                                 const std::optional<std::string>& password,
                                                 bool activate) {
  RETURN_IF_ERROR(ValidateProfile(profile));
  std::string login = profile["login"].get<std::string>();
  std::string hash;
  if (password) {
    RETURN_IF_ERROR(policy_.Check(*password, login));
    ASSIGN_OR_RETURN(hash, hasher_.Hash(*password));  // outside the write lock: it is slow
  }
  absl::Time now = clock_.Now();
  UserRecord user;
  user.id = UserId(random_.Id(kUserIdPrefix));
  user.tenant_id = tenant;
  user.login = login;
  user.profile_json = DumpJson(profile);
  user.password_hash = hash;
  user.created = user.status_changed = user.last_updated = now;
  if (password) user.password_changed = now;
  if (!activate) {
    user.status = std::string(store::kUserStaged);
  } else {
    user.status = std::string(password ? store::kUserActive : store::kUserProvisioned);
    user.activated = now;
  }
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    absl::Status inserted = tx.Users().Insert(user);
    if (absl::IsAlreadyExists(inserted)) return LoginTaken();
    RETURN_IF_ERROR(inserted);
    audit::EventSpec spec{.event_type = "user.lifecycle.create",
                          .display_message = "Create user",
                          .targets = {UserPrincipal(user)}};
    RETURN_IF_ERROR(tx.Events().Append(Event(tenant, ctx, spec)).status());
    if (activate) {
      spec.event_type = "user.lifecycle.activate";
      spec.display_message = "Activate user";
      RETURN_IF_ERROR(tx.Events().Append(Event(tenant, ctx, spec)).status());
    }
    return absl::OkStatus();
  }));
  return user;
}

absl::StatusOr<UserRecord> Directory::GetUser(const TenantId& tenant,
                                              std::string_view id_or_login) {
  return store::ReadResult(store_,
                           [&](Transaction& tx) { return FindUser(tx, tenant, id_or_login); });
}

absl::StatusOr<ListResult<UserRecord>> Directory::ListUsers(const TenantId& tenant,
                                                            const ListQuery& query) {
  ASSIGN_OR_RETURN(Matcher matcher, Matcher::Make(query));
  return store::ReadResult(store_, [&](Transaction& tx) {
    return Scan<UserRecord>(
        query.after, query.limit, query.scan_budget,
        [&](const store::Page& page) { return tx.Users().List(tenant, page); },
        [&](const UserRecord& u) {
          return matcher.Matches(UserView(u), {"login", "email", "firstName", "lastName"});
        },
        [](const UserRecord& u) { return u.id.value(); });
  });
}

absl::StatusOr<UserRecord> Directory::UpdateUser(const TenantId& tenant,
                                                 const audit::RequestContext& ctx,
                                                 std::string_view id_or_login, const Json& profile,
                                                 const std::optional<std::string>& password,
                                                 bool partial) {
  // The new profile of `user`, or an error; used before and again inside the write.
  auto merge = [&](const UserRecord& user) -> absl::StatusOr<Json> {
    if (!partial) {
      RETURN_IF_ERROR(ValidateProfile(profile));
      return profile;
    }
    Json merged = Json::parse(user.profile_json, nullptr, false);
    RETURN_IF_ERROR(MergeProfile(merged, profile));
    return merged;
  };
  // Validation and the slow Argon2id hash run outside the write lock.
  ASSIGN_OR_RETURN(UserRecord current, GetUser(tenant, id_or_login));
  ASSIGN_OR_RETURN(Json preview, merge(current));
  std::string hash;
  if (password) {
    RETURN_IF_ERROR(policy_.Check(*password, preview["login"].get<std::string>()));
    ASSIGN_OR_RETURN(hash, hasher_.Hash(*password));
  }
  UserRecord user;
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(user, FindUser(tx, tenant, current.id.value()));
    if (user.status == store::kUserDeprovisioned) {
      return ApiError(absl::StatusCode::kFailedPrecondition, kErrWrongStatus,
                      "Operation not allowed in the user's current status: DEPROVISIONED");
    }
    // Merged again here so that a concurrent update is never lost.
    ASSIGN_OR_RETURN(Json merged, merge(user));
    absl::Time now = clock_.Now();
    user.login = merged["login"].get<std::string>();
    user.profile_json = DumpJson(merged);
    user.last_updated = now;
    int sessions_ended = 0;
    if (password) {
      // A password set by an administrator ends any pending reset or activation and every
      // session: whoever held the old password or reset link holds nothing now.
      user.password_hash = hash;
      user.password_changed = now;
      user.recovery_token_hash.clear();
      user.recovery_expires.reset();
      user.failed_sign_ins = 0;
      if (user.status == store::kUserRecovery || user.status == store::kUserProvisioned) {
        user.status = std::string(store::kUserActive);
        user.status_changed = now;
        if (!user.activated) user.activated = now;
      }
      ASSIGN_OR_RETURN(sessions_ended, EndSessions(tx, tenant, user.id, clock_.Now()));
    }
    absl::Status updated = tx.Users().Update(user);
    if (absl::IsAlreadyExists(updated)) return LoginTaken();
    RETURN_IF_ERROR(updated);
    audit::EventSpec spec{.event_type = "user.account.update_profile",
                          .display_message = "Update user profile",
                          .targets = {UserPrincipal(user)}};
    RETURN_IF_ERROR(tx.Events().Append(Event(tenant, ctx, spec)).status());
    if (password) {
      spec.event_type = "user.account.update_password";
      spec.display_message = "Update password";
      spec.debug_data = {{"sessionsEnded", std::to_string(sessions_ended)}};
      RETURN_IF_ERROR(tx.Events().Append(Event(tenant, ctx, spec)).status());
    }
    return absl::OkStatus();
  }));
  return user;
}

absl::StatusOr<bool> Directory::DeleteUser(const TenantId& tenant, const audit::RequestContext& ctx,
                                           std::string_view id_or_login) {
  bool deleted = false;
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(UserRecord user, FindUser(tx, tenant, id_or_login));
    absl::Time now = clock_.Now();
    audit::EventSpec spec{.targets = {UserPrincipal(user)}};
    if (user.status != store::kUserDeprovisioned) {
      user.status = std::string(store::kUserDeprovisioned);
      user.status_changed = user.last_updated = now;
      RETURN_IF_ERROR(tx.Users().Update(user));
      RETURN_IF_ERROR(EndSessions(tx, tenant, user.id, clock_.Now()).status());
      spec.event_type = "user.lifecycle.deactivate";
      spec.display_message = "Deactivate user";
      return tx.Events().Append(Event(tenant, ctx, spec)).status();
    }
    RETURN_IF_ERROR(tx.Groups().RemoveUserFromAll(tenant, user.id));
    RETURN_IF_ERROR(tx.Factors().DeleteAllForUser(tenant, user.id).status());
    RETURN_IF_ERROR(EndSessions(tx, tenant, user.id, clock_.Now()).status());
    RETURN_IF_ERROR(tx.Users().Delete(tenant, user.id));
    spec.event_type = "user.lifecycle.delete.completed";
    spec.display_message = "Delete user";
    deleted = true;
    return tx.Events().Append(Event(tenant, ctx, spec)).status();
  }));
  return deleted;
}

absl::Status Directory::Transition(const TenantId& tenant, const audit::RequestContext& ctx,
                                   std::string_view id, std::string_view event_type,
                                   std::string_view display,
                                   std::vector<std::string_view> allowed_from, Refusal refusal,
                                   Change change) {
  absl::Status refused;
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(UserRecord user, FindUser(tx, tenant, id));
    audit::EventSpec spec{.event_type = std::string(event_type),
                          .display_message = std::string(display),
                          .targets = {UserPrincipal(user)}};
    if (std::find(allowed_from.begin(), allowed_from.end(), user.status) == allowed_from.end()) {
      spec.outcome = std::string(audit::kFailure);
      spec.reason = fmt::format("User status is {}", user.status);
      refused = refusal(user);
      return tx.Events().Append(Event(tenant, ctx, spec)).status();
    }
    absl::Time now = clock_.Now();
    user.status_changed = user.last_updated = now;
    RETURN_IF_ERROR(change(tx, user, now));
    RETURN_IF_ERROR(tx.Users().Update(user));
    return tx.Events().Append(Event(tenant, ctx, spec)).status();
  }));
  return refused;
}

absl::Status Directory::Transition(const TenantId& tenant, const audit::RequestContext& ctx,
                                   std::string_view id, std::string_view event_type,
                                   std::string_view display,
                                   std::vector<std::string_view> allowed_from, std::string_view to,
                                   absl::Status refusal) {
  return Transition(
      tenant, ctx, id, event_type, display, std::move(allowed_from),
      [&](const UserRecord&) { return refusal; },
      [&](Transaction& tx, UserRecord& user, absl::Time) -> absl::Status {
        user.status = std::string(to);
        if (to == store::kUserActive) user.failed_sign_ins = 0;
        if (to == store::kUserDeprovisioned || to == store::kUserSuspended) {
          return EndSessions(tx, tenant, user.id, clock_.Now()).status();
        }
        return absl::OkStatus();
      });
}

absl::StatusOr<IssuedToken> Directory::Activate(const TenantId& tenant,
                                                const audit::RequestContext& ctx,
                                                std::string_view id) {
  IssuedToken issued;
  RETURN_IF_ERROR(Transition(
      tenant, ctx, id, "user.lifecycle.activate", "Activate user",
      {store::kUserStaged, store::kUserDeprovisioned, store::kUserProvisioned},
      [](const UserRecord&) {
        return ApiError(absl::StatusCode::kFailedPrecondition, "E0000016",
                        "Activation failed because the user is already active");
      },
      [&](Transaction&, UserRecord& user, absl::Time now) {
        user.activated = now;
        user.failed_sign_ins = 0;
        if (user.password_hash.empty()) {
          user.status = std::string(store::kUserProvisioned);
          issued.token = random_.Token();
          user.recovery_token_hash = crypto::Sha256Hex(issued.token);
          user.recovery_expires = now + kActivationTokenLifetime;
        } else {
          user.status = std::string(store::kUserActive);
        }
        issued.user = user;
        return absl::OkStatus();
      }));
  return issued;
}

absl::Status Directory::Deactivate(const TenantId& tenant, const audit::RequestContext& ctx,
                                   std::string_view id) {
  return Transition(tenant, ctx, id, "user.lifecycle.deactivate", "Deactivate user",
                    {store::kUserStaged, store::kUserProvisioned, store::kUserActive,
                     store::kUserRecovery, store::kUserLockedOut, store::kUserSuspended},
                    store::kUserDeprovisioned,
                    ApiError(absl::StatusCode::kFailedPrecondition, kErrWrongStatus,
                             "Operation not allowed in the user's current status: DEPROVISIONED"));
}

absl::Status Directory::Suspend(const TenantId& tenant, const audit::RequestContext& ctx,
                                std::string_view id) {
  return Transition(tenant, ctx, id, "user.lifecycle.suspend", "Suspend user", {store::kUserActive},
                    store::kUserSuspended,
                    ValidationError("Cannot suspend a user that is not active",
                                    {"status: only an ACTIVE user can be suspended"}));
}

absl::Status Directory::Unsuspend(const TenantId& tenant, const audit::RequestContext& ctx,
                                  std::string_view id) {
  return Transition(tenant, ctx, id, "user.lifecycle.unsuspend", "Unsuspend user",
                    {store::kUserSuspended}, store::kUserActive,
                    ValidationError("Cannot unsuspend a user that is not suspended",
                                    {"status: only a SUSPENDED user can be unsuspended"}));
}

absl::Status Directory::Unlock(const TenantId& tenant, const audit::RequestContext& ctx,
                               std::string_view id) {
  return Transition(tenant, ctx, id, "user.account.unlock", "Unlock user account",
                    {store::kUserLockedOut}, store::kUserActive,
                    ApiError(absl::StatusCode::kFailedPrecondition, "E0000032",
                             "Unlock is not allowed for this user."));
}

absl::StatusOr<IssuedToken> Directory::ResetPassword(const TenantId& tenant,
                                                     const audit::RequestContext& ctx,
                                                     std::string_view id) {
  IssuedToken issued;
  RETURN_IF_ERROR(Transition(
      tenant, ctx, id, "user.account.reset_password", "Reset password",
      {store::kUserActive, store::kUserRecovery, store::kUserLockedOut},
      [](const UserRecord& user) {
        return ApiError(
            absl::StatusCode::kFailedPrecondition, kErrWrongStatus,
            fmt::format("Operation not allowed in the user's current status: {}", user.status));
      },
      [&](Transaction& tx, UserRecord& user, absl::Time now) -> absl::Status {
        issued.token = random_.Token();
        user.recovery_token_hash = crypto::Sha256Hex(issued.token);
        user.recovery_expires = now + config_.recovery_token_lifetime;
        user.status = std::string(store::kUserRecovery);
        issued.user = user;
        return EndSessions(tx, tenant, user.id, clock_.Now()).status();
      }));
  return issued;
}

absl::Status Directory::ResetFactors(const TenantId& tenant, const audit::RequestContext& ctx,
                                     std::string_view id) {
  return store_.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(UserRecord user, FindUser(tx, tenant, id));
    ASSIGN_OR_RETURN(int removed, tx.Factors().DeleteAllForUser(tenant, user.id));
    audit::EventSpec spec{.event_type = "user.mfa.factor.reset_all",
                          .display_message = "Reset all factors for user",
                          .targets = {UserPrincipal(user)},
                          .debug_data = {{"factorsRemoved", std::to_string(removed)}}};
    return tx.Events().Append(Event(tenant, ctx, spec)).status();
  });
}

absl::StatusOr<int> Directory::ClearSessions(const TenantId& tenant,
                                             const audit::RequestContext& ctx,
                                             std::string_view id) {
  int removed = 0;
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(UserRecord user, FindUser(tx, tenant, id));
    ASSIGN_OR_RETURN(removed, EndSessions(tx, tenant, user.id, clock_.Now()));
    audit::EventSpec spec{.event_type = "user.session.clear",
                          .display_message = "Clear user sessions",
                          .targets = {UserPrincipal(user)},
                          .debug_data = {{"sessionsEnded", std::to_string(removed)}}};
    return tx.Events().Append(Event(tenant, ctx, spec)).status();
  }));
  return removed;
}

// Groups

namespace {

constexpr size_t kMaxGroupName = 255;
constexpr size_t kMaxGroupDescription = 1024;

absl::Status ValidateGroupProfile(const Json& profile, std::string& name,
                                  std::string& description) {
  if (!profile.is_object()) {
    return ValidationError("Api validation failed: profile", {"profile: must be an object"});
  }
  std::vector<std::string> causes;
  for (const auto& [key, value] : profile.items()) {
    if (key != "name" && key != "description") {
      causes.push_back(fmt::format("{}: Property name '{}' is not defined in profile", key, key));
    } else if (!value.is_string() && !(key == "description" && value.is_null())) {
      causes.push_back(fmt::format("{}: must be a string", key));
    }
  }
  auto it = profile.find("name");
  if (it == profile.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
    causes.push_back("name: The field cannot be left blank");
  } else if (it->get_ref<const std::string&>().size() > kMaxGroupName) {
    causes.push_back(fmt::format("name: must be at most {} characters", kMaxGroupName));
  }
  auto d = profile.find("description");
  if (d != profile.end() && d->is_string() &&
      d->get_ref<const std::string&>().size() > kMaxGroupDescription) {
    causes.push_back(
        fmt::format("description: must be at most {} characters", kMaxGroupDescription));
  }
  if (!causes.empty()) return ValidationError("Api validation failed: profile", causes);
  name = it->get<std::string>();
  description = d != profile.end() && d->is_string() ? d->get<std::string>() : "";
  return absl::OkStatus();
}

absl::Status GroupNameTaken() {
  return ValidationError(
      "Api validation failed: name",
      {"name: An object with this field already exists in the current organization"});
}

}  // namespace

absl::StatusOr<GroupRecord> Directory::CreateGroup(const TenantId& tenant,
                                                   const audit::RequestContext& ctx,
                                                   const Json& profile) {
  GroupRecord group;
  RETURN_IF_ERROR(ValidateGroupProfile(profile, group.name, group.description));
  absl::Time now = clock_.Now();
  group.id = GroupId(random_.Id(kGroupIdPrefix));
  group.tenant_id = tenant;
  group.created = group.last_updated = group.last_membership_updated = now;
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    absl::Status inserted = tx.Groups().Insert(group);
    if (absl::IsAlreadyExists(inserted)) return GroupNameTaken();
    RETURN_IF_ERROR(inserted);
    audit::EventSpec spec{.event_type = "group.lifecycle.create",
                          .display_message = "Create group",
                          .targets = {GroupPrincipal(group)}};
    return tx.Events().Append(Event(tenant, ctx, spec)).status();
  }));
  return group;
}

absl::StatusOr<GroupRecord> Directory::GetGroup(const TenantId& tenant, std::string_view id) {
  return store::ReadResult(store_, [&](Transaction& tx) { return FindGroup(tx, tenant, id); });
}

absl::StatusOr<ListResult<GroupRecord>> Directory::ListGroups(const TenantId& tenant,
                                                              const ListQuery& query) {
  ASSIGN_OR_RETURN(Matcher matcher, Matcher::Make(query));
  return store::ReadResult(store_, [&](Transaction& tx) {
    return Scan<GroupRecord>(
        query.after, query.limit, query.scan_budget,
        [&](const store::Page& page) { return tx.Groups().List(tenant, page); },
        [&](const GroupRecord& g) { return matcher.Matches(GroupView(g), {"name"}); },
        [](const GroupRecord& g) { return g.id.value(); });
  });
}

absl::StatusOr<GroupRecord> Directory::UpdateGroup(const TenantId& tenant,
                                                   const audit::RequestContext& ctx,
                                                   std::string_view id, const Json& profile) {
  std::string name, description;
  RETURN_IF_ERROR(ValidateGroupProfile(profile, name, description));
  GroupRecord group;
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(group, FindGroup(tx, tenant, id));
    group.name = name;
    group.description = description;
    group.last_updated = clock_.Now();
    absl::Status updated = tx.Groups().Update(group);
    if (absl::IsAlreadyExists(updated)) return GroupNameTaken();
    RETURN_IF_ERROR(updated);
    audit::EventSpec spec{.event_type = "group.profile.update",
                          .display_message = "Update group profile",
                          .targets = {GroupPrincipal(group)}};
    return tx.Events().Append(Event(tenant, ctx, spec)).status();
  }));
  return group;
}

absl::Status Directory::DeleteGroup(const TenantId& tenant, const audit::RequestContext& ctx,
                                    std::string_view id) {
  return store_.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(GroupRecord group, FindGroup(tx, tenant, id));
    RETURN_IF_ERROR(tx.Groups().Delete(tenant, group.id));
    audit::EventSpec spec{.event_type = "group.lifecycle.delete",
                          .display_message = "Delete group",
                          .targets = {GroupPrincipal(group)}};
    return tx.Events().Append(Event(tenant, ctx, spec)).status();
  });
}

absl::Status Directory::AddMember(const TenantId& tenant, const audit::RequestContext& ctx,
                                  std::string_view group_id, std::string_view user_id) {
  return store_.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(GroupRecord group, FindGroup(tx, tenant, group_id));
    absl::StatusOr<UserRecord> user = tx.Users().Get(tenant, UserId(std::string(user_id)));
    if (absl::IsNotFound(user.status())) return UserNotFound(user_id);
    RETURN_IF_ERROR(user.status());
    RETURN_IF_ERROR(tx.Groups().AddMember(tenant, group.id, user->id));
    group.last_membership_updated = clock_.Now();
    RETURN_IF_ERROR(tx.Groups().Update(group));
    audit::EventSpec spec{.event_type = "group.user_membership.add",
                          .display_message = "Add user to group membership",
                          .targets = {UserPrincipal(*user), GroupPrincipal(group)}};
    return tx.Events().Append(Event(tenant, ctx, spec)).status();
  });
}

absl::Status Directory::RemoveMember(const TenantId& tenant, const audit::RequestContext& ctx,
                                     std::string_view group_id, std::string_view user_id) {
  return store_.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(GroupRecord group, FindGroup(tx, tenant, group_id));
    absl::StatusOr<UserRecord> user = tx.Users().Get(tenant, UserId(std::string(user_id)));
    if (absl::IsNotFound(user.status())) return UserNotFound(user_id);
    RETURN_IF_ERROR(user.status());
    absl::Status removed = tx.Groups().RemoveMember(tenant, group.id, user->id);
    if (absl::IsNotFound(removed)) {
      return NotFoundError(fmt::format("{} (GroupMembership)", user_id));
    }
    RETURN_IF_ERROR(removed);
    group.last_membership_updated = clock_.Now();
    RETURN_IF_ERROR(tx.Groups().Update(group));
    audit::EventSpec spec{.event_type = "group.user_membership.remove",
                          .display_message = "Remove user from group membership",
                          .targets = {UserPrincipal(*user), GroupPrincipal(group)}};
    return tx.Events().Append(Event(tenant, ctx, spec)).status();
  });
}

absl::StatusOr<ListResult<UserRecord>> Directory::ListMembers(const TenantId& tenant,
                                                              std::string_view group_id,
                                                              const std::string& after, int limit) {
  return store::ReadResult(store_, [&](Transaction& tx) -> absl::StatusOr<ListResult<UserRecord>> {
    ASSIGN_OR_RETURN(GroupRecord group, FindGroup(tx, tenant, group_id));
    // One more than asked tells whether a next page exists.
    ASSIGN_OR_RETURN(std::vector<UserId> ids,
                     tx.Groups().ListMembers(tenant, group.id, store::Page{after, limit + 1}));
    ListResult<UserRecord> page;
    bool more = static_cast<int>(ids.size()) > limit;
    if (more) ids.pop_back();
    for (const UserId& id : ids) {
      ASSIGN_OR_RETURN(UserRecord user, tx.Users().Get(tenant, id));
      page.items.push_back(std::move(user));
    }
    if (more) page.next_after = ids.back().value();
    return page;
  });
}

// Factors

absl::StatusOr<std::vector<FactorRecord>> Directory::ListFactors(const TenantId& tenant,
                                                                 std::string_view user_id) {
  return store::ReadResult(store_,
                           [&](Transaction& tx) -> absl::StatusOr<std::vector<FactorRecord>> {
                             ASSIGN_OR_RETURN(UserRecord user, FindUser(tx, tenant, user_id));
                             return tx.Factors().ListForUser(tenant, user.id);
                           });
}

absl::StatusOr<FactorRecord> Directory::GetFactor(const TenantId& tenant, std::string_view user_id,
                                                  std::string_view factor_id) {
  return store::ReadResult(store_, [&](Transaction& tx) -> absl::StatusOr<FactorRecord> {
    ASSIGN_OR_RETURN(UserRecord user, FindUser(tx, tenant, user_id));
    return FindFactor(tx, tenant, user.id, factor_id);
  });
}

absl::StatusOr<FactorEnrollment> Directory::EnrollFactor(
    const TenantId& tenant, const audit::RequestContext& ctx, std::string_view user_id,
    std::string_view factor_type, std::string_view provider, std::string_view issuer) {
  if (factor_type != authn::kTotpFactorType ||
      (!provider.empty() && provider != authn::kTotpProvider)) {
    return ValidationError("Api validation failed: factorType",
                           {fmt::format("factorType: only {} with provider {} is supported",
                                        authn::kTotpFactorType, authn::kTotpProvider)});
  }
  FactorEnrollment enrollment;
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(UserRecord user, FindUser(tx, tenant, user_id));
    if (user.status == store::kUserDeprovisioned) {
      return ApiError(absl::StatusCode::kFailedPrecondition, kErrWrongStatus,
                      "Operation not allowed in the user's current status: DEPROVISIONED");
    }
    ASSIGN_OR_RETURN(std::vector<FactorRecord> existing, tx.Factors().ListForUser(tenant, user.id));
    for (const FactorRecord& f : existing) {
      if (f.factor_type != authn::kTotpFactorType) continue;
      if (f.status == store::kFactorActive) {
        return ValidationError("Api validation failed: factorType",
                               {"factorType: A factor of this type is already set up."});
      }
      RETURN_IF_ERROR(tx.Factors().Delete(tenant, f.id));
    }
    authn::TotpEnrollment totp =
        authn::NewTotpFactor(tenant, user.id, issuer, user.login, random_, sealer_, clock_);
    RETURN_IF_ERROR(tx.Factors().Insert(totp.record));
    enrollment = {totp.record, totp.secret_base32, totp.otpauth_uri};
    audit::EventSpec spec{.event_type = "user.mfa.factor.update",
                          .display_message = "Enroll factor (pending activation)",
                          .targets = {UserPrincipal(user)},
                          .debug_data = {{"factorType", std::string(factor_type)},
                                         {"factorId", totp.record.id.value()}}};
    return tx.Events().Append(Event(tenant, ctx, spec)).status();
  }));
  return enrollment;
}

absl::StatusOr<FactorRecord> Directory::ActivateFactor(const TenantId& tenant,
                                                       const audit::RequestContext& ctx,
                                                       std::string_view user_id,
                                                       std::string_view factor_id,
                                                       std::string_view passcode) {
  FactorRecord factor;
  absl::Status refused;
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(UserRecord user, FindUser(tx, tenant, user_id));
    ASSIGN_OR_RETURN(factor, FindFactor(tx, tenant, user.id, factor_id));
    if (factor.status != store::kFactorPendingActivation) {
      return ApiError(absl::StatusCode::kFailedPrecondition, kErrWrongStatus,
                      "The factor is already active.");
    }
    audit::EventSpec spec{
        .event_type = "user.mfa.factor.activate",
        .display_message = "Activate factor",
        .targets = {UserPrincipal(user)},
        .debug_data = {{"factorType", factor.factor_type}, {"factorId", factor.id.value()}}};
    absl::StatusOr<int64_t> step =
        authn::CheckTotpCode(factor, passcode, sealer_, clock_.Now(), config_.totp_skew_steps);
    if (!step.ok()) {
      spec.outcome = std::string(audit::kFailure);
      spec.reason = "INVALID_CREDENTIALS";
      refused = step.status();
      return tx.Events().Append(Event(tenant, ctx, spec)).status();
    }
    factor.status = std::string(store::kFactorActive);
    factor.last_used_step = *step;
    factor.last_updated = clock_.Now();
    RETURN_IF_ERROR(tx.Factors().Update(factor));
    return tx.Events().Append(Event(tenant, ctx, spec)).status();
  }));
  RETURN_IF_ERROR(refused);
  return factor;
}

absl::Status Directory::VerifyFactor(const TenantId& tenant, const audit::RequestContext& ctx,
                                     std::string_view user_id, std::string_view factor_id,
                                     std::string_view passcode) {
  absl::Status refused;
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(UserRecord user, FindUser(tx, tenant, user_id));
    ASSIGN_OR_RETURN(FactorRecord factor, FindFactor(tx, tenant, user.id, factor_id));
    if (factor.status != store::kFactorActive) {
      return ApiError(absl::StatusCode::kFailedPrecondition, kErrWrongStatus,
                      "The factor is not active.");
    }
    audit::EventSpec spec{
        .event_type = "user.authentication.auth_via_mfa",
        .display_message = "Authentication of user via MFA",
        .targets = {UserPrincipal(user)},
        .debug_data = {{"factorType", factor.factor_type}, {"factorId", factor.id.value()}},
        .credential_type = "OTP"};
    absl::Time now = clock_.Now();
    absl::StatusOr<int64_t> step =
        authn::CheckTotpCode(factor, passcode, sealer_, now, config_.totp_skew_steps);
    if (!step.ok()) {
      spec.outcome = std::string(audit::kFailure);
      spec.reason = "INVALID_CREDENTIALS";
      refused = step.status();
      user.failed_sign_ins++;
      if (user.status == store::kUserActive && user.failed_sign_ins >= config_.lockout_threshold) {
        user.status = std::string(store::kUserLockedOut);
        user.status_changed = now;
        RETURN_IF_ERROR(tx.Events()
                            .Append(Event(tenant, ctx,
                                          {.event_type = "user.account.lock",
                                           .display_message = "Max sign in attempts exceeded",
                                           .severity = "WARN",
                                           .reason = "LOCKED_OUT",
                                           .targets = {UserPrincipal(user)}}))
                            .status());
      }
      RETURN_IF_ERROR(tx.Users().Update(user));
      return tx.Events().Append(Event(tenant, ctx, spec)).status();
    }
    factor.last_used_step = *step;
    factor.last_updated = now;
    RETURN_IF_ERROR(tx.Factors().Update(factor));
    if (user.failed_sign_ins != 0) {
      user.failed_sign_ins = 0;
      RETURN_IF_ERROR(tx.Users().Update(user));
    }
    return tx.Events().Append(Event(tenant, ctx, spec)).status();
  }));
  return refused;
}

absl::Status Directory::DeleteFactor(const TenantId& tenant, const audit::RequestContext& ctx,
                                     std::string_view user_id, std::string_view factor_id) {
  return store_.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(UserRecord user, FindUser(tx, tenant, user_id));
    ASSIGN_OR_RETURN(FactorRecord factor, FindFactor(tx, tenant, user.id, factor_id));
    RETURN_IF_ERROR(tx.Factors().Delete(tenant, factor.id));
    audit::EventSpec spec{
        .event_type = "user.mfa.factor.deactivate",
        .display_message = "Reset factor for user",
        .targets = {UserPrincipal(user)},
        .debug_data = {{"factorType", factor.factor_type}, {"factorId", factor.id.value()}}};
    return tx.Events().Append(Event(tenant, ctx, spec)).status();
  });
}

}  // namespace custos::directory
