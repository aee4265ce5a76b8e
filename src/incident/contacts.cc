#include "incident/contacts.h"

#include <utility>

#include <fmt/format.h>

#include "common/errors.h"
#include "common/status_macros.h"
#include "common/time_format.h"
#include "incident/mailer.h"
#include "incident/webhook.h"

namespace custos::incident {
namespace {

using store::Transaction;

absl::Status Invalid(std::string_view field, std::string message) {
  return ValidationError(fmt::format("Api validation failed: {}", field),
                         {fmt::format("{}: {}", field, message)});
}

bool HasControlCharacter(std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return true;
  }
  return false;
}

audit::Principal ContactPrincipal(const store::SecurityContactRecord& c) {
  return {c.id, "SecurityContact", c.type, c.name};
}

audit::Principal NotificationPrincipal(const store::NotificationRecord& n) {
  return {n.id, "SecurityNotification", n.channel, n.incident_id};
}

// What the System Log says about where a contact points: the webhook's origin or the e-mail's
// domain. A webhook URL often carries the receiver's own token in its path or query, and a
// tenant's log may be public; the full address stays in the contact.
std::string Destination(const store::SecurityContactRecord& c) {
  if (c.type == store::kContactWebhook) {
    absl::StatusOr<UrlParts> parts = ParseUrl(c.address);
    return parts.ok() ? fmt::format("{}://{}", parts->scheme, parts->host) : std::string();
  }
  const size_t at = c.address.rfind('@');
  return at == std::string::npos ? std::string() : c.address.substr(at);
}

absl::Status ContactNotFound(std::string_view id) {
  return NotFoundError(fmt::format("{} (SecurityContact)", id));
}

absl::Status NotificationNotFound(std::string_view id) {
  return NotFoundError(fmt::format("{} (SecurityNotification)", id));
}

Json TimeOrNull(const std::optional<absl::Time>& t) {
  return t.has_value() ? Json(FormatRfc3339(*t)) : Json(nullptr);
}

Json TextOrNull(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }

}  // namespace

absl::Status ValidateWebhookUrl(std::string_view url, bool allow_http) {
  if (url.size() > kMaxWebhookUrlBytes) {
    return Invalid("url", fmt::format("longer than {} bytes", kMaxWebhookUrlBytes));
  }
  absl::StatusOr<UrlParts> parts = ParseUrl(url);
  if (!parts.ok() || (parts->scheme != "https" && parts->scheme != "http")) {
    return Invalid("url", "must be an absolute https:// URL");
  }
  if (parts->has_user_info) {
    return Invalid("url", "must not hold a user name or password");
  }
  if (parts->has_fragment) return Invalid("url", "must not hold a fragment (#...)");
  if (parts->scheme == "http" && !allow_http && !IsLoopbackHost(parts->host)) {
    return Invalid("url",
                   "must be https:// (http:// is accepted only for a loopback host unless "
                   "notify.allow_http_webhooks is set)");
  }
  return absl::OkStatus();
}

std::string ContactSecretAad(const TenantId& tenant, std::string_view contact_id) {
  return fmt::format("custos/security-contact/{}/{}", tenant.value(), contact_id);
}

SecurityContacts::SecurityContacts(store::Store& store, const crypto::Sealer& sealer,
                                   const Clock& clock, crypto::Random& random,
                                   ContactOptions options)
    : store_(store), sealer_(sealer), clock_(clock), random_(random), options_(options) {}

absl::StatusOr<CreatedContact> SecurityContacts::Create(const TenantId& tenant,
                                                        const audit::RequestContext& ctx,
                                                        const NewContact& draft) {
  if (draft.name.empty() || draft.name.size() > kMaxContactNameBytes ||
      HasControlCharacter(draft.name)) {
    return Invalid("name", fmt::format("must be 1 to {} bytes without control characters",
                                       kMaxContactNameBytes));
  }
  CreatedContact created;
  store::SecurityContactRecord& c = created.contact;
  c.id = random_.Id(store::kSecurityContactIdPrefix);
  c.tenant_id = tenant;
  c.type = draft.type;
  c.name = draft.name;
  c.address = draft.address;
  c.created = clock_.Now();
  if (draft.type == store::kContactWebhook) {
    RETURN_IF_ERROR(ValidateWebhookUrl(draft.address, options_.allow_http_webhooks));
    created.secret = NewWebhookSecret(random_);
    c.sealed_secret = sealer_.Seal(*created.secret, ContactSecretAad(tenant, c.id));
  } else if (draft.type == store::kContactEmail) {
    if (!IsMailAddress(draft.address)) {
      return Invalid("address", "must be a mail address such as security@example.com");
    }
  } else {
    return Invalid("type", "must be webhook or email");
  }
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<store::SecurityContactRecord> existing,
                     tx.Incidents().ListContacts(tenant));
    if (existing.size() >= static_cast<size_t>(kMaxContactsPerTenant)) {
      return Invalid("contacts", fmt::format("a tenant has at most {} security contacts",
                                             kMaxContactsPerTenant));
    }
    RETURN_IF_ERROR(tx.Incidents().InsertContact(c));
    audit::EventSpec spec{.event_type = "security.contact.create",
                          .display_message = "Add security contact",
                          .targets = {ContactPrincipal(c)},
                          .debug_data = {{"contactType", c.type}, {"destination", Destination(c)}}};
    return tx.Events().Append(audit::MakeEvent(tenant, ctx, spec, clock_, random_)).status();
  }));
  return created;
}

