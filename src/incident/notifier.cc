#include "incident/notifier.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "audit/event.h"
#include "common/json.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "incident/contacts.h"

namespace custos::incident {
namespace {

using store::NotificationRecord;
using store::Transaction;

constexpr size_t kMaxLastErrorBytes = 200;

std::string Key(const NotificationRecord& n) {
  return fmt::format("{}/{}", n.tenant_id.value(), n.id);
}

std::string Shorten(std::string text) {
  if (text.size() > kMaxLastErrorBytes) {
    text.resize(kMaxLastErrorBytes - 3);
    // Never leave half a UTF-8 character behind.
    while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80) {
      text.pop_back();
    }
    if (!text.empty() && static_cast<unsigned char>(text.back()) >= 0xC0) text.pop_back();
    text += "...";
  }
  return text;
}

DeliveryResult Permanent(std::string error, std::string reason) {
  return {.outcome = DeliveryOutcome::kPermanentFailure,
          .error = std::move(error),
          .reason = std::move(reason)};
}

DeliveryResult Retry(std::string error, std::string reason) {
  return {
      .outcome = DeliveryOutcome::kRetry, .error = std::move(error), .reason = std::move(reason)};
}

// A string member of a JSON object, or `fallback`.
std::string Text(const Json& j, std::string_view key, std::string fallback = "") {
  if (!j.is_object()) return fallback;
  auto it = j.find(std::string(key));
  if (it == j.end() || !it->is_string()) return fallback;
  return it->get<std::string>();
}

std::string Count(const Json& summary, std::string_view key) {
  if (!summary.is_object()) return "?";
  auto it = summary.find(std::string(key));
  return it != summary.end() && it->is_number_integer() ? std::to_string(it->get<int64_t>()) : "?";
}

std::string WindowText(const Json& window) {
  const std::string start = Text(window, "start");
  const std::string end = Text(window, "end");
  if (start.empty() && end.empty()) return "(not given)";
  return fmt::format("{} to {}", start.empty() ? "?" : start, end.empty() ? "?" : end);
}

// Strips what would break the one-line fields of the plain-text body.
std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\r' || c == '\n' || c == '\t') c = ' ';
  }
  return s;
}

audit::RequestContext SystemContext() {
  audit::RequestContext ctx;
  ctx.actor = audit::SystemPrincipal();
  return ctx;
}

}  // namespace

absl::Duration Backoff(int attempts, absl::Duration base, absl::Duration cap) {
  absl::Duration wait = base;
  for (int i = 0; i < attempts && wait < cap; ++i) wait *= 2;
  return std::min(wait, cap);
}

