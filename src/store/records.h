#pragma once

// Plain records as the store keeps them. No rules here: the domain modules (directory/,
// authn/, audit/) decide what is valid; the store only persists and finds.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "common/ids.h"

namespace custos::store {

// Tenant support policies (support access plane).
inline constexpr std::string_view kSupportPolicyBlocked = "blocked";
inline constexpr std::string_view kSupportPolicyApprovalRequired = "approval_required";
// Read-only access for cases the tenant opened is approved without an admin; anything else
// still needs one.
inline constexpr std::string_view kSupportPolicyAutoApproveRead = "auto_approve_read";

struct TenantRecord {
  TenantId id;
  std::string name;  // URL name, unique: [a-z0-9-]{2,63}
  absl::Time created;
  bool log_public = false;  // the tenant's verifiable log may be read without credentials
  // Who may reach the tenant through the support plane: kSupportPolicy* below.
  std::string support_policy = std::string(kSupportPolicyApprovalRequired);
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

// ---- Support access plane (support/) ----
//
// The provider's own staff and contractors are operators: users of the built-in provider tenant
// (id kProviderLogId, name "provider"), each employed by a vendor, each working from managed
// devices. Ids are a three-character prefix and 17 base62 characters, like the other ids.

inline constexpr std::string_view kVendorIdPrefix = "vnd";
inline constexpr std::string_view kDeviceIdPrefix = "dev";
inline constexpr std::string_view kEnrollmentTokenIdPrefix = "det";
inline constexpr std::string_view kOperatorTokenIdPrefix = "oat";
inline constexpr std::string_view kCaseIdPrefix = "cas";
inline constexpr std::string_view kAccessRequestIdPrefix = "sar";
inline constexpr std::string_view kGrantIdPrefix = "sgr";
inline constexpr std::string_view kConfirmationIdPrefix = "scf";

// Statuses shared by vendors and operators.
inline constexpr std::string_view kStatusActive = "ACTIVE";
inline constexpr std::string_view kStatusSuspended = "SUSPENDED";

struct VendorRecord {
  std::string id;
  std::string name;              // unique, e.g. "Acme Support Ltd"
  std::string employing_entity;  // the legal employer of its operators
  std::string country;           // ISO 3166-1 alpha-2, upper case
  std::string status;            // kStatusActive or kStatusSuspended
  absl::Time created;
  absl::Time status_changed;
};

// An operator: a user of the provider tenant who works for a vendor.
struct OperatorRecord {
  UserId user_id;  // the provider tenant's user
  std::string vendor_id;
  std::string status;  // kStatusActive or kStatusSuspended
  absl::Time created;
  absl::Time status_changed;
};

inline constexpr std::string_view kDeviceActive = "ACTIVE";
inline constexpr std::string_view kDeviceLocked = "LOCKED";    // reversible
inline constexpr std::string_view kDeviceRevoked = "REVOKED";  // final

// A managed device, known by its public key.
struct DeviceRecord {
  std::string id;
  std::string vendor_id;
  std::string name;
  std::string public_jwk;  // the device's public JWK, JSON text (support/jwk.h)
  std::string jkt;         // RFC 7638 thumbprint of public_jwk, base64url; unique
  std::string status;      // kDevice*
  absl::Time enrolled;
  absl::Time status_changed;
  std::string posture_json;  // the last accepted report's posture object; empty before one
  std::optional<absl::Time> posture_reported;  // when the device made that report (its iat)
};

// A single-use device enrolment token. Only its SHA-256 (hex) is stored.
struct EnrollmentTokenRecord {
  std::string id;
  std::string token_hash;
  std::string vendor_id;    // the device will belong to this vendor
  std::string device_name;  // the name the device gets
  absl::Time created;
  absl::Time expires;
  std::optional<absl::Time> used;  // set once, when a device enrolled with it
  std::string device_id;           // that device
};

// An operator access token, bound to a device key (DPoP, cnf.jkt). Only its SHA-256 (hex) is
// stored.
struct OperatorTokenRecord {
  std::string id;
  std::string token_hash;
  UserId operator_id;
  std::string vendor_id;
  std::string device_id;
  std::string jkt;       // the device key's thumbprint at issue time
  SessionId session_id;  // the provider-tenant session it was exchanged for
  // That session's token hash (as SessionRecord::token_hash): the token ends with the session.
  std::string session_token_hash;
  absl::Time created;
  absl::Time expires;
  std::optional<absl::Time> revoked;
};

inline constexpr std::string_view kCaseOpen = "OPEN";
inline constexpr std::string_view kCaseClosed = "CLOSED";
inline constexpr std::string_view kOpenedByTenant = "tenant";
inline constexpr std::string_view kOpenedByProvider = "provider";

// A support case about one tenant. Grants name a case and end when it closes.
struct SupportCaseRecord {
  std::string id;
  TenantId tenant_id;
  std::string subject;
  std::string opened_by;     // kOpenedByTenant or kOpenedByProvider
  std::string opened_by_id;  // the API token or operator that opened it
  std::string status;        // kCaseOpen or kCaseClosed
  absl::Time created;
  std::optional<absl::Time> closed;
};

inline constexpr std::string_view kRequestPending = "PENDING";
inline constexpr std::string_view kRequestApproved = "APPROVED";
inline constexpr std::string_view kRequestDenied = "DENIED";
inline constexpr std::string_view kRequestExpired = "EXPIRED";

// An operator's request for access to one tenant.
struct AccessRequestRecord {
  std::string id;
  TenantId tenant_id;
  UserId operator_id;
  std::string vendor_id;
  std::string device_id;  // the device the request came from; the grant binds it
  std::string case_id;
  std::string justification;  // CUSTOMER_INITIATED_SUPPORT, PROVIDER_INITIATED_REVIEW, ...
  std::string scope;          // space-separated: "read", "password_reset", "mfa_reset", ...
  absl::Duration duration;    // asked for
  std::string status;         // kRequest*
  absl::Time created;
  absl::Time expires;      // a pending request expires then
  std::string decided_by;  // who approved or denied ("policy" for auto-approval)
  std::optional<absl::Time> decided;
  std::string reason;    // the approver's or the system's words
  std::string grant_id;  // when approved
};

inline constexpr std::string_view kGrantActive = "ACTIVE";
inline constexpr std::string_view kGrantRevoked = "REVOKED";  // by the tenant or the kill switch
inline constexpr std::string_view kGrantEnded = "ENDED";      // its case closed

// Access granted to one operator on one device for one case of one tenant. Expiry is not a
// status: a grant past `expires` is simply no longer valid.
struct GrantRecord {
  std::string id;
  TenantId tenant_id;
  std::string request_id;
  UserId operator_id;
  std::string vendor_id;
  std::string device_id;
  std::string case_id;
  std::string justification;
  std::string scope;  // space-separated, as the request (never wider)
  absl::Time created;
  absl::Time expires;
  std::string status;  // kGrant*
  std::optional<absl::Time> ended;
  std::string end_reason;
  std::optional<absl::Time> first_used;  // the first request the gate allowed with it
};

inline constexpr std::string_view kConfirmationPending = "PENDING";
inline constexpr std::string_view kConfirmationConfirmed = "CONFIRMED";
inline constexpr std::string_view kConfirmationDenied = "DENIED";
inline constexpr std::string_view kConfirmationUsed = "USED";
inline constexpr std::string_view kConfirmationExpired = "EXPIRED";  // lapsed undecided

// A tenant admin's confirmation of one guarded action (one action on one target under one
// grant): the second person.
struct ConfirmationRecord {
  std::string id;
  TenantId tenant_id;
  std::string grant_id;
  UserId operator_id;
  std::string action;  // "password_reset", "mfa_reset", "config_change"
  std::string target;  // a user id, or the setting's name
  std::string status;  // kConfirmation*
  absl::Time created;
  // A pending or confirmed, unused confirmation lapses then (the sweep marks a pending one
  // EXPIRED).
  absl::Time expires;
  std::string decided_by;
  std::optional<absl::Time> decided;
};

// Anomaly rules remember what they have seen of an operator ("device" or "network" values).
struct SightingRecord {
  UserId operator_id;
  std::string kind;   // "device" or "network"
  std::string value;  // a device id, or a network such as "203.0.113.0/24"
  absl::Time first_seen;
};

// ---- OpenID Connect (oidc/) ----

inline constexpr std::string_view kAppIdPrefix = "0oa";
inline constexpr std::string_view kRefreshTokenIdPrefix = "rft";

// A tenant's token signing key. Published in the JWKS from `created`, used for signing from
// `activates` (so relying parties have fetched it first), stops signing at `retired`, and leaves
// the JWKS at `expires` (after every token it signed has expired).
struct OidcKeyRecord {
  std::string kid;
  TenantId tenant_id;
  std::string alg;             // "ES256" or "EdDSA"
  std::string public_jwk;      // JSON text, with kid, alg and use
  std::string sealed_private;  // sealed (crypto::Sealer) private key bytes; never log it
  absl::Time created;
  absl::Time activates;
  std::optional<absl::Time> retired;
  std::optional<absl::Time> expires;
};

inline constexpr std::string_view kAppActive = "ACTIVE";
inline constexpr std::string_view kAppInactive = "INACTIVE";

// An OpenID Connect client application of a tenant (Okta-style app object).
struct AppRecord {
  std::string id;  // also the client_id
  TenantId tenant_id;
  std::string label;
  std::string status;            // kAppActive or kAppInactive
  std::string application_type;  // "web", "browser", "native", "service"
  // "client_secret_basic", "client_secret_post", "private_key_jwt", "none" (public clients)
  std::string token_endpoint_auth_method;
  std::string client_secret_hash;  // SHA-256 hex of the secret; empty when there is none
  std::string settings_json;       // redirect_uris, post_logout_redirect_uris, grant_types,
                                   // response_types, jwks, token lifetimes: JSON text (oidc/apps.h)
  absl::Time created;
  absl::Time last_updated;
};

// A one-time authorization code. Only its SHA-256 (hex) is stored.
struct AuthCodeRecord {
  std::string code_hash;
  TenantId tenant_id;
  std::string client_id;
  UserId user_id;
  SessionId session_id;
  std::string redirect_uri;
  std::string scope;  // space-separated
  std::string nonce;
  std::string code_challenge;         // empty without PKCE
  std::string code_challenge_method;  // "S256" (or "plain", refused for public clients)
  std::string dpop_jkt;               // set when the authorization request bound one
  absl::Time auth_time;
  std::string amr;  // "pwd" or "pwd otp"
  absl::Time created;
  absl::Time expires;
  std::optional<absl::Time> used;
  // The refresh token family issued for it, so that a reused code revokes what it gave.
  std::string family_id;
};

// A refresh token. Only its SHA-256 (hex) is stored. Rotation makes a new token of the same
// family and marks the old one rotated; presenting a rotated token again revokes the family.
struct RefreshTokenRecord {
  std::string id;
  std::string token_hash;
  TenantId tenant_id;
  std::string client_id;
  UserId user_id;
  std::string scope;
  std::string family_id;
  SessionId session_id;
  absl::Time auth_time;
  std::string amr;
  std::string dpop_jkt;
  absl::Time created;
  absl::Time expires;
  std::optional<absl::Time> rotated;
  std::optional<absl::Time> revoked;
};

// An access token (JWT) revoked before its expiry (RFC 7009), by jti, or a whole family.
// The revoked_tokens jti under which OidcRepository::RevokeTokensOfUser records when a user's
// tokens were last ended.
inline constexpr std::string_view kUserRevocationPrefix = "user:";

struct RevokedTokenRecord {
  TenantId tenant_id;
  std::string jti;  // an access token's jti, or "family:<family_id>"
  absl::Time revoked;
  absl::Time expires;  // the row may go after this
};

// ---- Incident response (incident/) ----

inline constexpr std::string_view kIncidentIdPrefix = "inc";
inline constexpr std::string_view kSecurityContactIdPrefix = "sct";
inline constexpr std::string_view kNotificationIdPrefix = "ntf";
inline constexpr std::string_view kStatusNoticeIdPrefix = "stn";

// One support event that AppendTransparencyEvents appended to a tenant's log (support/plane.h),
// indexed for scoping an incident. Derived from the two events it names, never authoritative:
// the logs are. Empty strings mean "not known for this event".
struct SupportActivityRecord {
  int64_t seq = 0;  // assigned by IncidentRepository::InsertActivity, increasing in commit order
  absl::Time published;             // the tenant event's
  TenantId tenant_id;               // the tenant whose log holds the event
  std::string tenant_event_uuid;    // the event in the tenant's log
  std::string provider_event_uuid;  // its copy in the provider log
  std::string event_type;           // "support.view", "support.gate.deny", ...
  std::string outcome;              // SUCCESS, FAILURE, DENY
  std::string reason;               // outcome.reason
  std::string actor_id;             // the request's actor; "unknown" when unauthenticated
  // True when the operator named below acted (the actor is that operator); false when someone
  // else acted on the operator's behalf (a tenant admin approving a request) or nobody could be
  // identified.
  bool by_operator = false;
  std::string operator_id;
  std::string vendor_id;
  std::string device_id;
  std::string session_id;  // the actor's session (RequestContext::external_session_id)
  std::string ip;          // the request's address, as the request context had it
  std::string grant_id;
  std::string case_id;
  std::string resource;  // what a view read ("users", "users/00u..."), from debugData
  std::string fields;    // the fields a view showed, comma-separated, from debugData
};

// Incident statuses, in lifecycle order.
inline constexpr std::string_view kIncidentDeclared = "DECLARED";
inline constexpr std::string_view kIncidentScoped = "SCOPED";
inline constexpr std::string_view kIncidentNotified = "NOTIFIED";
inline constexpr std::string_view kIncidentClosed = "CLOSED";

// A security incident of the provider. What the JSON texts hold is incident/'s business.
struct IncidentRecord {
  std::string id;  // kIncidentIdPrefix...
  std::string title;
  std::string status;           // kIncident*
  std::string indicators_json;  // {operatorIds, vendorIds, deviceIds, sessionIds, ipRanges}
  absl::Time window_start;      // the window in which the indicated principals are suspect
  absl::Time window_end;
  absl::Time compromise_start;  // the window of confirmed compromise (defaults to the window)
  absl::Time compromise_end;
  std::string scope_json;  // the last scoping result; empty before the first
  std::string notes;
  absl::Time created;
  absl::Time updated;
  std::string created_by;  // the actor id that declared it
};

// Security contact types; a notification's channel is its contact's type.
inline constexpr std::string_view kContactWebhook = "webhook";
inline constexpr std::string_view kContactEmail = "email";

// Where a tenant wants security notifications.
struct SecurityContactRecord {
  std::string id;  // kSecurityContactIdPrefix...
  TenantId tenant_id;
  std::string type;  // kContactWebhook or kContactEmail
  std::string name;
  std::string address;  // the webhook URL, or the e-mail address
  // A webhook's signing secret, sealed (crypto::Sealer), binary; empty for e-mail. Never log it.
  std::string sealed_secret;
  absl::Time created;
};

inline constexpr std::string_view kNotificationPending = "PENDING";
inline constexpr std::string_view kNotificationDelivered = "DELIVERED";
inline constexpr std::string_view kNotificationFailed = "FAILED";  // gave up

// One notification of one tenant contact about one incident: the outbox row the notifier
// delivers. `id` is also the webhook-id (the receiver's idempotency key), so retries reuse it.
struct NotificationRecord {
  std::string id;  // kNotificationIdPrefix...
  std::string incident_id;
  TenantId tenant_id;
  std::string contact_id;  // may outlive its contact: a deleted contact keeps its history
  std::string channel;     // the contact's type when the row was made
  std::string payload_json;
  std::string status;  // kNotification*
  int attempts = 0;    // deliveries tried so far
  absl::Time next_attempt;
  // Set while a worker delivers the row; a lapsed lease (the worker died) makes it due again.
  std::optional<absl::Time> lease_until;
  std::string last_error;
  absl::Time created;
  std::optional<absl::Time> delivered;
  std::optional<absl::Time> acknowledged;
  std::string acknowledged_by;  // the tenant actor id that acknowledged it
};

inline constexpr std::string_view kNoticeSecurity = "security";
inline constexpr std::string_view kNoticeAvailability = "availability";

// A notice of the public status feed (/status.json, /status.atom). Never names a tenant.
struct StatusNoticeRecord {
  std::string id;    // kStatusNoticeIdPrefix...
  std::string kind;  // kNoticeSecurity or kNoticeAvailability
  std::string title;
  std::string body;
  std::string incident_id;  // the incident it is about; empty when none
  absl::Time published;
  absl::Time updated;
};

}  // namespace custos::store
