#include "store/postgres/incident_repository.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "common/status_macros.h"
#include "fmt/format.h"
#include "store/postgres/pg.h"

namespace custos::store::postgres {
namespace {

absl::Status CheckLimit(int limit) {
  if (limit > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(fmt::format("page limit must be positive, got {}", limit));
}

absl::Status RequireChanged(int changed, std::string_view what) {
  if (changed > 0) return absl::OkStatus();
  return absl::NotFoundError(fmt::format("{} not found", what));
}

// A JSON array of strings, for jsonb_array_elements_text(): one parameter carries a list of
// any length.
std::string JsonArray(const std::vector<std::string_view>& values) {
  std::string out = "[";
  for (std::string_view value : values) {
    if (out.size() > 1) out += ',';
    out += '"';
    for (const char c : value) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
          } else {
            out += c;
          }
      }
    }
    out += '"';
  }
  out += ']';
  return out;
}

// ---- Support activity ----

constexpr std::string_view kActivityColumns =
    "seq, published, tenant_id, tenant_event_uuid, provider_event_uuid, event_type, outcome, "
    "reason, actor_id, by_operator, operator_id, vendor_id, device_id, session_id, ip, grant_id, "
    "case_id, resource, fields";

SupportActivityRecord ReadActivity(const Statement& stmt) {
  return SupportActivityRecord{.seq = stmt.Int(0),
                               .published = stmt.Time(1),
                               .tenant_id = TenantId(stmt.Text(2)),
                               .tenant_event_uuid = stmt.Text(3),
                               .provider_event_uuid = stmt.Text(4),
                               .event_type = stmt.Text(5),
                               .outcome = stmt.Text(6),
                               .reason = stmt.Text(7),
                               .actor_id = stmt.Text(8),
                               .by_operator = stmt.Int(9) != 0,
                               .operator_id = stmt.Text(10),
                               .vendor_id = stmt.Text(11),
                               .device_id = stmt.Text(12),
                               .session_id = stmt.Text(13),
                               .ip = stmt.Text(14),
                               .grant_id = stmt.Text(15),
                               .case_id = stmt.Text(16),
                               .resource = stmt.Text(17),
                               .fields = stmt.Text(18)};
}

// One OR-ed filter of ActivityQuery: its column.
struct ActivityFilter {
  std::string_view column;
  const std::vector<std::string>* values;
};

// Distinct addresses by a loose scan of support_activity_by_ip: each step seeks the next larger
// ip, and each ip is kept when one of its rows lies in the window ([$1, $2)). Its cost follows
// the number of distinct addresses, not the rows in the window.
constexpr std::string_view kListActivityIps =
    "WITH RECURSIVE seen(ip) AS ("
    " SELECT (SELECT ip FROM support_activity WHERE ip > '' ORDER BY ip LIMIT 1)"
    " UNION ALL"
    " SELECT (SELECT s.ip FROM support_activity s WHERE s.ip > seen.ip ORDER BY s.ip LIMIT 1)"
    " FROM seen WHERE seen.ip IS NOT NULL) "
    "SELECT ip FROM seen WHERE ip IS NOT NULL AND EXISTS (SELECT 1 FROM support_activity s"
    " WHERE s.ip = seen.ip AND s.published >= $1 AND s.published < $2)";

// ---- Incidents ----

constexpr std::string_view kIncidentColumns =
    "id, title, status, indicators_json, window_start, window_end, compromise_start, "
    "compromise_end, scope_json, notes, created, updated, created_by";

IncidentRecord ReadIncident(const Statement& stmt) {
  return IncidentRecord{.id = stmt.Text(0),
                        .title = stmt.Text(1),
                        .status = stmt.Text(2),
                        .indicators_json = stmt.Text(3),
                        .window_start = stmt.Time(4),
                        .window_end = stmt.Time(5),
                        .compromise_start = stmt.Time(6),
                        .compromise_end = stmt.Time(7),
                        .scope_json = stmt.Text(8),
                        .notes = stmt.Text(9),
                        .created = stmt.Time(10),
                        .updated = stmt.Time(11),
                        .created_by = stmt.Text(12)};
}

// ---- Contacts ----

