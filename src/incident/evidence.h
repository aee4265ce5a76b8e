#pragma once

// Evidence packages: what an affected tenant receives after a security incident. One file per
// tenant and incident holds the tenant's relevant System Log events, each with an RFC 9162
// inclusion proof against ONE signed checkpoint of the tenant's verifiable log, so that the
// customer checks it offline (`custos log verify --evidence FILE`) without trusting Custos
// beyond the log's published verifier key.
//
// File format "custos-evidence/v1" (docs/system-log.md, "Evidence packages"): one JSON object
//
//   {"format": "custos-evidence/v1",
//    "incident": {"id": "...", "title": "..."},
//    "tenant": {"id": "...", "name": "..."},
//    "origin": "<the tenant log's checkpoint origin>",
//    "treeSize": N,
//    "checkpoint": "<the signed note signed at tree size N>",
//    "verifierKeys": ["<vkey as published at /.well-known/custos/log-keys>", ...],
//    "manifest": {"index": i, "entry": "<canonical JSON of the manifest event>",
//                 "proof": ["<base64 hash>", ...]},
//    "events": [{"index": i, "entry": "<canonical JSON of the event>", "proof": [...]}, ...]}
//
// written in canonical form: members sorted by key, no whitespace, then one "\n"
// (SerializeEvidence). "entry" is the log entry itself (the event's canonical JSON, without
// "custos"); "proof" is PATH(index, treeSize) from the leaf's sibling up, each hash in padded
// standard base64. Events are in ascending index order.
//
// The manifest is an event of type kEvidenceEventType in the tenant's own log (actor
// SystemPrincipal, target the tenant: id, type "Tenant", alternateId its name), written when
// the package is built, with debugContext.debugData:
//   incidentId, incidentTitle   the package's "incident";
//   entryCount                  how many events the package holds (decimal);
//   entriesSha256               lowercase hex SHA-256 of, for each event in package order,
//                               "<decimal index>:<lowercase hex leaf hash>\n";
//   verifierKeysSha256          lowercase hex SHA-256 of each verifierKeys element + "\n".
// So the log itself says which events belong to the package: dropping, adding or reordering an
// event breaks the digest, and the manifest is proven included like the events.
//
// Every byte of the file is bound: the checkpoint by its signature, "origin" and "treeSize" by
// the checkpoint, entries by their leaf hashes and proofs, "incident", "tenant" and
// "verifierKeys" by the manifest, and the layout by the canonical-form check of
// ParseEvidenceFile. Any edit, a re-formatting included, fails.
//
// Thread-safety: the functions are thread-safe; BuildEvidence as far as the store and reader
// given to it are (Store and LogReader are).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit/log_reader.h"
#include "audit/note.h"
#include "common/clock.h"
#include "common/json.h"
#include "crypto/random.h"
#include "store/records.h"
#include "store/store.h"