absl::StatusOr<MailMessage> NotificationMail(const NotificationRecord& n, std::string_view to,
                                             std::string_view from, std::string_view base_url,
                                             absl::Time date) {
  if (!IsMailAddress(from)) {
    return absl::InvalidArgumentError("notify.mail_from is not a mail address");
  }
  absl::StatusOr<Json> parsed = ParseJson(n.payload_json);
  const Json payload = parsed.ok() ? *parsed : Json::object();
  const Json data = payload.is_object() && payload.contains("data") ? payload["data"] : Json();
  const Json tenant = data.is_object() && data.contains("tenant") ? data["tenant"] : Json();
  const Json summary = data.is_object() && data.contains("summary") ? data["summary"] : Json();
  const std::string title = OneLine(Text(data, "title", "Security incident"));
  const bool confirmed = data.is_object() && data.contains("confirmed") &&
                         data["confirmed"].is_boolean() && data["confirmed"].get<bool>();
  auto link = [&](std::string_view key) {
    const std::string path = Text(data, key);
    return path.empty() ? std::string("(not given)") : fmt::format("{}{}", base_url, path);
  };

  std::string body = fmt::format(
      "Custos security notification\n"
      "\n"
      "{title}\n"
      "\n"
      "Tenant:             {tenant}\n"
      "Incident:           {incident}\n"
      "Your tenant is:     {scope}\n"
      "Window:             {window}\n"
      "Compromise window:  {compromise}\n"
      "\n"
      "Support activity in your tenant within the window: {views} views, {attempts} attempted\n"
      "actions, {refusals} refused, {successes} succeeded, {grants} support grants used.\n"
      "\n"
      "Evidence package (check it with `custos log verify --evidence FILE`):\n"
      "  {evidence}\n"
      "\n"
      "Please acknowledge this notification (POST with an admin API token of your tenant):\n"
      "  {acknowledge}\n"
      "\n"
      "Notification id: {id}\n"
      "The same notice was sent to your other security contacts; its id is the same everywhere.\n",
      fmt::arg("title", title),
      fmt::arg("tenant", OneLine(Text(tenant, "name", n.tenant_id.value()))),
      fmt::arg("incident", OneLine(Text(data, "incidentId", n.incident_id))),
      fmt::arg("scope", confirmed ? "CONFIRMED affected" : "potentially affected"),
      fmt::arg("window",
               OneLine(WindowText(data.is_object() ? data.value("window", Json()) : Json()))),
      fmt::arg(
          "compromise",
          OneLine(WindowText(data.is_object() ? data.value("compromiseWindow", Json()) : Json()))),
      fmt::arg("views", Count(summary, "views")), fmt::arg("attempts", Count(summary, "attempts")),
      fmt::arg("refusals", Count(summary, "refusals")),
      fmt::arg("successes", Count(summary, "successes")),
      fmt::arg("grants", Count(summary, "grantsUsed")),
      fmt::arg("evidence", OneLine(link("evidence"))),
      fmt::arg("acknowledge", OneLine(link("acknowledge"))), fmt::arg("id", n.id));

  const std::string_view domain = from.substr(from.rfind('@') + 1);
  return MailMessage{.from = std::string(from),
                     .to = std::string(to),
                     .subject = fmt::format("[Custos security] {}", title),
                     .body = std::move(body),
                     .message_id = fmt::format("{}@{}", n.id, domain),
                     .date = date};
}

Notifier::Notifier(store::Store& store, const crypto::Sealer& sealer, const Clock& clock,
                   crypto::Random& random, WebhookSender& webhooks, MailSender* mail,
                   NotifierOptions options)
    : store_(store),
      sealer_(sealer),
      clock_(clock),
      random_(random),
      webhooks_(webhooks),
      mail_(mail),
      options_(std::move(options)) {}

Notifier::~Notifier() { Stop(); }

void Notifier::Start() {
  absl::MutexLock lock(&mu_);
  if (running_) return;
  running_ = true;
  stopping_ = false;
  idle_ = std::max(1, options_.workers);
  cancel_.store(false);
  threads_.emplace_back([this] { DispatchLoop(); });
  for (int i = 0; i < idle_; ++i) threads_.emplace_back([this] { WorkLoop(); });
}

void Notifier::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (!running_) return;
    stopping_ = true;
  }
  cancel_.store(true);
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  std::deque<NotificationRecord> unstarted;
  {
    absl::MutexLock lock(&mu_);
    unstarted.swap(queue_);
    in_flight_.clear();
    running_ = false;
    stopping_ = false;
    idle_ = 0;
  }
  for (const NotificationRecord& row : unstarted) {
    if (absl::Status st = ReleaseLease(row); !st.ok()) {
      // The lease lapses by itself; the row only waits a little longer.
      Log(LogLevel::kWarn, "could not give back a notification lease",
          {{"notification", row.id}, {"error", std::string(st.message())}});
    }
  }
  cancel_.store(false);
}

void Notifier::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

absl::StatusOr<int> Notifier::RunOnce() {
  {
    absl::MutexLock lock(&mu_);
    if (running_) return absl::FailedPreconditionError("the notifier is running");
  }
  ASSIGN_OR_RETURN(std::vector<NotificationRecord> rows, Lease(std::max(1, options_.workers)));
  if (rows.size() == 1) {
    Handle(rows.front());
  } else {
    std::vector<std::thread> threads;
    threads.reserve(rows.size());
    for (const NotificationRecord& row : rows) threads.emplace_back([this, &row] { Handle(row); });
    for (std::thread& t : threads) t.join();
  }
  return static_cast<int>(rows.size());
}