constexpr std::string_view kContactColumns =
    "id, tenant_id, type, name, address, sealed_secret, created";

SecurityContactRecord ReadContact(const Statement& stmt) {
  return SecurityContactRecord{.id = stmt.Text(0),
                               .tenant_id = TenantId(stmt.Text(1)),
                               .type = stmt.Text(2),
                               .name = stmt.Text(3),
                               .address = stmt.Text(4),
                               .sealed_secret = stmt.Blob(5),
                               .created = stmt.Time(6)};
}

// ---- Notifications ----

constexpr std::string_view kNotificationColumns =
    "id, incident_id, tenant_id, contact_id, channel, payload_json, status, attempts, "
    "next_attempt, lease_until, last_error, created, delivered, acknowledged, acknowledged_by";

NotificationRecord ReadNotification(const Statement& stmt) {
  return NotificationRecord{.id = stmt.Text(0),
                            .incident_id = stmt.Text(1),
                            .tenant_id = TenantId(stmt.Text(2)),
                            .contact_id = stmt.Text(3),
                            .channel = stmt.Text(4),
                            .payload_json = stmt.Text(5),
                            .status = stmt.Text(6),
                            .attempts = static_cast<int>(stmt.Int(7)),
                            .next_attempt = stmt.Time(8),
                            .lease_until = stmt.OptionalTime(9),
                            .last_error = stmt.Text(10),
                            .created = stmt.Time(11),
                            .delivered = stmt.OptionalTime(12),
                            .acknowledged = stmt.OptionalTime(13),
                            .acknowledged_by = stmt.Text(14)};
}

// ---- Status notices ----

StatusNoticeRecord ReadNotice(const Statement& stmt) {
  return StatusNoticeRecord{.id = stmt.Text(0),
                            .kind = stmt.Text(1),
                            .title = stmt.Text(2),
                            .body = stmt.Text(3),
                            .incident_id = stmt.Text(4),
                            .published = stmt.Time(5),
                            .updated = stmt.Time(6)};
}

}  // namespace

PgIncidentRepository::PgIncidentRepository(Connection& conn) : conn_(conn) {}

// ---- Support activity ----

absl::StatusOr<int64_t> PgIncidentRepository::InsertActivity(const SupportActivityRecord& row) {
  ASSIGN_OR_RETURN(
      Statement stmt,
      conn_.Prepare(
          "INSERT INTO support_activity (seq, published, tenant_id, tenant_event_uuid, "
          "provider_event_uuid, event_type, outcome, reason, actor_id, by_operator, "
          "operator_id, vendor_id, device_id, session_id, ip, grant_id, case_id, "
          "resource, fields) VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM support_activity), "
          "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, "
          "$18) RETURNING seq",
          "inserting support activity"));
  stmt.BindTime(1, row.published);
  stmt.BindText(2, row.tenant_id.value());
  stmt.BindText(3, row.tenant_event_uuid);
  stmt.BindText(4, row.provider_event_uuid);
  stmt.BindText(5, row.event_type);
  stmt.BindText(6, row.outcome);
  stmt.BindText(7, row.reason);
  stmt.BindText(8, row.actor_id);
  stmt.BindInt(9, row.by_operator ? 1 : 0);
  stmt.BindText(10, row.operator_id);
  stmt.BindText(11, row.vendor_id);
  stmt.BindText(12, row.device_id);
  stmt.BindText(13, row.session_id);
  stmt.BindText(14, row.ip);
  stmt.BindText(15, row.grant_id);
  stmt.BindText(16, row.case_id);
  stmt.BindText(17, row.resource);
  stmt.BindText(18, row.fields);
  ASSIGN_OR_RETURN(const bool inserted, stmt.Step());
  if (!inserted) return absl::InternalError("inserting support activity: no seq came back");
  return stmt.Int(0);
}

