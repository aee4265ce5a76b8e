#include "store/schema.h"

#include <iterator>

namespace custos::store {
namespace {

// Times are INTEGER microseconds since the Unix epoch; optional times are NULL. Tenant data is
// keyed by (tenant_id, id) so that no lookup can reach another tenant's row by id alone, and
// every tenant-data table references tenants(id). Rows that belong to a user go with the user.
constexpr std::string_view kSqliteV1 = R"sql(
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

// events.seq is an identity column; its foreign key is named so that step 2 can drop it.
constexpr std::string_view kPostgresV1 = R"sql(
CREATE TABLE tenants (
  id TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created BIGINT NOT NULL
);

CREATE TABLE api_tokens (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  name TEXT NOT NULL,
  token_hash TEXT NOT NULL,
  created BIGINT NOT NULL,
  last_used BIGINT,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, token_hash)
);

CREATE TABLE users (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  status TEXT NOT NULL,
  login TEXT NOT NULL,
  profile_json TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  created BIGINT NOT NULL,
  activated BIGINT,
  status_changed BIGINT NOT NULL,
  last_login BIGINT,
  last_updated BIGINT NOT NULL,
  password_changed BIGINT,
  failed_sign_ins BIGINT NOT NULL,
  recovery_token_hash TEXT NOT NULL,
  recovery_expires BIGINT,
  PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX users_login_nocase ON users (tenant_id, lower(login));

CREATE TABLE groups (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  created BIGINT NOT NULL,
  last_updated BIGINT NOT NULL,
  last_membership_updated BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, name)
);

CREATE TABLE group_members (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  group_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  PRIMARY KEY (tenant_id, group_id, user_id),
  FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX group_members_by_user ON group_members (tenant_id, user_id, group_id);

CREATE TABLE factors (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  factor_type TEXT NOT NULL,
  provider TEXT NOT NULL,
  status TEXT NOT NULL,
  sealed_secret BYTEA NOT NULL,
  last_used_step BIGINT NOT NULL,
  created BIGINT NOT NULL,
  last_updated BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX factors_by_user ON factors (tenant_id, user_id);

CREATE TABLE sessions (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  token_hash TEXT NOT NULL,
  created BIGINT NOT NULL,
  last_active BIGINT NOT NULL,
  expires BIGINT NOT NULL,
  amr TEXT NOT NULL,
  ip_address TEXT NOT NULL,
  user_agent TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, token_hash),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_by_user ON sessions (tenant_id, user_id);

CREATE TABLE authn_transactions (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  state_token_hash TEXT NOT NULL,
  created BIGINT NOT NULL,
  expires BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, state_token_hash),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX authn_transactions_by_user ON authn_transactions (tenant_id, user_id);

CREATE TABLE events (
  seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  tenant_id TEXT NOT NULL CONSTRAINT events_tenant_id_fkey REFERENCES tenants (id),
  uuid TEXT NOT NULL UNIQUE,
  published BIGINT NOT NULL,
  event_type TEXT NOT NULL,
  json TEXT NOT NULL
);
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
constexpr std::string_view kSqliteV2 = R"sql(
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

// PostgreSQL drops the foreign key in place: rows and the identity sequence stay as they are, so
// seq never goes back either.
constexpr std::string_view kPostgresV2 = R"sql(
ALTER TABLE tenants ADD COLUMN log_public BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin';

ALTER TABLE events DROP CONSTRAINT events_tenant_id_fkey;

CREATE TABLE provider_tokens (
  id TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  created BIGINT NOT NULL
);

CREATE TABLE log_entries (
  log_id TEXT NOT NULL,
  log_index BIGINT NOT NULL,
  seq BIGINT NOT NULL,
  PRIMARY KEY (log_id, log_index)
);
CREATE UNIQUE INDEX log_entries_by_seq ON log_entries (seq);

CREATE TABLE log_outbox (
  id BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
  sequenced_seq BIGINT NOT NULL
);
INSERT INTO log_outbox (id, sequenced_seq) VALUES (1, 0);

CREATE TABLE log_tiles (
  log_id TEXT NOT NULL,
  level BIGINT NOT NULL,
  idx BIGINT NOT NULL,
  width BIGINT NOT NULL,
  data BYTEA NOT NULL,
  PRIMARY KEY (log_id, level, idx)
);

CREATE TABLE log_states (
  log_id TEXT NOT NULL PRIMARY KEY,
  origin TEXT NOT NULL,
  size BIGINT NOT NULL,
  root_hash BYTEA NOT NULL,
  updated BIGINT NOT NULL
);

CREATE TABLE log_checkpoints (
  log_id TEXT NOT NULL,
  size BIGINT NOT NULL,
  root_hash BYTEA NOT NULL,
  note TEXT NOT NULL,
  key_id TEXT NOT NULL,
  signed_at BIGINT NOT NULL,
  PRIMARY KEY (log_id, size)
);

CREATE TABLE log_keys (
  id TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  public_key BYTEA NOT NULL,
  sealed_seed BYTEA NOT NULL,
  created BIGINT NOT NULL,
  retired BIGINT
);
)sql";

// The leaf hash of each event's log entry, computed when the event is made, so that the
// sequencer neither reads the event rows back nor hashes them. NULL for older rows: the
// sequencer hashes those itself.
constexpr std::string_view kSqliteV3 = R"sql(
ALTER TABLE events ADD COLUMN leaf_hash BLOB;
)sql";

constexpr std::string_view kPostgresV3 = R"sql(
ALTER TABLE events ADD COLUMN leaf_hash BYTEA;
)sql";

