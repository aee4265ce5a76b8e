#include "incident/status_feed.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "common/errors.h"
#include "common/html.h"
#include "common/status_macros.h"
#include "common/time_format.h"

namespace custos::incident {
namespace {

using store::Transaction;

// Notices are few (a handful a year); Update finds one among this many newest.
constexpr int kNoticeSearchLimit = 100000;

absl::Status Invalid(std::string_view field, std::string message) {
  return ValidationError(fmt::format("Api validation failed: {}", field),
                         {fmt::format("{}: {}", field, message)});
}

bool HasControl(std::string_view s, bool allow_breaks) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (allow_breaks && (c == '\n' || c == '\r' || c == '\t')) continue;
    if (u < 0x20 || u == 0x7F) return true;
  }
  return false;
}

audit::Principal NoticePrincipal(const store::StatusNoticeRecord& n) {
  return {n.id, "StatusNotice", n.kind, n.title};
}

const TenantId& ProviderLog() {
  static const TenantId* id = new TenantId(std::string(store::kProviderLogId));
  return *id;
}

// XML 1.0 text: escaped, and without the characters XML cannot hold (controls other than tab
// and line breaks). Input is UTF-8 (the API accepts nothing else), so other bytes pass through.
// Atom wants RFC 3339; whole seconds are enough and read better in feed readers.
std::string AtomTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace

absl::Status ValidateNotice(const NoticeDraft& d) {
  if (d.kind != store::kNoticeSecurity && d.kind != store::kNoticeAvailability) {
    return Invalid("kind", "must be security or availability");
  }
  if (d.title.empty() || d.title.size() > kMaxNoticeTitleBytes || HasControl(d.title, false)) {
    return Invalid("title", fmt::format("must be 1 to {} bytes on one line", kMaxNoticeTitleBytes));
  }
  if (d.body.empty() || d.body.size() > kMaxNoticeBodyBytes || HasControl(d.body, true)) {
    return Invalid("body", fmt::format("must be 1 to {} bytes without control characters other "
                                       "than line breaks and tabs",
                                       kMaxNoticeBodyBytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<store::StatusNoticeRecord> PublishNotice(Transaction& tx, const Clock& clock,
                                                        crypto::Random& random,
                                                        const audit::RequestContext& ctx,
                                                        const NoticeDraft& draft,
                                                        std::string_view incident_id) {
  RETURN_IF_ERROR(ValidateNotice(draft));
  const absl::Time now = clock.Now();
  store::StatusNoticeRecord notice{.id = random.Id(store::kStatusNoticeIdPrefix),
                                   .kind = draft.kind,
                                   .title = draft.title,
                                   .body = draft.body,
                                   .incident_id = std::string(incident_id),
                                   .published = now,
                                   .updated = now};
  RETURN_IF_ERROR(tx.Incidents().InsertNotice(notice));
  audit::EventSpec spec{.event_type = "status.notice.publish",
                        .display_message = "Publish status notice",
                        .targets = {NoticePrincipal(notice)},
                        .debug_data = {{"kind", notice.kind}}};
  if (!notice.incident_id.empty()) spec.debug_data["incidentId"] = notice.incident_id;
  RETURN_IF_ERROR(
      tx.Events().Append(audit::MakeEvent(ProviderLog(), ctx, spec, clock, random)).status());
  return notice;
}

StatusFeed::StatusFeed(store::Store& store, const Clock& clock, crypto::Random& random)
    : store_(store), clock_(clock), random_(random) {}

absl::StatusOr<store::StatusNoticeRecord> StatusFeed::Publish(const audit::RequestContext& ctx,
                                                              const NoticeDraft& draft) {
  RETURN_IF_ERROR(ValidateNotice(draft));
  store::StatusNoticeRecord notice;
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(notice, PublishNotice(tx, clock_, random_, ctx, draft));
    return absl::OkStatus();
  }));
  return notice;
}

absl::StatusOr<store::StatusNoticeRecord> StatusFeed::Update(const audit::RequestContext& ctx,
                                                             std::string_view id,
                                                             const NoticeDraft& draft) {
  RETURN_IF_ERROR(ValidateNotice(draft));
  store::StatusNoticeRecord notice;
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<store::StatusNoticeRecord> all,
                     tx.Incidents().ListNotices(kNoticeSearchLimit));
    auto it = std::find_if(all.begin(), all.end(),
                           [&](const store::StatusNoticeRecord& n) { return n.id == id; });
    if (it == all.end()) return NotFoundError(fmt::format("{} (StatusNotice)", id));
    notice = std::move(*it);
    notice.kind = draft.kind;
    notice.title = draft.title;
    notice.body = draft.body;
    notice.updated = clock_.Now();
    RETURN_IF_ERROR(tx.Incidents().UpdateNotice(notice));
    audit::EventSpec spec{.event_type = "status.notice.update",
                          .display_message = "Update status notice",
                          .targets = {NoticePrincipal(notice)},
                          .debug_data = {{"kind", notice.kind}}};
    return tx.Events().Append(audit::MakeEvent(ProviderLog(), ctx, spec, clock_, random_)).status();
  }));
  return notice;
}

absl::StatusOr<std::vector<store::StatusNoticeRecord>> StatusFeed::List(int limit) {
  if (limit <= 0) return Invalid("limit", "must be positive");
  return store::ReadResult(store_,
                           [&](Transaction& tx) { return tx.Incidents().ListNotices(limit); });
}

Json NoticeView(const store::StatusNoticeRecord& n) {
  return {{"id", n.id},
          {"kind", n.kind},
          {"title", n.title},
          {"body", n.body},
          {"published", FormatRfc3339(n.published)},
          {"updated", FormatRfc3339(n.updated)}};
}

Json FeedJson(const std::vector<store::StatusNoticeRecord>& notices) {
  Json items = Json::array();
  for (const store::StatusNoticeRecord& n : notices) items.push_back(NoticeView(n));
  return {{"notices", std::move(items)}};
}

std::string FeedAtom(const std::vector<store::StatusNoticeRecord>& notices,
                     std::string_view base_url, absl::Time now) {
  absl::Time updated = notices.empty() ? now : notices.front().updated;
  for (const store::StatusNoticeRecord& n : notices) updated = std::max(updated, n.updated);
  const std::string base = HtmlEscape(base_url);
  std::string out = fmt::format(
      "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
      "<feed xmlns=\"http://www.w3.org/2005/Atom\">\n"
      "  <id>{0}/status.atom</id>\n"
      "  <title>Custos status</title>\n"
      "  <subtitle>Security and availability notices</subtitle>\n"
      "  <updated>{1}</updated>\n"
      "  <author><name>Custos</name></author>\n"
      "  <link rel=\"self\" type=\"application/atom+xml\" href=\"{0}/status.atom\"/>\n"
      "  <link rel=\"alternate\" type=\"application/json\" href=\"{0}/status.json\"/>\n",
      base, AtomTime(updated));
  for (const store::StatusNoticeRecord& n : notices) {
    out += fmt::format(
        "  <entry>\n"
        "    <id>{0}/status.json#{1}</id>\n"
        "    <title type=\"text\">{2}</title>\n"
        "    <published>{3}</published>\n"
        "    <updated>{4}</updated>\n"
        "    <category term=\"{5}\"/>\n"
        "    <content type=\"text\">{6}</content>\n"
        "  </entry>\n",
        base, HtmlEscape(n.id), HtmlEscape(n.title), AtomTime(n.published), AtomTime(n.updated),
        HtmlEscape(n.kind), HtmlEscape(n.body));
  }
  out += "</feed>\n";
  return out;
}

}  // namespace custos::incident