namespace custos::incident {

inline constexpr std::string_view kEvidenceFormat = "custos-evidence/v1";
inline constexpr std::string_view kEvidenceEventType = "security.incident.evidence";
// ParseEvidenceFile refuses larger files.
inline constexpr size_t kMaxEvidenceFileBytes = size_t{256} << 20;
// Longest incident id or title (bytes): the manifest's debug values are cut beyond this.
inline constexpr size_t kMaxIncidentFieldBytes = 1024;

struct EvidenceRequest {
  std::string incident_id;     // non-empty
  std::string incident_title;  // may be empty
  store::TenantRecord tenant;  // a tenant's log, not the provider log
  // Events of the tenant's log to include, in any order; duplicates count once. May be empty
  // (the package then proves that the tenant was told of no event).
  std::vector<std::string> event_uuids;
  // The vkeys the server publishes (audit::LogKeys::VerifierKeys()), embedded as given. At least
  // one; the key that signs the checkpoint must be among them.
  std::vector<std::string> verifier_keys;
  // Bounds the whole build: waiting for the events to be sequenced, then for a checkpoint over
  // the manifest. Measured in real time (it waits for the sequencer's thread), not with `clock`.
  absl::Duration timeout = absl::Seconds(30);
  absl::Duration poll_interval = absl::Milliseconds(100);
};

// Builds the package for one tenant: finds every requested event in the tenant's log, waits
// until each has a log index, appends the manifest event (in its own store transaction), waits
// until a signed checkpoint covers the manifest, and proves every entry at that checkpoint's
// tree size. The result is checked with VerifyEvidence against `verifier_keys` before it is
// returned. `clock` and `random` make the manifest event (published, uuid).
//
// Errors:
// - kInvalidArgument: an empty incident id, an id or title longer than kMaxIncidentFieldBytes,
//   no or a malformed verifier key, the provider log, a non-positive timeout or interval;
// - kNotFound naming the uuid when an event is not in this tenant's log (another tenant's
//   event included); no manifest is written then;
// - kDeadlineExceeded when the timeout passes: "N of M events are not sequenced yet" (no
//   manifest written), or the manifest was written but no checkpoint covers it yet (the
//   manifest stays in the log, which is append-only; a retry writes another one);
// - kInternal when the built package does not verify against `verifier_keys` (e.g. the signing
//   key is not among them); store errors as they come.
absl::StatusOr<Json> BuildEvidence(store::Store& store, audit::LogReader& reader,
                                   const Clock& clock, crypto::Random& random,
                                   const EvidenceRequest& request);

// The file's bytes: the canonical form of `package` (see above).
std::string SerializeEvidence(const Json& package);

// Parses a file's bytes. kOutOfRange for a file over kMaxEvidenceFileBytes; kInvalidArgument
// when it is not JSON (with the byte offset) or not exactly SerializeEvidence of what it holds
// (edited or re-formatted, with the first differing byte offset).
absl::StatusOr<Json> ParseEvidenceFile(std::string_view bytes);

// What a verified package says.
struct EvidenceSummary {
  std::string tenant_id;
  std::string tenant_name;
  std::string incident_id;
  std::string incident_title;
  std::string origin;
  uint64_t tree_size = 0;
  uint64_t manifest_index = 0;
  size_t event_count = 0;
  // The earliest and latest "published" of the events; nullopt without events.
  std::optional<absl::Time> first_event;
  std::optional<absl::Time> last_event;
  std::vector<std::string> signed_by;  // names of the trusted keys whose signature verified
};

// Checks a package offline; pure. OK only when all of these hold:
// - the format is kEvidenceFormat and every member listed above is present with its type, and
//   no other member is;
// - the checkpoint is signed by a key in `trusted` (note::Open); its body parses, with origin
//   == "origin" and size == "treeSize"; every signature line on it is by a key of
//   "verifierKeys", each of which parses and is written in its canonical form; "origin" ends in
//   "/t/<tenant name>";
// - every entry (manifest and events) is a JSON object, its index is below treeSize, and its
//   proof proves merkle::LeafHash(entry) at that index under the checkpoint's root;
// - the manifest's eventType is kEvidenceEventType, its target is the tenant, and its
//   incidentId, incidentTitle, entryCount, entriesSha256 and verifierKeysSha256 match the
//   package;
// - event indexes are strictly ascending and below the manifest's (the events were in the log
//   before the manifest attested them).
// Errors name what failed, e.g. "event 3 (index 1234): inclusion proof does not match the
// checkpoint root: ..." (events are counted from 0, as in the "events" array):
// kInvalidArgument for a malformed package or an empty `trusted`; kUnauthenticated when the
// checkpoint is not signed by a trusted key; kDataLoss when a proof, digest or binding does not
// hold. `out` may be null; it is written only on success.
absl::Status VerifyEvidence(const Json& package,
                            const std::vector<audit::note::VerifierKey>& trusted,
                            EvidenceSummary* out);

}  // namespace custos::incident
