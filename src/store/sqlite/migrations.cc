#include "store/sqlite/migrations.h"

#include <sqlite3.h>

#include <string>

#include "absl/status/statusor.h"
#include "common/status_macros.h"
#include "fmt/format.h"

namespace custos::store::sqlite {
namespace {

// Times are INTEGER microseconds since the Unix epoch; optional times are NULL. Tenant data is
// keyed by (tenant_id, id) so that no lookup can reach another tenant's row by id alone, and
// every tenant-data table references tenants(id). Rows that belong to a user go with the user.
constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE tenants (
  id TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created INTEGER NOT NULL
) STRICT;

CREATE TABLE api_tokens (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  name TEXT NOT NULL,
  token_hash TEXT NOT NULL,
  created INTEGER NOT NULL,
  last_used INTEGER,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, token_hash)
) STRICT;

CREATE TABLE users (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  status TEXT NOT NULL,
  login TEXT NOT NULL,
  profile_json TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  created INTEGER NOT NULL,
  activated INTEGER,
  status_changed INTEGER NOT NULL,
  last_login INTEGER,
  last_updated INTEGER NOT NULL,
  password_changed INTEGER,
  failed_sign_ins INTEGER NOT NULL,
  recovery_token_hash TEXT NOT NULL,
  recovery_expires INTEGER,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, login COLLATE NOCASE)
) STRICT;

CREATE TABLE groups (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  created INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  last_membership_updated INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, name)
) STRICT;

CREATE TABLE group_members (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  group_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  PRIMARY KEY (tenant_id, group_id, user_id),
  FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX group_members_by_user ON group_members (tenant_id, user_id, group_id);

CREATE TABLE factors (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  factor_type TEXT NOT NULL,
  provider TEXT NOT NULL,
  status TEXT NOT NULL,
  sealed_secret BLOB NOT NULL,
  last_used_step INTEGER NOT NULL,
  created INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX factors_by_user ON factors (tenant_id, user_id);

CREATE TABLE sessions (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  token_hash TEXT NOT NULL,
  created INTEGER NOT NULL,
  last_active INTEGER NOT NULL,
  expires INTEGER NOT NULL,
  amr TEXT NOT NULL,
  ip_address TEXT NOT NULL,
  user_agent TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, token_hash),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX sessions_by_user ON sessions (tenant_id, user_id);

CREATE TABLE authn_transactions (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  state_token_hash TEXT NOT NULL,
  created INTEGER NOT NULL,
  expires INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, state_token_hash),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX authn_transactions_by_user ON authn_transactions (tenant_id, user_id);

CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  uuid TEXT NOT NULL UNIQUE,
  published INTEGER NOT NULL,
  event_type TEXT NOT NULL,
  json TEXT NOT NULL
) STRICT;
CREATE INDEX users_by_recovery_token ON users (tenant_id, recovery_token_hash)
  WHERE recovery_token_hash <> '';
CREATE INDEX events_by_tenant_seq ON events (tenant_id, seq);
CREATE INDEX events_by_tenant_published ON events (tenant_id, published);
)sql";

// The verifiable System Log. Events of the provider log carry tenant_id 'provider', which is no
// tenants row, so events is rebuilt without its foreign key (SqliteEvents::Append checks the
// tenant instead). The rebuild keeps every seq, and moves the AUTOINCREMENT high-water mark to
// the new table before the old one is dropped (DROP TABLE deletes its sqlite_sequence row;
// RENAME carries it along), so that seq never goes back, even past deleted rows.
//
// An event's position in its log lives in log_entries, apart from the ~1 KB event row, so that
// sequencing never rewrites events. log_outbox holds the last seq that has a position; it starts
// at 0 so that events written before this step are sequenced too.
constexpr std::string_view kSchemaV2 = R"sql(
ALTER TABLE tenants ADD COLUMN log_public INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin';

CREATE TABLE events_new (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id TEXT NOT NULL,
  uuid TEXT NOT NULL UNIQUE,
  published INTEGER NOT NULL,
  event_type TEXT NOT NULL,
  json TEXT NOT NULL
) STRICT;
INSERT INTO events_new (seq, tenant_id, uuid, published, event_type, json)
  SELECT seq, tenant_id, uuid, published, event_type, json FROM events ORDER BY seq;