void Notifier::DispatchLoop() {
  while (true) {
    int idle;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &Notifier::CanDispatch));
      if (stopping_) return;
      idle = idle_;
    }
    absl::StatusOr<std::vector<NotificationRecord>> due = Lease(idle);
    int dispatched = 0;
    if (!due.ok()) {
      Log(LogLevel::kWarn, "could not lease due notifications",
          {{"error", std::string(due.status().message())}});
    } else {
      absl::MutexLock lock(&mu_);
      for (NotificationRecord& row : *due) {
        if (!in_flight_.insert(Key(row)).second) continue;
        queue_.push_back(std::move(row));
        --idle_;
        ++dispatched;
      }
    }
    if (dispatched == 0) {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(this, &Notifier::StopOrWake), options_.poll_interval);
      woken_ = false;
    }
  }
}

void Notifier::WorkLoop() {
  while (true) {
    NotificationRecord row;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &Notifier::HasWork));
      if (stopping_) return;  // Stop gives the queued rows back
      row = std::move(queue_.front());
      queue_.pop_front();
    }
    Handle(row);
    absl::MutexLock lock(&mu_);
    in_flight_.erase(Key(row));
    ++idle_;
  }
}

absl::StatusOr<std::vector<NotificationRecord>> Notifier::Lease(int limit) {
  std::vector<NotificationRecord> rows;
  const absl::Time now = clock_.Now();
  // Idle polls only read: the write lock is taken when there is something to lease.
  ASSIGN_OR_RETURN(const bool any, store::ReadResult(store_, [&](Transaction& tx) {
                     return tx.Incidents().AnyDue(now);
                   }));
  if (!any) return rows;
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(rows, tx.Incidents().LeaseDue(now, now + options_.lease, limit));
    return absl::OkStatus();
  }));
  return rows;
}

void Notifier::Handle(const NotificationRecord& row) {
  const DeliveryResult result = Deliver(row);
  if (absl::Status st = Record(row, result); !st.ok()) {
    Log(LogLevel::kWarn, "could not record a notification delivery; it will be tried again",
        {{"notification", row.id}, {"error", std::string(st.message())}});
  }
}

DeliveryResult Notifier::Deliver(const NotificationRecord& row) {
  absl::StatusOr<store::SecurityContactRecord> contact = store::ReadResult(
      store_,
      [&](Transaction& tx) { return tx.Incidents().GetContact(row.tenant_id, row.contact_id); });
  if (absl::IsNotFound(contact.status())) {
    return Permanent("the security contact was deleted", "contact_deleted");
  }
  if (!contact.ok()) return Retry("the store was not available", "store");
  if (contact->type != row.channel) {
    return Permanent("the security contact is not of the notification's channel",
                     "channel_mismatch");
  }
  if (row.channel == store::kContactWebhook) {
    absl::StatusOr<std::string> secret =
        sealer_.Open(contact->sealed_secret, ContactSecretAad(row.tenant_id, contact->id));
    if (!secret.ok()) return Permanent("the signing secret cannot be unsealed", "secret");
    absl::StatusOr<std::vector<std::pair<std::string, std::string>>> headers =
        WebhookHeaders(*secret, row.id, clock_.Now(), row.payload_json);
    if (!headers.ok()) return Permanent("the signing secret is not usable", "secret");
    return webhooks_.Post(WebhookRequest{.url = contact->address,
                                         .headers = *std::move(headers),
                                         .body = row.payload_json,
                                         .cancel = &cancel_});
  }
  if (row.channel == store::kContactEmail) {
    if (mail_ == nullptr || options_.mail_from.empty()) {
      return Retry("no SMTP relay is configured (notify.smtp_url and notify.mail_from)",
                   "smtp_config");
    }
    absl::StatusOr<MailMessage> message = NotificationMail(
        row, contact->address, options_.mail_from, options_.base_url, clock_.Now());
    if (!message.ok()) {
      return Retry("the e-mail cannot be written (check notify.mail_from)", "bad_message");
    }
    message->cancel = &cancel_;
    return mail_->Send(*message);
  }
  return Permanent("unknown channel", "channel_unknown");
}