absl::StatusOr<std::vector<SupportActivityRecord>> PgIncidentRepository::QueryActivity(
    const ActivityQuery& query) {
  RETURN_IF_ERROR(CheckLimit(query.limit));
  int64_t from = CeilMicros(query.from);
  const int64_t to = CeilMicros(query.to);

  // Paging resumes after the cursor row's (published, seq).
  std::optional<int64_t> cursor_published;
  if (query.after_seq != 0) {
    ASSIGN_OR_RETURN(Statement cursor,
                     conn_.Prepare("SELECT published FROM support_activity WHERE seq = $1",
                                   "reading the support activity cursor"));
    cursor.BindInt(1, query.after_seq);
    ASSIGN_OR_RETURN(const bool found, cursor.Step());
    if (!found) {
      return absl::InvalidArgumentError(
          fmt::format("after_seq {} names no support activity row", query.after_seq));
    }
    cursor_published = cursor.Int(0);
    from = std::max(from, *cursor_published);
  }
  const std::string_view after =
      cursor_published.has_value() ? " AND (published > $3::bigint OR seq > $4::bigint)" : "";

  const ActivityFilter filters[] = {
      {"operator_id", &query.operator_ids},
      {"vendor_id", &query.vendor_ids},
      {"device_id", &query.device_ids},
      {"session_id", &query.session_ids},
      {"ip", &query.ips},
  };
  bool filtered = false;
  std::vector<std::string> lists;  // JSON arrays, bound from $6 on
  std::string branches;
  for (const ActivityFilter& filter : filters) {
    if (filter.values->empty()) continue;
    filtered = true;
    std::vector<std::string_view> values;
    for (const std::string& value : *filter.values) {
      if (!value.empty()) values.push_back(value);
    }
    if (values.empty()) continue;
    lists.push_back(JsonArray(values));
    // Each branch reads only its own index, which holds published and seq (the rowid), so the
    // matches are found without touching the table, whatever statistics the planner has (with
    // ANALYZE's, it would otherwise prefer scanning the window by time).
    if (!branches.empty()) branches += " UNION ALL ";
    branches += fmt::format(
        "SELECT seq FROM support_activity WHERE {} IN (SELECT "
        "jsonb_array_elements_text(${}::jsonb)) "
        "AND published >= $1 AND published < $2{}",
        filter.column, 5 + lists.size(), after);
  }
  if (filtered && lists.empty()) return std::vector<SupportActivityRecord>();

  const std::string_view by_operator = query.by_operator_only ? " AND by_operator = 1" : "";
  const std::string sql =
      filtered ? fmt::format(
                     "SELECT {} FROM support_activity WHERE seq IN ({}){} ORDER BY "
                     "published, seq LIMIT $5",
                     kActivityColumns, branches, by_operator)
               : fmt::format(
                     "SELECT {} FROM support_activity "
                     "WHERE published >= $1 AND published < $2{}{} ORDER BY published, "
                     "seq LIMIT $5",
                     kActivityColumns, after, by_operator);
  // The shapes are few (which filters, a cursor, by_operator): each is prepared once per
  // connection.
  ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare(sql, "querying support activity"));
  stmt.BindInt(1, from);
  stmt.BindInt(2, to);
  if (cursor_published.has_value()) {
    stmt.BindInt(3, *cursor_published);
    stmt.BindInt(4, query.after_seq);
  }
  stmt.BindInt(5, query.limit);
  for (size_t i = 0; i < lists.size(); ++i) stmt.BindText(static_cast<int>(6 + i), lists[i]);
  return ReadAll(stmt, &ReadActivity);
}

absl::StatusOr<std::vector<std::string>> PgIncidentRepository::ListActivityIps(absl::Time from,
                                                                               absl::Time to) {
  ASSIGN_OR_RETURN(Statement stmt,
                   conn_.Prepare(kListActivityIps, "listing support activity addresses"));
  stmt.BindInt(1, CeilMicros(from));
  stmt.BindInt(2, CeilMicros(to));
  std::vector<std::string> ips;
  while (true) {
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return ips;
    ips.push_back(stmt.Text(0));
  }
}

// ---- Incidents ----