DELETE FROM sqlite_sequence WHERE name = 'events_new';
UPDATE sqlite_sequence SET name = 'events_new' WHERE name = 'events';
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_by_tenant_seq ON events (tenant_id, seq);
CREATE INDEX events_by_tenant_published ON events (tenant_id, published);

CREATE TABLE provider_tokens (
  id TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  created INTEGER NOT NULL
) STRICT;

CREATE TABLE log_entries (
  log_id TEXT NOT NULL,
  log_index INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (log_id, log_index)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX log_entries_by_seq ON log_entries (seq);

CREATE TABLE log_outbox (
  id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
  sequenced_seq INTEGER NOT NULL
) STRICT;
INSERT INTO log_outbox (id, sequenced_seq) VALUES (1, 0);

CREATE TABLE log_tiles (
  log_id TEXT NOT NULL,
  level INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  width INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (log_id, level, idx)
) STRICT;

CREATE TABLE log_states (
  log_id TEXT NOT NULL PRIMARY KEY,
  origin TEXT NOT NULL,
  size INTEGER NOT NULL,
  root_hash BLOB NOT NULL,
  updated INTEGER NOT NULL
) STRICT;

CREATE TABLE log_checkpoints (
  log_id TEXT NOT NULL,
  size INTEGER NOT NULL,
  root_hash BLOB NOT NULL,
  note TEXT NOT NULL,
  key_id TEXT NOT NULL,
  signed_at INTEGER NOT NULL,
  PRIMARY KEY (log_id, size)
) STRICT, WITHOUT ROWID;

CREATE TABLE log_keys (
  id TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  public_key BLOB NOT NULL,
  sealed_seed BLOB NOT NULL,
  created INTEGER NOT NULL,
  retired INTEGER
) STRICT;
)sql";

// The leaf hash of each event's log entry, computed when the event is made, so that the
// sequencer neither reads the event rows back nor hashes them. NULL for older rows: the
// sequencer hashes those itself.
constexpr std::string_view kSchemaV3 = R"sql(
ALTER TABLE events ADD COLUMN leaf_hash BLOB;
)sql";

// The support access plane. Vendors, operators, devices and their tokens are the provider's;
// cases, requests, grants and confirmations are tenant data, keyed and referenced like the rest.
// Operators and devices reference their vendor, so that none is stored for an unknown one.
// Operator tokens are looked up for revocation by vendor, operator, device or session, and only
// unrevoked ones matter there, so those indexes are partial. access_requests.duration is in
// microseconds.
constexpr std::string_view kSchemaV4 = R"sql(
ALTER TABLE tenants ADD COLUMN support_policy TEXT NOT NULL DEFAULT 'approval_required';

CREATE TABLE vendors (
  id TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  employing_entity TEXT NOT NULL,
  country TEXT NOT NULL,
  status TEXT NOT NULL,
  created INTEGER NOT NULL,
  status_changed INTEGER NOT NULL
) STRICT;

CREATE TABLE operators (
  user_id TEXT NOT NULL PRIMARY KEY,
  vendor_id TEXT NOT NULL REFERENCES vendors (id),
  status TEXT NOT NULL,
  created INTEGER NOT NULL,
  status_changed INTEGER NOT NULL
) STRICT;
CREATE INDEX operators_by_vendor ON operators (vendor_id, user_id);

CREATE TABLE devices (
  id TEXT NOT NULL PRIMARY KEY,
  vendor_id TEXT NOT NULL REFERENCES vendors (id),
  name TEXT NOT NULL,
  public_jwk TEXT NOT NULL,
  jkt TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL,
  enrolled INTEGER NOT NULL,
  status_changed INTEGER NOT NULL,
  posture_json TEXT NOT NULL,
  posture_reported INTEGER
) STRICT;
CREATE INDEX devices_by_vendor ON devices (vendor_id, id);

CREATE TABLE enrollment_tokens (
  id TEXT NOT NULL PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  vendor_id TEXT NOT NULL,
  device_name TEXT NOT NULL,
  created INTEGER NOT NULL,
  expires INTEGER NOT NULL,
  used INTEGER,
  device_id TEXT NOT NULL
) STRICT;

