#pragma once

// The public status feed: security and availability notices of the provider, published as
// JSON (/status.json) and as an Atom 1.0 feed (RFC 4287, /status.atom). Notices never name a
// tenant; that is the publisher's duty (the feed cannot tell a tenant name from other words).
//
// Events in the provider log: status.notice.publish and status.notice.update.
// Errors carry the management API's codes: kInvalidArgument E0000001, kNotFound E0000007.
// Thread-safe: holds only references to thread-safe services.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "audit/event.h"
#include "common/clock.h"
#include "common/json.h"
#include "crypto/random.h"
#include "store/records.h"
#include "store/store.h"

namespace custos::incident {

inline constexpr size_t kMaxNoticeTitleBytes = 200;
inline constexpr size_t kMaxNoticeBodyBytes = 10000;

// A notice as its publisher writes it.
struct NoticeDraft {
  std::string kind;   // store::kNoticeSecurity or store::kNoticeAvailability
  std::string title;  // 1..200 bytes, one line
  std::string body;   // 1..10000 bytes; line breaks and tabs allowed, other controls not
};

// kInvalidArgument (E0000001) naming the field that is wrong.
absl::Status ValidateNotice(const NoticeDraft& draft);

// Publishes inside the caller's transaction (an incident's notify step does, so the notice
// and the notifications commit together): validates, inserts the notice (published = updated
// = now) and appends status.notice.publish to the provider log.
absl::StatusOr<store::StatusNoticeRecord> PublishNotice(store::Transaction& tx, const Clock& clock,
                                                        crypto::Random& random,
                                                        const audit::RequestContext& ctx,
                                                        const NoticeDraft& draft,
                                                        std::string_view incident_id = "");

class StatusFeed {
 public:
  StatusFeed(store::Store& store, const Clock& clock, crypto::Random& random);

  absl::StatusOr<store::StatusNoticeRecord> Publish(const audit::RequestContext& ctx,
                                                    const NoticeDraft& draft);
  // Replaces kind, title and body; `updated` becomes now, `published` and the incident stay.
  absl::StatusOr<store::StatusNoticeRecord> Update(const audit::RequestContext& ctx,
                                                   std::string_view id, const NoticeDraft& draft);
  // The `limit` (> 0) newest notices, newest first.
  absl::StatusOr<std::vector<store::StatusNoticeRecord>> List(int limit);

 private:
  store::Store& store_;
  const Clock& clock_;
  crypto::Random& random_;
};

// {id, kind, title, body, published, updated}
Json NoticeView(const store::StatusNoticeRecord& notice);
// {"notices": [NoticeView...]} in the given order.
Json FeedJson(const std::vector<store::StatusNoticeRecord>& notices);
// An Atom 1.0 document: one entry per notice (id, title, published, updated, category = kind,
// content type="text"), feed <updated> = the newest notice's updated, or `now` when there is
// none. Text is XML-escaped; characters XML cannot carry are dropped. `base_url` makes the ids
// and the self link ("http://host:port").
std::string FeedAtom(const std::vector<store::StatusNoticeRecord>& notices,
                     std::string_view base_url, absl::Time now);

}  // namespace custos::incident