absl::Status PgIncidentRepository::Insert(const IncidentRecord& incident) {
  ASSIGN_OR_RETURN(
      Statement stmt,
      conn_.Prepare("INSERT INTO incidents (id, title, status, indicators_json, window_start, "
                    "window_end, compromise_start, compromise_end, scope_json, notes, created, "
                    "updated, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
                    "$12, $13)",
                    "inserting incident"));
  stmt.BindText(1, incident.id);
  stmt.BindText(2, incident.title);
  stmt.BindText(3, incident.status);
  stmt.BindText(4, incident.indicators_json);
  stmt.BindTime(5, incident.window_start);
  stmt.BindTime(6, incident.window_end);
  stmt.BindTime(7, incident.compromise_start);
  stmt.BindTime(8, incident.compromise_end);
  stmt.BindText(9, incident.scope_json);
  stmt.BindText(10, incident.notes);
  stmt.BindTime(11, incident.created);
  stmt.BindTime(12, incident.updated);
  stmt.BindText(13, incident.created_by);
  return stmt.Run().status();
}

absl::StatusOr<IncidentRecord> PgIncidentRepository::Get(std::string_view id) {
  static const std::string sql =
      fmt::format("SELECT {} FROM incidents WHERE id = $1", kIncidentColumns);
  ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare(sql, "reading incident"));
  stmt.BindText(1, id);
  return ReadOne(stmt, &ReadIncident, "incident");
}

absl::StatusOr<std::vector<IncidentRecord>> PgIncidentRepository::List(int limit) {
  RETURN_IF_ERROR(CheckLimit(limit));
  static const std::string sql = fmt::format(
      "SELECT {} FROM incidents ORDER BY created DESC, id DESC LIMIT $1", kIncidentColumns);
  ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare(sql, "listing incidents"));
  stmt.BindInt(1, limit);
  return ReadAll(stmt, &ReadIncident);
}

absl::Status PgIncidentRepository::Update(const IncidentRecord& incident) {
  ASSIGN_OR_RETURN(
      Statement stmt,
      conn_.Prepare(
          "UPDATE incidents SET title = $2, status = $3, indicators_json = $4, "
          "window_start = $5, window_end = $6, compromise_start = $7, compromise_end = $8, "
          "scope_json = $9, notes = $10, updated = $11 WHERE id = $1",
          "updating incident"));
  stmt.BindText(1, incident.id);
  stmt.BindText(2, incident.title);
  stmt.BindText(3, incident.status);
  stmt.BindText(4, incident.indicators_json);
  stmt.BindTime(5, incident.window_start);
  stmt.BindTime(6, incident.window_end);
  stmt.BindTime(7, incident.compromise_start);
  stmt.BindTime(8, incident.compromise_end);
  stmt.BindText(9, incident.scope_json);
  stmt.BindText(10, incident.notes);
  stmt.BindTime(11, incident.updated);
  ASSIGN_OR_RETURN(const int changed, stmt.Run());
  return RequireChanged(changed, "incident");
}

// ---- Security contacts ----

absl::Status PgIncidentRepository::InsertContact(const SecurityContactRecord& contact) {
  ASSIGN_OR_RETURN(Statement stmt,
                   conn_.Prepare("INSERT INTO security_contacts (id, tenant_id, type, name, "
                                 "address, sealed_secret, created) VALUES ($1, $2, $3, $4, $5, $6, "
                                 "$7)",
                                 "inserting security contact"));
  stmt.BindText(1, contact.id);
  stmt.BindText(2, contact.tenant_id.value());
  stmt.BindText(3, contact.type);
  stmt.BindText(4, contact.name);
  stmt.BindText(5, contact.address);
  stmt.BindBlob(6, contact.sealed_secret);
  stmt.BindTime(7, contact.created);
  return stmt.Run().status();
}

absl::StatusOr<std::vector<SecurityContactRecord>> PgIncidentRepository::ListContacts(
    const TenantId& tenant) {
  static const std::string sql = fmt::format(
      "SELECT {} FROM security_contacts WHERE tenant_id = $1 ORDER BY id", kContactColumns);
  ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare(sql, "listing security contacts"));
  stmt.BindText(1, tenant.value());
  return ReadAll(stmt, &ReadContact);
}

absl::StatusOr<SecurityContactRecord> PgIncidentRepository::GetContact(const TenantId& tenant,
                                                                       std::string_view id) {
  static const std::string sql = fmt::format(
      "SELECT {} FROM security_contacts WHERE tenant_id = $1 AND id = $2", kContactColumns);
  ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare(sql, "reading security contact"));
  stmt.BindText(1, tenant.value());
  stmt.BindText(2, id);
  return ReadOne(stmt, &ReadContact, "security contact");
}