CREATE TABLE operator_tokens (
  id TEXT NOT NULL PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  operator_id TEXT NOT NULL,
  vendor_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  jkt TEXT NOT NULL,
  session_id TEXT NOT NULL,
  session_token_hash TEXT NOT NULL,
  created INTEGER NOT NULL,
  expires INTEGER NOT NULL,
  revoked INTEGER
) STRICT;
CREATE INDEX operator_tokens_unrevoked_by_vendor ON operator_tokens (vendor_id)
  WHERE revoked IS NULL;
CREATE INDEX operator_tokens_unrevoked_by_operator ON operator_tokens (operator_id)
  WHERE revoked IS NULL;
CREATE INDEX operator_tokens_unrevoked_by_device ON operator_tokens (device_id)
  WHERE revoked IS NULL;
CREATE INDEX operator_tokens_unrevoked_by_session ON operator_tokens (session_id)
  WHERE revoked IS NULL;

CREATE TABLE support_cases (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  subject TEXT NOT NULL,
  opened_by TEXT NOT NULL,
  opened_by_id TEXT NOT NULL,
  status TEXT NOT NULL,
  created INTEGER NOT NULL,
  closed INTEGER,
  PRIMARY KEY (tenant_id, id)
) STRICT;

CREATE TABLE access_requests (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  operator_id TEXT NOT NULL,
  vendor_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  case_id TEXT NOT NULL,
  justification TEXT NOT NULL,
  scope TEXT NOT NULL,
  duration INTEGER NOT NULL,
  status TEXT NOT NULL,
  created INTEGER NOT NULL,
  expires INTEGER NOT NULL,
  decided_by TEXT NOT NULL,
  decided INTEGER,
  reason TEXT NOT NULL,
  grant_id TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX access_requests_by_status ON access_requests (tenant_id, status, id);
CREATE INDEX access_requests_by_operator ON access_requests (operator_id, id, tenant_id);

CREATE TABLE grants (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  request_id TEXT NOT NULL,
  operator_id TEXT NOT NULL,
  vendor_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  case_id TEXT NOT NULL,
  justification TEXT NOT NULL,
  scope TEXT NOT NULL,
  created INTEGER NOT NULL,
  expires INTEGER NOT NULL,
  status TEXT NOT NULL,
  ended INTEGER,
  end_reason TEXT NOT NULL,
  first_used INTEGER,
  PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX grants_by_status ON grants (tenant_id, status, id);
CREATE INDEX grants_by_case ON grants (tenant_id, case_id, status, id);
CREATE INDEX grants_by_operator ON grants (operator_id, id, tenant_id);
CREATE INDEX grants_by_vendor ON grants (vendor_id, status, id, tenant_id);

CREATE TABLE confirmations (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  grant_id TEXT NOT NULL,
  operator_id TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  status TEXT NOT NULL,
  created INTEGER NOT NULL,
  expires INTEGER NOT NULL,
  decided_by TEXT NOT NULL,
  decided INTEGER,
  PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX confirmations_by_status ON confirmations (tenant_id, status, id);
CREATE INDEX confirmations_by_action ON confirmations (tenant_id, grant_id, action, target,
  created, id);

CREATE TABLE sightings (
  operator_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  value TEXT NOT NULL,
  first_seen INTEGER NOT NULL,
  PRIMARY KEY (operator_id, kind, value)
) STRICT, WITHOUT ROWID;

CREATE TABLE support_settings (
  key TEXT NOT NULL PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
)sql";

// OpenID Connect: each tenant's signing keys, apps (clients), authorization codes, refresh tokens
// and revoked access tokens, keyed and referenced like the rest of the tenant data. Codes and
// tokens are found by their hash; refresh tokens are revoked by family (a replayed token) and by
// session (sign-out). Revoked access tokens are checked on every token use and swept by expiry,
// per tenant. sealed_private is the sealed private key, binary.
constexpr std::string_view kSchemaV5 = R"sql(
CREATE TABLE oidc_keys (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  kid TEXT NOT NULL,
  alg TEXT NOT NULL,
  public_jwk TEXT NOT NULL,
  sealed_private BLOB NOT NULL,
  created INTEGER NOT NULL,
  activates INTEGER NOT NULL,
  retired INTEGER,
  expires INTEGER,
  PRIMARY KEY (tenant_id, kid)
) STRICT;

CREATE TABLE apps (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  label TEXT NOT NULL,
  status TEXT NOT NULL,
  application_type TEXT NOT NULL,
  token_endpoint_auth_method TEXT NOT NULL,
  client_secret_hash TEXT NOT NULL,
  settings_json TEXT NOT NULL,
  created INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, id)
) STRICT;

CREATE TABLE auth_codes (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  code_hash TEXT NOT NULL,
  client_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,
  scope TEXT NOT NULL,
  nonce TEXT NOT NULL,
  code_challenge TEXT NOT NULL,
  code_challenge_method TEXT NOT NULL,
  dpop_jkt TEXT NOT NULL,
  auth_time INTEGER NOT NULL,
  amr TEXT NOT NULL,
  created INTEGER NOT NULL,
  expires INTEGER NOT NULL,
  used INTEGER,
  family_id TEXT NOT NULL,
  PRIMARY KEY (tenant_id, code_hash)
) STRICT;

CREATE TABLE refresh_tokens (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  token_hash TEXT NOT NULL,
  client_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  scope TEXT NOT NULL,
  family_id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  auth_time INTEGER NOT NULL,
  amr TEXT NOT NULL,
  dpop_jkt TEXT NOT NULL,
  created INTEGER NOT NULL,
  expires INTEGER NOT NULL,
  rotated INTEGER,
  revoked INTEGER,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, token_hash)
) STRICT;
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (tenant_id, session_id);

CREATE TABLE revoked_tokens (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  jti TEXT NOT NULL,
  revoked INTEGER NOT NULL,
  expires INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, jti)
) STRICT, WITHOUT ROWID;
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (tenant_id, expires);
)sql";