// The support access plane. Vendors, operators, devices and their tokens are the provider's;
// cases, requests, grants and confirmations are tenant data, keyed and referenced like the rest.
// Operators and devices reference their vendor, so that none is stored for an unknown one.
// Operator tokens are looked up for revocation by vendor, operator, device or session, and only
// unrevoked ones matter there, so those indexes are partial. access_requests.duration is in
// microseconds.
constexpr std::string_view kSqliteV4 = R"sql(
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

constexpr std::string_view kPostgresV4 = R"sql(
ALTER TABLE tenants ADD COLUMN support_policy TEXT NOT NULL DEFAULT 'approval_required';

CREATE TABLE vendors (
  id TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  employing_entity TEXT NOT NULL,
  country TEXT NOT NULL,
  status TEXT NOT NULL,
  created BIGINT NOT NULL,
  status_changed BIGINT NOT NULL
);

CREATE TABLE operators (
  user_id TEXT NOT NULL PRIMARY KEY,
  vendor_id TEXT NOT NULL REFERENCES vendors (id),
  status TEXT NOT NULL,
  created BIGINT NOT NULL,
  status_changed BIGINT NOT NULL
);
CREATE INDEX operators_by_vendor ON operators (vendor_id, user_id);

CREATE TABLE devices (
  id TEXT NOT NULL PRIMARY KEY,
  vendor_id TEXT NOT NULL REFERENCES vendors (id),
  name TEXT NOT NULL,
  public_jwk TEXT NOT NULL,
  jkt TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL,
  enrolled BIGINT NOT NULL,
  status_changed BIGINT NOT NULL,
  posture_json TEXT NOT NULL,
  posture_reported BIGINT
);
CREATE INDEX devices_by_vendor ON devices (vendor_id, id);

CREATE TABLE enrollment_tokens (
  id TEXT NOT NULL PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  vendor_id TEXT NOT NULL,
  device_name TEXT NOT NULL,
  created BIGINT NOT NULL,
  expires BIGINT NOT NULL,
  used BIGINT,
  device_id TEXT NOT NULL
);

CREATE TABLE operator_tokens (
  id TEXT NOT NULL PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  operator_id TEXT NOT NULL,
  vendor_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  jkt TEXT NOT NULL,
  session_id TEXT NOT NULL,
  session_token_hash TEXT NOT NULL,
  created BIGINT NOT NULL,
  expires BIGINT NOT NULL,
  revoked BIGINT
);
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
  created BIGINT NOT NULL,
  closed BIGINT,
  PRIMARY KEY (tenant_id, id)
);