absl::Status Notifier::Record(const NotificationRecord& row, const DeliveryResult& result) {
  return store_.Write([&](Transaction& tx) -> absl::Status {
    absl::StatusOr<NotificationRecord> found =
        tx.Incidents().GetNotification(row.tenant_id, row.id);
    if (absl::IsNotFound(found.status())) return absl::OkStatus();
    RETURN_IF_ERROR(found.status());
    NotificationRecord n = *std::move(found);
    // Another process may have finished the row after this one's lease lapsed: its word stands.
    if (n.status != store::kNotificationPending) return absl::OkStatus();
    const absl::Time now = clock_.Now();
    n.lease_until.reset();
    std::string failure_reason;
    switch (result.outcome) {
      case DeliveryOutcome::kCancelled:
        return tx.Incidents().UpdateNotification(n);
      case DeliveryOutcome::kDelivered:
        n.attempts += 1;
        n.status = std::string(store::kNotificationDelivered);
        n.delivered = now;
        n.last_error.clear();
        break;
      case DeliveryOutcome::kRetry:
        n.last_error = Shorten(result.error);
        n.next_attempt = now + Backoff(n.attempts, options_.backoff_base, options_.backoff_cap);
        n.attempts += 1;
        if (n.attempts >= options_.max_attempts) {
          n.status = std::string(store::kNotificationFailed);
          failure_reason = "max_attempts";
        }
        break;
      case DeliveryOutcome::kPermanentFailure:
        n.attempts += 1;
        n.last_error = Shorten(result.error);
        n.status = std::string(store::kNotificationFailed);
        failure_reason = result.reason.empty() ? "permanent_failure" : result.reason;
        break;
    }
    RETURN_IF_ERROR(tx.Incidents().UpdateNotification(n));
    if (n.status == store::kNotificationPending) return absl::OkStatus();

    const bool delivered = n.status == store::kNotificationDelivered;
    audit::EventSpec spec{.event_type = "security.notification.deliver",
                          .display_message = delivered
                                                 ? "Security notification delivered"
                                                 : "Security notification not delivered (gave up)",
                          .severity = delivered ? "INFO" : "WARN",
                          .outcome = std::string(delivered ? audit::kSuccess : audit::kFailure),
                          .reason = failure_reason,
                          .targets = {{n.id, "SecurityNotification", n.channel, n.incident_id}},
                          .debug_data = {{"notificationId", n.id},
                                         {"incidentId", n.incident_id},
                                         {"contactId", n.contact_id},
                                         {"channel", n.channel},
                                         {"attempts", std::to_string(n.attempts)}}};
    if (result.status != 0) spec.debug_data["responseStatus"] = std::to_string(result.status);
    if (!delivered) {
      spec.debug_data["lastError"] = n.last_error;
      if (!result.reason.empty()) spec.debug_data["lastReason"] = result.reason;
    }
    const audit::RequestContext ctx = SystemContext();
    RETURN_IF_ERROR(
        tx.Events().Append(audit::MakeEvent(n.tenant_id, ctx, spec, clock_, random_)).status());
    spec.debug_data["tenantId"] = n.tenant_id.value();
    const TenantId provider(std::string(store::kProviderLogId));
    return tx.Events().Append(audit::MakeEvent(provider, ctx, spec, clock_, random_)).status();
  });
}

absl::Status Notifier::ReleaseLease(const NotificationRecord& row) {
  return store_.Write([&](Transaction& tx) -> absl::Status {
    absl::StatusOr<NotificationRecord> found =
        tx.Incidents().GetNotification(row.tenant_id, row.id);
    if (absl::IsNotFound(found.status())) return absl::OkStatus();
    RETURN_IF_ERROR(found.status());
    if (found->status != store::kNotificationPending || !found->lease_until.has_value()) {
      return absl::OkStatus();
    }
    found->lease_until.reset();
    return tx.Incidents().UpdateNotification(*found);
  });
}

}  // namespace custos::incident