// Incident response. support_activity is an index of the support events in tenants' logs,
// derived from them (never authoritative), read by time window and by operator, vendor, device,
// session or address: each of those has an index ending in `published` (and the rowid, seq), so
// a scope query reads only the rows it matches, in time order. by_operator is 0 or 1.
// Incidents, activity and status notices are the provider's; contacts and notifications are
// tenant data. A notification keeps its contact id after the contact is deleted (its delivery
// history stays), so contact_id references nothing. notifications_due serves the outbox worker:
// PENDING rows by next_attempt. sealed_secret is a sealed webhook secret, binary, empty for
// e-mail.
constexpr std::string_view kSchemaV6 = R"sql(
CREATE TABLE support_activity (
  seq INTEGER PRIMARY KEY,
  published INTEGER NOT NULL,
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  tenant_event_uuid TEXT NOT NULL,
  provider_event_uuid TEXT NOT NULL,
  event_type TEXT NOT NULL,
  outcome TEXT NOT NULL,
  reason TEXT NOT NULL,
  actor_id TEXT NOT NULL,
  by_operator INTEGER NOT NULL,
  operator_id TEXT NOT NULL,
  vendor_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  ip TEXT NOT NULL,
  grant_id TEXT NOT NULL,
  case_id TEXT NOT NULL,
  resource TEXT NOT NULL,
  fields TEXT NOT NULL
) STRICT;
CREATE INDEX support_activity_by_time ON support_activity (published);
CREATE INDEX support_activity_by_operator ON support_activity (operator_id, published);
CREATE INDEX support_activity_by_device ON support_activity (device_id, published);
CREATE INDEX support_activity_by_vendor ON support_activity (vendor_id, published);
CREATE INDEX support_activity_by_session ON support_activity (session_id, published);
CREATE INDEX support_activity_by_ip ON support_activity (ip, published);

CREATE TABLE incidents (
  id TEXT NOT NULL PRIMARY KEY,
  title TEXT NOT NULL,
  status TEXT NOT NULL,
  indicators_json TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  window_end INTEGER NOT NULL,
  compromise_start INTEGER NOT NULL,
  compromise_end INTEGER NOT NULL,
  scope_json TEXT NOT NULL,
  notes TEXT NOT NULL,
  created INTEGER NOT NULL,
  updated INTEGER NOT NULL,
  created_by TEXT NOT NULL
) STRICT;
CREATE INDEX incidents_by_created ON incidents (created, id);

CREATE TABLE security_contacts (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  type TEXT NOT NULL,
  name TEXT NOT NULL,
  address TEXT NOT NULL,
  sealed_secret BLOB NOT NULL,
  created INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, id)
) STRICT;

