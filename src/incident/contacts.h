#pragma once

// A tenant's security contacts (where it wants to hear about incidents that concern it) and the
// tenant's side of the notifications sent to them: listing and acknowledging.
//
// Contacts are webhooks (an https:// URL; http:// only to a loopback host, or anywhere when
// `notify.allow_http_webhooks` is set) or e-mail addresses. A webhook contact gets a Standard
// Webhooks signing secret (webhook.h) when it is made: shown once, in that answer, and kept
// sealed (crypto::Sealer) because signing needs it again. A tenant has at most
// kMaxContactsPerTenant contacts.
//
// Events (docs/notifications.md): security.contact.create and security.contact.delete in the
// tenant's log; security.notification.acknowledge in the tenant's log and the provider log.
//
// Errors carry the management API's codes: kInvalidArgument E0000001 with the problem,
// kNotFound E0000007. Thread-safe: holds only references to thread-safe services.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "audit/event.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/json.h"
#include "crypto/random.h"
#include "crypto/sealer.h"
#include "store/records.h"
#include "store/store.h"

namespace custos::incident {

inline constexpr int kMaxContactsPerTenant = 20;
inline constexpr size_t kMaxContactNameBytes = 200;
inline constexpr size_t kMaxWebhookUrlBytes = 2048;

struct ContactOptions {
  bool allow_http_webhooks = false;  // http:// to any host, not only to loopback
};

// What a tenant admin asks for.
struct NewContact {
  std::string type;     // store::kContactWebhook or store::kContactEmail
  std::string name;     // 1..200 bytes, no control characters
  std::string address;  // the webhook URL, or the e-mail address
};

// A new contact; `secret` ("whsec_...") only for a webhook, and only here.
struct CreatedContact {
  store::SecurityContactRecord contact;
  std::optional<std::string> secret;
};

// OK when `url` may be a webhook contact's address; kInvalidArgument (E0000001) saying why not:
// not an absolute http(s) URL, over kMaxWebhookUrlBytes, credentials or a fragment in it, or
// http:// to a host that is not loopback while `allow_http` is false.
absl::Status ValidateWebhookUrl(std::string_view url, bool allow_http);

// The associated data that binds a sealed webhook secret to its contact, so that a sealed value
// copied onto another contact does not open.
std::string ContactSecretAad(const TenantId& tenant, std::string_view contact_id);

class SecurityContacts {
 public:
  SecurityContacts(store::Store& store, const crypto::Sealer& sealer, const Clock& clock,
                   crypto::Random& random, ContactOptions options);

  absl::StatusOr<CreatedContact> Create(const TenantId& tenant, const audit::RequestContext& ctx,
                                        const NewContact& contact);
  // Ordered by id.
  absl::StatusOr<std::vector<store::SecurityContactRecord>> List(const TenantId& tenant);
  // Notifications already made for the contact keep its id; those still pending fail (the
  // notifier finds no contact to deliver to).
  absl::Status Delete(const TenantId& tenant, const audit::RequestContext& ctx,
                      std::string_view id);

  // The tenant's notifications of every incident, oldest first.
  absl::StatusOr<std::vector<store::NotificationRecord>> Notifications(const TenantId& tenant);
  // Records that the tenant has seen the notification, whatever its delivery status. The first
  // acknowledgement stays: a second one changes nothing and records no event.
  absl::StatusOr<store::NotificationRecord> Acknowledge(const TenantId& tenant,
                                                        const audit::RequestContext& ctx,
                                                        std::string_view id);

 private:
  store::Store& store_;
  const crypto::Sealer& sealer_;
  const Clock& clock_;
  crypto::Random& random_;
  ContactOptions options_;
};

// The API's JSON: {id, type, name, url | address, created} and, when given, the secret.
Json ContactView(const store::SecurityContactRecord& contact,
                 const std::optional<std::string>& secret = std::nullopt);
// {id, incidentId, contactId, channel, status, attempts, lastError, nextAttempt, created,
// delivered, acknowledged, acknowledgedBy, payload}; absent times and texts are null.
Json NotificationView(const store::NotificationRecord& notification);

}  // namespace custos::incident
