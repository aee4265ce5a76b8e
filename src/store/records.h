#pragma once

// Plain records as the store keeps them. No rules here: the domain modules (directory/,
// authn/, audit/) decide what is valid; the store only persists and finds.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "common/ids.h"

namespace custos::store {

struct TenantRecord {
  TenantId id;
  std::string name;  // URL name, unique: [a-z0-9-]{2,63}
  absl::Time created;
  bool log_public = false;  // the tenant's verifiable log may be read without credentials
};

// API token scopes. An admin token may do everything in its tenant; a log-read token may only
// read the System Log and its verifiable log (checkpoints, tiles, proofs).
inline constexpr std::string_view kScopeAdmin = "admin";
inline constexpr std::string_view kScopeLogRead = "log.read";

// An administrator API token (`Authorization: SSWS <token>`). Only the SHA-256 of the token is
// stored (hex); the token itself is shown once.
struct ApiTokenRecord {
  ApiTokenId id;
  TenantId tenant_id;
  std::string name;
  std::string token_hash;
  absl::Time created;
  std::optional<absl::Time> last_used;
  std::string scope = std::string(kScopeAdmin);  // kScopeAdmin or kScopeLogRead
};

// A provider-level token (`custos admin create-provider-token`) that may read the provider log
// when it is not public. Only the SHA-256 of the token is stored (hex).
struct ProviderTokenRecord {
  std::string id;
  std::string name;
  std::string token_hash;
  absl::Time created;
};

// User statuses, as the management API shows them.
inline constexpr std::string_view kUserStaged = "STAGED";
inline constexpr std::string_view kUserProvisioned = "PROVISIONED";
inline constexpr std::string_view kUserActive = "ACTIVE";
inline constexpr std::string_view kUserRecovery = "RECOVERY";
inline constexpr std::string_view kUserLockedOut = "LOCKED_OUT";
inline constexpr std::string_view kUserSuspended = "SUSPENDED";
inline constexpr std::string_view kUserDeprovisioned = "DEPROVISIONED";

struct UserRecord {
  UserId id;
  TenantId tenant_id;
  std::string status;
  std::string login;          // as given; unique per tenant case-insensitively
  std::string profile_json;   // the profile object, JSON text, includes "login"
  std::string password_hash;  // Argon2id encoded string; empty when the user has none
  absl::Time created;
  std::optional<absl::Time> activated;
  absl::Time status_changed;
  std::optional<absl::Time> last_login;
  absl::Time last_updated;
  std::optional<absl::Time> password_changed;
  int failed_sign_ins = 0;          // consecutive failures since the last success
  std::string recovery_token_hash;  // SHA-256 hex of a one-time reset/activation token
  std::optional<absl::Time> recovery_expires;
};

struct GroupRecord {
  GroupId id;
  TenantId tenant_id;
  std::string name;  // unique per tenant
  std::string description;
  absl::Time created;
  absl::Time last_updated;
  absl::Time last_membership_updated;
};

inline constexpr std::string_view kFactorPendingActivation = "PENDING_ACTIVATION";
inline constexpr std::string_view kFactorActive = "ACTIVE";

struct FactorRecord {
  FactorId id;
  TenantId tenant_id;
  UserId user_id;
  std::string factor_type;  // "token:software:totp"
  std::string provider;     // "GOOGLE"
  std::string status;
  std::string sealed_secret;    // sealed with the data directory key (crypto::Sealer), binary
  int64_t last_used_step = -1;  // TOTP time step last accepted; replays at or below are refused
  absl::Time created;
  absl::Time last_updated;
};

// A signed-in session. Only the SHA-256 of the session token is stored.
struct SessionRecord {
  SessionId id;
  TenantId tenant_id;
  UserId user_id;
  std::string token_hash;
  absl::Time created;
  absl::Time last_active;
  absl::Time expires;  // absolute end
  std::string amr;     // space-separated methods: "pwd", "pwd otp"
  std::string ip_address;
  std::string user_agent;
};

// A sign-in that has passed the password and waits for a second factor.
struct AuthnTransactionRecord {
  std::string id;
  TenantId tenant_id;
  UserId user_id;
  std::string state_token_hash;
  absl::Time created;
  absl::Time expires;
};

// The log id of the provider's own log (operator plane); every other log id is a tenant id.
// Events of the provider log are EventRecords whose tenant_id is kProviderLogId.
inline constexpr std::string_view kProviderLogId = "provider";

// The longest event JSON the store accepts: a C2SP entry bundle gives each entry a 16-bit
// length.
inline constexpr size_t kMaxEventBytes = 65535;

// A System Log event as appended by the domain modules. `seq` is assigned by the store at
// append time, strictly increasing in commit order per store, and is the paging cursor.
struct EventRecord {
  int64_t seq = 0;
  TenantId tenant_id;  // the log the event belongs to: a tenant, or kProviderLogId
  std::string uuid;
  absl::Time published;
  std::string event_type;
  std::string json;  // the event object, RFC 8785 canonical JSON: the log entry
  // SHA-256(0x00 || json), the entry's Merkle leaf hash, set when the event is made (32 raw
  // bytes); empty when unknown. LogRepository::Unsequenced returns it and leaves `json` empty
  // when it is set.
  std::string leaf_hash;
  // The event's index in its log once the sequencer has appended it; filled by reads, ignored
  // by Append.
  std::optional<uint64_t> log_index;
};

// The persisted tree state of one verifiable log (written by the sequencer only).
struct LogStateRecord {
  std::string log_id;  // a tenant id, or kProviderLogId
  std::string origin;  // checkpoint origin line, fixed when the log gets its first entry
  uint64_t size = 0;
  std::string root_hash;  // 32 raw bytes: the root of the first `size` entries
  absl::Time updated;
};

// One tile of a log's Merkle tree (C2SP tlog-tiles; layout in audit/tiles.h). Rows of full tiles
// (width 256) never change; the rightmost tile of each level is rewritten as it grows.
struct LogTileRecord {
  std::string log_id;
  int level = 0;       // tile level L
  uint64_t index = 0;  // tile index N
  int width = 0;       // hashes in the tile's bottom row, 1..256
  std::string data;    // audit/tiles.h "expanded tile" bytes
};

// A signed checkpoint as the sequencer stored it.
struct CheckpointRecord {
  std::string log_id;
  uint64_t size = 0;
  std::string root_hash;  // 32 raw bytes
  std::string note;       // the full signed note text (C2SP signed-note)
  std::string key_id;     // LogKeyRecord::id of the key that signed it
  absl::Time signed_at;
};

// A checkpoint signing key (Ed25519). The seed is sealed (crypto::Sealer); never log it.
struct LogKeyRecord {
  std::string id;          // "lk_" + 16 hex digits
  std::string name;        // signed-note key name
  std::string public_key;  // 32 raw bytes
  std::string sealed_seed;
  absl::Time created;
  std::optional<absl::Time> retired;  // set when a newer key took over signing
};

}  // namespace custos::store