CREATE TABLE access_requests (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  operator_id TEXT NOT NULL,
  vendor_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  case_id TEXT NOT NULL,
  justification TEXT NOT NULL,
  scope TEXT NOT NULL,
  duration BIGINT NOT NULL,
  status TEXT NOT NULL,
  created BIGINT NOT NULL,
  expires BIGINT NOT NULL,
  decided_by TEXT NOT NULL,
  decided BIGINT,
  reason TEXT NOT NULL,
  grant_id TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id)
);
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
  created BIGINT NOT NULL,
  expires BIGINT NOT NULL,
  status TEXT NOT NULL,
  ended BIGINT,
  end_reason TEXT NOT NULL,
  first_used BIGINT,
  PRIMARY KEY (tenant_id, id)
);
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
  created BIGINT NOT NULL,
  expires BIGINT NOT NULL,
  decided_by TEXT NOT NULL,
  decided BIGINT,
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX confirmations_by_status ON confirmations (tenant_id, status, id);
CREATE INDEX confirmations_by_action ON confirmations (tenant_id, grant_id, action, target,
  created, id);

CREATE TABLE sightings (
  operator_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  value TEXT NOT NULL,
  first_seen BIGINT NOT NULL,
  PRIMARY KEY (operator_id, kind, value)
);

CREATE TABLE support_settings (
  key TEXT NOT NULL PRIMARY KEY,
  value TEXT NOT NULL
);
)sql";

// OpenID Connect: each tenant's signing keys, apps (clients), authorization codes, refresh tokens
// and revoked access tokens, keyed and referenced like the rest of the tenant data. Codes and
// tokens are found by their hash; refresh tokens are revoked by family (a replayed token) and by
// session (sign-out). Revoked access tokens are checked on every token use and swept by expiry,
// per tenant. sealed_private is the sealed private key, binary.
constexpr std::string_view kSqliteV5 = R"sql(
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

constexpr std::string_view kPostgresV5 = R"sql(
CREATE TABLE oidc_keys (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  kid TEXT NOT NULL,
  alg TEXT NOT NULL,
  public_jwk TEXT NOT NULL,
  sealed_private BYTEA NOT NULL,
  created BIGINT NOT NULL,
  activates BIGINT NOT NULL,
  retired BIGINT,
  expires BIGINT,
  PRIMARY KEY (tenant_id, kid)
);

CREATE TABLE apps (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  label TEXT NOT NULL,
  status TEXT NOT NULL,
  application_type TEXT NOT NULL,
  token_endpoint_auth_method TEXT NOT NULL,
  client_secret_hash TEXT NOT NULL,
  settings_json TEXT NOT NULL,
  created BIGINT NOT NULL,
  last_updated BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, id)
);

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
  auth_time BIGINT NOT NULL,
  amr TEXT NOT NULL,
  created BIGINT NOT NULL,
  expires BIGINT NOT NULL,
  used BIGINT,
  family_id TEXT NOT NULL,
  PRIMARY KEY (tenant_id, code_hash)
);

CREATE TABLE refresh_tokens (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  token_hash TEXT NOT NULL,
  client_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  scope TEXT NOT NULL,
  family_id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  auth_time BIGINT NOT NULL,
  amr TEXT NOT NULL,
  dpop_jkt TEXT NOT NULL,
  created BIGINT NOT NULL,
  expires BIGINT NOT NULL,
  rotated BIGINT,
  revoked BIGINT,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, token_hash)
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (tenant_id, session_id);

CREATE TABLE revoked_tokens (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  jti TEXT NOT NULL,
  revoked BIGINT NOT NULL,
  expires BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, jti)
);
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
constexpr std::string_view kSqliteV6 = R"sql(
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

// Every index of support_activity names seq after published, as SQLite's rowid does.
constexpr std::string_view kPostgresV6 = R"sql(
CREATE TABLE support_activity (
  seq BIGINT PRIMARY KEY,
  published BIGINT NOT NULL,
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  tenant_event_uuid TEXT NOT NULL,
  provider_event_uuid TEXT NOT NULL,
  event_type TEXT NOT NULL,
  outcome TEXT NOT NULL,
  reason TEXT NOT NULL,
  actor_id TEXT NOT NULL,
  by_operator BIGINT NOT NULL,
  operator_id TEXT NOT NULL,
  vendor_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  ip TEXT NOT NULL,
  grant_id TEXT NOT NULL,
  case_id TEXT NOT NULL,
  resource TEXT NOT NULL,
  fields TEXT NOT NULL
);
CREATE INDEX support_activity_by_time ON support_activity (published, seq);
CREATE INDEX support_activity_by_operator ON support_activity (operator_id, published, seq);
CREATE INDEX support_activity_by_device ON support_activity (device_id, published, seq);
CREATE INDEX support_activity_by_vendor ON support_activity (vendor_id, published, seq);
CREATE INDEX support_activity_by_session ON support_activity (session_id, published, seq);
CREATE INDEX support_activity_by_ip ON support_activity (ip, published, seq);