absl::Status PgIncidentRepository::DeleteContact(const TenantId& tenant, std::string_view id) {
  ASSIGN_OR_RETURN(Statement stmt,
                   conn_.Prepare("DELETE FROM security_contacts WHERE tenant_id = $1 AND id = $2",
                                 "deleting security contact"));
  stmt.BindText(1, tenant.value());
  stmt.BindText(2, id);
  ASSIGN_OR_RETURN(const int changed, stmt.Run());
  return RequireChanged(changed, "security contact");
}

// ---- Notifications ----

absl::Status PgIncidentRepository::InsertNotification(const NotificationRecord& n) {
  ASSIGN_OR_RETURN(
      Statement stmt,
      conn_.Prepare("INSERT INTO notifications (id, incident_id, tenant_id, contact_id, channel, "
                    "payload_json, status, attempts, next_attempt, lease_until, last_error, "
                    "created, delivered, acknowledged, acknowledged_by) VALUES ($1, $2, $3, $4, "
                    "$5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                    "inserting notification"));
  stmt.BindText(1, n.id);
  stmt.BindText(2, n.incident_id);
  stmt.BindText(3, n.tenant_id.value());
  stmt.BindText(4, n.contact_id);
  stmt.BindText(5, n.channel);
  stmt.BindText(6, n.payload_json);
  stmt.BindText(7, n.status);
  stmt.BindInt(8, n.attempts);
  stmt.BindTime(9, n.next_attempt);
  stmt.BindTime(10, n.lease_until);
  stmt.BindText(11, n.last_error);
  stmt.BindTime(12, n.created);
  stmt.BindTime(13, n.delivered);
  stmt.BindTime(14, n.acknowledged);
  stmt.BindText(15, n.acknowledged_by);
  return stmt.Run().status();
}

absl::StatusOr<std::vector<NotificationRecord>> PgIncidentRepository::ListNotifications(
    std::string_view incident_id) {
  static const std::string sql =
      fmt::format("SELECT {} FROM notifications WHERE incident_id = $1 ORDER BY created, id",
                  kNotificationColumns);
  ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare(sql, "listing notifications"));
  stmt.BindText(1, incident_id);
  return ReadAll(stmt, &ReadNotification);
}

absl::StatusOr<std::vector<NotificationRecord>> PgIncidentRepository::ListNotificationsForTenant(
    const TenantId& tenant) {
  static const std::string sql =
      fmt::format("SELECT {} FROM notifications WHERE tenant_id = $1 ORDER BY created, id",
                  kNotificationColumns);
  ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare(sql, "listing the tenant's notifications"));
  stmt.BindText(1, tenant.value());
  return ReadAll(stmt, &ReadNotification);
}

absl::StatusOr<NotificationRecord> PgIncidentRepository::GetNotification(const TenantId& tenant,
                                                                         std::string_view id) {
  static const std::string sql = fmt::format(
      "SELECT {} FROM notifications WHERE tenant_id = $1 AND id = $2", kNotificationColumns);
  ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare(sql, "reading notification"));
  stmt.BindText(1, tenant.value());
  stmt.BindText(2, id);
  return ReadOne(stmt, &ReadNotification, "notification");
}

absl::Status PgIncidentRepository::UpdateNotification(const NotificationRecord& n) {
  ASSIGN_OR_RETURN(
      Statement stmt,
      conn_.Prepare("UPDATE notifications SET status = $3, attempts = $4, next_attempt = $5, "
                    "lease_until = $6, last_error = $7, delivered = $8, acknowledged = $9, "
                    "acknowledged_by = $10 WHERE tenant_id = $1 AND id = $2",
                    "updating notification"));
  stmt.BindText(1, n.tenant_id.value());
  stmt.BindText(2, n.id);
  stmt.BindText(3, n.status);
  stmt.BindInt(4, n.attempts);
  stmt.BindTime(5, n.next_attempt);
  stmt.BindTime(6, n.lease_until);
  stmt.BindText(7, n.last_error);
  stmt.BindTime(8, n.delivered);
  stmt.BindTime(9, n.acknowledged);
  stmt.BindText(10, n.acknowledged_by);
  ASSIGN_OR_RETURN(const int changed, stmt.Run());
  return RequireChanged(changed, "notification");
}