CREATE TABLE notifications (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  incident_id TEXT NOT NULL REFERENCES incidents (id),
  contact_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  payload_json TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt INTEGER NOT NULL,
  lease_until INTEGER,
  last_error TEXT NOT NULL,
  created INTEGER NOT NULL,
  delivered INTEGER,
  acknowledged INTEGER,
  acknowledged_by TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX notifications_due ON notifications (status, next_attempt);
CREATE INDEX notifications_by_incident ON notifications (incident_id, created, id);
CREATE INDEX notifications_by_tenant ON notifications (tenant_id, created, id);

CREATE TABLE status_notices (
  id TEXT NOT NULL PRIMARY KEY,
  kind TEXT NOT NULL,
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  incident_id TEXT NOT NULL,
  published INTEGER NOT NULL,
  updated INTEGER NOT NULL
) STRICT;
CREATE INDEX status_notices_by_published ON status_notices (published, id);
)sql";

constexpr Migration kMigrations[] = {
    {1, "initial schema", kSchemaV1},    {2, "verifiable log", kSchemaV2},
    {3, "event leaf hashes", kSchemaV3}, {4, "support access plane", kSchemaV4},
    {5, "openid connect", kSchemaV5},    {6, "incident response", kSchemaV6},
};

absl::Status Exec(sqlite3* db, const std::string& sql, std::string_view what) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return absl::OkStatus();
  std::string message = error != nullptr ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  return absl::InternalError(fmt::format("{}: {}", what, message));
}

void RollbackIfOpen(sqlite3* db) {
  if (sqlite3_get_autocommit(db) == 0) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

absl::StatusOr<int> CurrentVersion(sqlite3* db) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1,
                              &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return absl::InternalError(fmt::format("reading schema_migrations: {}", sqlite3_errmsg(db)));
  }
  rc = sqlite3_step(stmt);
  const int version = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : 0;
  sqlite3_finalize(stmt);
  if (rc != SQLITE_ROW) {
    return absl::InternalError(fmt::format("reading schema_migrations: {}", sqlite3_errstr(rc)));
  }
  return version;
}

absl::Status RefuseNewer(int current, int latest) {
  if (current <= latest) return absl::OkStatus();
  return absl::FailedPreconditionError(fmt::format(
      "database schema version {} is newer than the newest this binary knows ({}); run a "
      "custos release at least as new as the one that last wrote this database",
      current, latest));
}

// Applies `step` unless another opener already has. Caller has checked the list is contiguous.
absl::Status ApplyStep(sqlite3* db, const Migration& step, int latest) {
  RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE", "starting a migration"));
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(const int current, CurrentVersion(db));
    RETURN_IF_ERROR(RefuseNewer(current, latest));
    if (step.version <= current) return Exec(db, "COMMIT", "skipping an applied migration");
    if (step.version != current + 1) {
      return absl::InternalError(fmt::format(
          "database is at schema version {} but the next step is {}", current, step.version));
    }
    const std::string what =
        fmt::format("schema migration {} ({})", step.version, step.description);
    RETURN_IF_ERROR(Exec(db, std::string(step.sql), what));
    RETURN_IF_ERROR(Exec(db,
                         fmt::format("INSERT INTO schema_migrations (version, applied_at) "
                                     "VALUES ({}, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                                     step.version),
                         what));
    return Exec(db, "COMMIT", what);
  }();
  // A failed COMMIT can leave the transaction open; never leave it so.
  if (!status.ok()) RollbackIfOpen(db);
  return status;
}

}  // namespace

std::span<const Migration> SchemaMigrations() { return kMigrations; }

int LatestSchemaVersion() { return kMigrations[std::size(kMigrations) - 1].version; }

absl::Status ApplyMigrations(sqlite3* db, std::span<const Migration> steps) {
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].version != static_cast<int>(i) + 1) {
      return absl::InvalidArgumentError(fmt::format(
          "migration #{} has version {}; versions must run 1, 2, 3, ...", i + 1, steps[i].version));
    }
  }
  const int latest = static_cast<int>(steps.size());
  RETURN_IF_ERROR(Exec(db,
                       "CREATE TABLE IF NOT EXISTS schema_migrations ("
                       "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
                       "creating schema_migrations"));
  ASSIGN_OR_RETURN(const int current, CurrentVersion(db));
  RETURN_IF_ERROR(RefuseNewer(current, latest));
  for (const Migration& step : steps) {
    if (step.version <= current) continue;
    RETURN_IF_ERROR(ApplyStep(db, step, latest));
  }
  return absl::OkStatus();
}

}  // namespace custos::store::sqlite