CREATE TABLE incidents (
  id TEXT NOT NULL PRIMARY KEY,
  title TEXT NOT NULL,
  status TEXT NOT NULL,
  indicators_json TEXT NOT NULL,
  window_start BIGINT NOT NULL,
  window_end BIGINT NOT NULL,
  compromise_start BIGINT NOT NULL,
  compromise_end BIGINT NOT NULL,
  scope_json TEXT NOT NULL,
  notes TEXT NOT NULL,
  created BIGINT NOT NULL,
  updated BIGINT NOT NULL,
  created_by TEXT NOT NULL
);
CREATE INDEX incidents_by_created ON incidents (created, id);

CREATE TABLE security_contacts (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  type TEXT NOT NULL,
  name TEXT NOT NULL,
  address TEXT NOT NULL,
  sealed_secret BYTEA NOT NULL,
  created BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, id)
);

CREATE TABLE notifications (
  tenant_id TEXT NOT NULL REFERENCES tenants (id),
  id TEXT NOT NULL,
  incident_id TEXT NOT NULL REFERENCES incidents (id),
  contact_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  payload_json TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts BIGINT NOT NULL,
  next_attempt BIGINT NOT NULL,
  lease_until BIGINT,
  last_error TEXT NOT NULL,
  created BIGINT NOT NULL,
  delivered BIGINT,
  acknowledged BIGINT,
  acknowledged_by TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX notifications_due ON notifications (status, next_attempt);
CREATE INDEX notifications_by_incident ON notifications (incident_id, created, id);
CREATE INDEX notifications_by_tenant ON notifications (tenant_id, created, id);

CREATE TABLE status_notices (
  id TEXT NOT NULL PRIMARY KEY,
  kind TEXT NOT NULL,
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  incident_id TEXT NOT NULL,
  published BIGINT NOT NULL,
  updated BIGINT NOT NULL
);
CREATE INDEX status_notices_by_published ON status_notices (published, id);
)sql";

// State that several processes on one database share (SharedStateRepository): one-time values
// already used, each until it expires (replay_keys), and request counts of the current fixed
// window of each rate-limited key (rate_counters, one row per key). Both are swept by time,
// hence the indexes on expires and window_end. Not tenant data.
constexpr std::string_view kSqliteV7 = R"sql(
CREATE TABLE replay_keys (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  expires INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX replay_keys_by_expiry ON replay_keys (expires);

CREATE TABLE rate_counters (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  window_end INTEGER NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX rate_counters_by_window_end ON rate_counters (window_end);
)sql";

constexpr std::string_view kPostgresV7 = R"sql(
CREATE TABLE replay_keys (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  expires BIGINT NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX replay_keys_by_expiry ON replay_keys (expires);

CREATE TABLE rate_counters (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  window_start BIGINT NOT NULL,
  window_end BIGINT NOT NULL,
  count BIGINT NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX rate_counters_by_window_end ON rate_counters (window_end);
)sql";

constexpr SchemaStep kSteps[] = {
    {1, "initial schema", kSqliteV1, kPostgresV1},
    {2, "verifiable log", kSqliteV2, kPostgresV2},
    {3, "event leaf hashes", kSqliteV3, kPostgresV3},
    {4, "support access plane", kSqliteV4, kPostgresV4},
    {5, "openid connect", kSqliteV5, kPostgresV5},
    {6, "incident response", kSqliteV6, kPostgresV6},
    {7, "state shared between processes", kSqliteV7, kPostgresV7},
};

}  // namespace

std::span<const SchemaStep> SchemaSteps() { return kSteps; }

int LatestSchemaVersion() { return kSteps[std::size(kSteps) - 1].version; }

}  // namespace custos::store