absl::StatusOr<std::vector<store::SecurityContactRecord>> SecurityContacts::List(
    const TenantId& tenant) {
  return store::ReadResult(store_,
                           [&](Transaction& tx) { return tx.Incidents().ListContacts(tenant); });
}

absl::Status SecurityContacts::Delete(const TenantId& tenant, const audit::RequestContext& ctx,
                                      std::string_view id) {
  return store_.Write([&](Transaction& tx) -> absl::Status {
    absl::StatusOr<store::SecurityContactRecord> c = tx.Incidents().GetContact(tenant, id);
    if (absl::IsNotFound(c.status())) return ContactNotFound(id);
    RETURN_IF_ERROR(c.status());
    RETURN_IF_ERROR(tx.Incidents().DeleteContact(tenant, id));
    audit::EventSpec spec{
        .event_type = "security.contact.delete",
        .display_message = "Remove security contact",
        .targets = {ContactPrincipal(*c)},
        .debug_data = {{"contactType", c->type}, {"destination", Destination(*c)}}};
    return tx.Events().Append(audit::MakeEvent(tenant, ctx, spec, clock_, random_)).status();
  });
}

absl::StatusOr<std::vector<store::NotificationRecord>> SecurityContacts::Notifications(
    const TenantId& tenant) {
  return store::ReadResult(
      store_, [&](Transaction& tx) { return tx.Incidents().ListNotificationsForTenant(tenant); });
}

absl::StatusOr<store::NotificationRecord> SecurityContacts::Acknowledge(
    const TenantId& tenant, const audit::RequestContext& ctx, std::string_view id) {
  store::NotificationRecord n;
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    absl::StatusOr<store::NotificationRecord> found = tx.Incidents().GetNotification(tenant, id);
    if (absl::IsNotFound(found.status())) return NotificationNotFound(id);
    RETURN_IF_ERROR(found.status());
    n = *std::move(found);
    if (n.acknowledged.has_value()) return absl::OkStatus();
    n.acknowledged = clock_.Now();
    n.acknowledged_by = ctx.actor.id;
    RETURN_IF_ERROR(tx.Incidents().UpdateNotification(n));
    audit::EventSpec spec{
        .event_type = "security.notification.acknowledge",
        .display_message = "Acknowledge security notification",
        .targets = {NotificationPrincipal(n)},
        .debug_data = {
            {"notificationId", n.id}, {"incidentId", n.incident_id}, {"deliveryStatus", n.status}}};
    RETURN_IF_ERROR(
        tx.Events().Append(audit::MakeEvent(tenant, ctx, spec, clock_, random_)).status());
    spec.debug_data["tenantId"] = tenant.value();
    const TenantId provider(std::string(store::kProviderLogId));
    return tx.Events().Append(audit::MakeEvent(provider, ctx, spec, clock_, random_)).status();
  }));
  return n;
}

Json ContactView(const store::SecurityContactRecord& contact,
                 const std::optional<std::string>& secret) {
  Json j = {{"id", contact.id},
            {"type", contact.type},
            {"name", contact.name},
            {"created", FormatRfc3339(contact.created)}};
  j[contact.type == store::kContactWebhook ? "url" : "address"] = contact.address;
  if (secret.has_value()) j["secret"] = *secret;
  return j;
}

Json NotificationView(const store::NotificationRecord& n) {
  absl::StatusOr<Json> payload = ParseJson(n.payload_json);
  return {
      {"id", n.id},
      {"incidentId", n.incident_id},
      {"contactId", n.contact_id},
      {"channel", n.channel},
      {"status", n.status},
      {"attempts", n.attempts},
      {"lastError", TextOrNull(n.last_error)},
      {"nextAttempt", n.status == store::kNotificationPending ? Json(FormatRfc3339(n.next_attempt))
                                                              : Json(nullptr)},
      {"created", FormatRfc3339(n.created)},
      {"delivered", TimeOrNull(n.delivered)},
      {"acknowledged", TimeOrNull(n.acknowledged)},
      {"acknowledgedBy", TextOrNull(n.acknowledged_by)},
      {"payload", payload.ok() ? *payload : Json(nullptr)}};
}

}  // namespace custos::incident