absl::StatusOr<bool> PgIncidentRepository::AnyDue(absl::Time now) {
  ASSIGN_OR_RETURN(
      Statement stmt,
      conn_.Prepare("SELECT EXISTS (SELECT 1 FROM notifications WHERE status = $1 AND "
                    "next_attempt <= $2 AND (lease_until IS NULL OR lease_until < $2))",
                    "finding due notifications"));
  stmt.BindText(1, kNotificationPending);
  stmt.BindTime(2, now);
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::InternalError("finding due notifications: no answer");
  return stmt.Int(0) != 0;
}

absl::StatusOr<std::vector<NotificationRecord>> PgIncidentRepository::LeaseDue(
    absl::Time now, absl::Time lease_until, int limit) {
  RETURN_IF_ERROR(CheckLimit(limit));
  std::vector<NotificationRecord> due;
  {
    static const std::string sql = fmt::format(
        "SELECT {} FROM notifications WHERE status = $1 AND next_attempt <= $2 AND "
        "(lease_until IS NULL OR lease_until < $2) ORDER BY next_attempt, tenant_id, id LIMIT $3 "
        // Refused in a read-only transaction, even when no row is due: a lease must be written.
        "FOR UPDATE SKIP LOCKED",
        kNotificationColumns);
    ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare(sql, "finding due notifications"));
    stmt.BindText(1, kNotificationPending);
    stmt.BindTime(2, now);
    stmt.BindInt(3, limit);
    ASSIGN_OR_RETURN(due, ReadAll(stmt, &ReadNotification));
  }
  ASSIGN_OR_RETURN(
      Statement lease,
      conn_.Prepare("UPDATE notifications SET lease_until = $3 WHERE tenant_id = $1 AND id = $2",
                    "leasing notification"));
  for (NotificationRecord& n : due) {
    lease.Reset();
    lease.BindText(1, n.tenant_id.value());
    lease.BindText(2, n.id);
    lease.BindTime(3, lease_until);
    RETURN_IF_ERROR(lease.Run().status());
    n.lease_until = lease_until;
  }
  return due;
}

// ---- Status notices ----

absl::Status PgIncidentRepository::InsertNotice(const StatusNoticeRecord& notice) {
  ASSIGN_OR_RETURN(Statement stmt,
                   conn_.Prepare("INSERT INTO status_notices (id, kind, title, body, incident_id, "
                                 "published, updated) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                                 "inserting status notice"));
  stmt.BindText(1, notice.id);
  stmt.BindText(2, notice.kind);
  stmt.BindText(3, notice.title);
  stmt.BindText(4, notice.body);
  stmt.BindText(5, notice.incident_id);
  stmt.BindTime(6, notice.published);
  stmt.BindTime(7, notice.updated);
  return stmt.Run().status();
}

absl::Status PgIncidentRepository::UpdateNotice(const StatusNoticeRecord& notice) {
  ASSIGN_OR_RETURN(Statement stmt,
                   conn_.Prepare("UPDATE status_notices SET kind = $2, title = $3, body = $4, "
                                 "incident_id = $5, updated = $6 WHERE id = $1",
                                 "updating status notice"));
  stmt.BindText(1, notice.id);
  stmt.BindText(2, notice.kind);
  stmt.BindText(3, notice.title);
  stmt.BindText(4, notice.body);
  stmt.BindText(5, notice.incident_id);
  stmt.BindTime(6, notice.updated);
  ASSIGN_OR_RETURN(const int changed, stmt.Run());
  return RequireChanged(changed, "status notice");
}

absl::StatusOr<std::vector<StatusNoticeRecord>> PgIncidentRepository::ListNotices(int limit) {
  RETURN_IF_ERROR(CheckLimit(limit));
  ASSIGN_OR_RETURN(Statement stmt,
                   conn_.Prepare("SELECT id, kind, title, body, incident_id, published, updated "
                                 "FROM status_notices ORDER BY published DESC, id DESC LIMIT $1",
                                 "listing status notices"));
  stmt.BindInt(1, limit);
  return ReadAll(stmt, &ReadNotice);
}

}  // namespace custos::store::postgres
