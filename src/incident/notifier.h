#pragma once

// The notification outbox worker. Incidents' notify step writes outbox rows
// (store::NotificationRecord, status PENDING); the Notifier delivers them to the tenants'
// security contacts and records how that went. Nothing lives only in memory: a row is leased in
// the store while it is being delivered (lease_until), so a process killed mid-delivery leaves a
// row that becomes due again once its lease lapses, and is delivered again with the same
// webhook-id (the notification id: the receiver's idempotency key) or Message-ID.
//
// Each attempt ends in one of:
//   delivered   status DELIVERED, `delivered` set                 event SUCCESS
//   retry       attempts + 1, next_attempt = now + min(backoff_base * 2^attempts, backoff_cap),
//               last_error set; FAILED once attempts reaches max_attempts   event FAILURE
//   permanent   (HTTP 410, unknown mailbox, contact deleted, ...) status FAILED   event FAILURE
// where `attempts` in the backoff is the count before this attempt (1 s, 2 s, 4 s, ... by
// default). The event is security.notification.deliver, in the tenant's log and in the provider
// log, once per row (when it is DELIVERED or FAILED; retries are counted in it, not logged one
// by one).
//
// Webhooks are signed per Standard Webhooks (webhook.h) with the contact's secret; the body is
// the row's payload_json as it is. E-mail (mailer.h) says the same in plain text.

#include <atomic>
#include <deque>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "crypto/random.h"
#include "crypto/sealer.h"
#include "incident/mailer.h"
#include "incident/webhook.h"
#include "store/records.h"
#include "store/store.h"

namespace custos::incident {

struct NotifierOptions {
  int workers = 8;  // deliveries in flight at once, 1..64
  // How long a row stays leased to this process; must outlast one delivery attempt (the HTTP
  // and SMTP timeouts), or another process could deliver it a second time meanwhile.
  absl::Duration lease = absl::Seconds(30);
  absl::Duration poll_interval = absl::Seconds(1);  // how often an idle worker looks for rows
  absl::Duration backoff_base = absl::Seconds(1);
  absl::Duration backoff_cap = absl::Hours(1);
  int max_attempts = 12;  // FAILED after this many attempts
  std::string mail_from;  // the From of e-mails; empty: e-mail cannot be sent (rows retry)
  std::string base_url;   // makes the links in e-mails absolute; empty leaves them as paths
};

// The wait before the next attempt after `attempts` earlier ones: min(base * 2^attempts, cap).
absl::Duration Backoff(int attempts, absl::Duration base, absl::Duration cap);

// The e-mail of a notification row to `to` (the contact's address): subject "[Custos security]
// <title>", a plain-text body with the facts of the payload, Message-ID "<id>@<mail_from's
// domain>" (the same on every attempt). kInvalidArgument when `from` is not a mail address.
absl::StatusOr<MailMessage> NotificationMail(const store::NotificationRecord& notification,
                                             std::string_view to, std::string_view from,
                                             std::string_view base_url, absl::Time date);

// Thread-safe. Start and Stop are called from one thread (the one that owns the Notifier).
class Notifier {
 public:
  // Every reference must outlive the Notifier. `mail` may be nullptr (no relay configured).
  Notifier(store::Store& store, const crypto::Sealer& sealer, const Clock& clock,
           crypto::Random& random, WebhookSender& webhooks, MailSender* mail,
           NotifierOptions options);
  ~Notifier();  // Stops.

  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Starts the worker threads: one that leases due rows as workers fall idle, and `workers`
  // that deliver them. A second Start does nothing.
  void Start();
  // Stops taking rows, cancels the deliveries in flight (their rows stay PENDING without an
  // attempt counted), waits for the threads, and gives the rows it had leased but not started
  // back to the store. The store must still be open. Does nothing when not started.
  void Stop();
  // A row was just written: look now rather than at the next poll.
  void Wake();

  // For tests, while not started: leases up to `workers` due rows, delivers them in parallel
  // and records each. Returns how many rows it handled; kFailedPrecondition when started.
  absl::StatusOr<int> RunOnce();

 private:
  bool CanDispatch() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || idle_ > 0; }
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); }
  bool StopOrWake() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || woken_; }

  void DispatchLoop();
  void WorkLoop();
  absl::StatusOr<std::vector<store::NotificationRecord>> Lease(int limit);
  // Delivers one leased row and records the outcome; failures to record are logged (the lease
  // then lapses and the row is tried again).
  void Handle(const store::NotificationRecord& row);
  DeliveryResult Deliver(const store::NotificationRecord& row);
  absl::Status Record(const store::NotificationRecord& row, const DeliveryResult& result);
  absl::Status ReleaseLease(const store::NotificationRecord& row);

  store::Store& store_;
  const crypto::Sealer& sealer_;
  const Clock& clock_;
  crypto::Random& random_;
  WebhookSender& webhooks_;
  MailSender* mail_;
  const NotifierOptions options_;
  std::atomic<bool> cancel_{false};  // set by Stop: deliveries in flight give up

  absl::Mutex mu_;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  int idle_ ABSL_GUARDED_BY(mu_) = 0;  // workers free, less the rows queued for them
  std::deque<store::NotificationRecord> queue_ ABSL_GUARDED_BY(mu_);
  // Rows queued or being delivered ("tenant/id"): a row whose lease lapsed while this process
  // still delivers it is not handed to a second worker.
  absl::flat_hash_set<std::string> in_flight_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

}  // namespace custos::incident
