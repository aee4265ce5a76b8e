#include "incident/evidence.h"

#include <algorithm>
#include <initializer_list>
#include <map>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "audit/checkpoint.h"
#include "audit/event.h"
#include "audit/merkle.h"
#include "common/status_macros.h"
#include "common/time_format.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"

namespace custos::incident {
namespace {

namespace merkle = audit::merkle;
namespace note = audit::note;

// A package nests four levels deep (package, events, event, proof); anything deeper is not one.
constexpr int kMaxDepth = 8;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// An entry of the package with its proof decoded.
struct ProvenEntry {
  uint64_t index = 0;
  std::string entry;
  std::vector<std::string> proof;  // raw hashes
};

struct Package {
  std::string incident_id;
  std::string incident_title;
  std::string tenant_id;
  std::string tenant_name;
  std::string origin;
  uint64_t tree_size = 0;
  std::string checkpoint;
  std::vector<std::string> verifier_keys;
  ProvenEntry manifest;
  std::vector<ProvenEntry> events;
};

absl::Status Malformed(std::string message) {
  return absl::InvalidArgumentError("malformed evidence package: " + std::move(message));
}

// `object` must be a JSON object with exactly these members.
absl::Status CheckMembers(const Json& object, std::string_view where,
                          std::initializer_list<std::string_view> names) {
  if (!object.is_object()) return Malformed(fmt::format("{} is not a JSON object", where));
  for (std::string_view name : names) {
    if (!object.contains(std::string(name))) {
      return Malformed(fmt::format("{} has no member \"{}\"", where, name));
    }
  }
  for (const auto& [key, value] : object.items()) {
    if (std::find(names.begin(), names.end(), key) == names.end()) {
      return Malformed(fmt::format("{} has an unknown member \"{}\"", where, key));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> StringMember(const Json& object, std::string_view where,
                                         std::string_view name) {
  const Json& value = object.at(std::string(name));
  if (!value.is_string()) {
    return Malformed(fmt::format("{}.{} is not a string", where, name));
  }
  return value.get<std::string>();
}

absl::StatusOr<uint64_t> IndexMember(const Json& object, std::string_view where,
                                     std::string_view name) {
  const Json& value = object.at(std::string(name));
  if (!value.is_number_integer() || (!value.is_number_unsigned() && value.get<int64_t>() < 0)) {
    return Malformed(fmt::format("{}.{} is not a non-negative integer", where, name));
  }
  return value.get<uint64_t>();
}

absl::StatusOr<ProvenEntry> ParseProvenEntry(const Json& object, const std::string& where) {
  RETURN_IF_ERROR(CheckMembers(object, where, {"index", "entry", "proof"}));
  ProvenEntry out;
  ASSIGN_OR_RETURN(out.index, IndexMember(object, where, "index"));
  ASSIGN_OR_RETURN(out.entry, StringMember(object, where, "entry"));
  const Json& proof = object.at("proof");
  if (!proof.is_array()) return Malformed(fmt::format("{}.proof is not an array", where));
  for (size_t i = 0; i < proof.size(); ++i) {
    std::optional<std::string> hash =
        proof[i].is_string() ? crypto::Base64Decode(proof[i].get<std::string>()) : std::nullopt;
    if (!hash) {
      return Malformed(fmt::format("{}.proof[{}] is not a base64 string", where, i));
    }
    out.proof.push_back(*std::move(hash));
  }
  return out;
}

absl::StatusOr<Package> ParsePackage(const Json& j) {
  if (!j.is_object()) return Malformed("the package is not a JSON object");
  if (!j.contains("format") || !j["format"].is_string() ||
      j["format"] != std::string(kEvidenceFormat)) {
    return Malformed(fmt::format("\"format\" is not \"{}\"", kEvidenceFormat));
  }
  RETURN_IF_ERROR(CheckMembers(j, "the package",
                               {"format", "incident", "tenant", "origin", "treeSize", "checkpoint",
                                "verifierKeys", "manifest", "events"}));
  Package p;
  const Json& incident = j["incident"];
  RETURN_IF_ERROR(CheckMembers(incident, "incident", {"id", "title"}));
  ASSIGN_OR_RETURN(p.incident_id, StringMember(incident, "incident", "id"));
  ASSIGN_OR_RETURN(p.incident_title, StringMember(incident, "incident", "title"));
  const Json& tenant = j["tenant"];
  RETURN_IF_ERROR(CheckMembers(tenant, "tenant", {"id", "name"}));
  ASSIGN_OR_RETURN(p.tenant_id, StringMember(tenant, "tenant", "id"));
  ASSIGN_OR_RETURN(p.tenant_name, StringMember(tenant, "tenant", "name"));
  ASSIGN_OR_RETURN(p.origin, StringMember(j, "the package", "origin"));
  ASSIGN_OR_RETURN(p.tree_size, IndexMember(j, "the package", "treeSize"));
  ASSIGN_OR_RETURN(p.checkpoint, StringMember(j, "the package", "checkpoint"));
  const Json& keys = j["verifierKeys"];
  if (!keys.is_array()) return Malformed("verifierKeys is not an array");
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!keys[i].is_string()) return Malformed(fmt::format("verifierKeys[{}] is not a string", i));
    p.verifier_keys.push_back(keys[i].get<std::string>());
  }
  ASSIGN_OR_RETURN(p.manifest, ParseProvenEntry(j["manifest"], "manifest"));
  const Json& events = j["events"];
  if (!events.is_array()) return Malformed("events is not an array");
  for (size_t i = 0; i < events.size(); ++i) {
    ASSIGN_OR_RETURN(ProvenEntry event, ParseProvenEntry(events[i], fmt::format("events[{}]", i)));
    p.events.push_back(std::move(event));
  }
  return p;
}

// "<index>:<hex leaf hash>\n" per event, hashed: what the manifest's entriesSha256 holds.
std::string EntriesDigest(const std::vector<std::pair<uint64_t, std::string>>& index_and_leaf) {
  std::string lines;
  for (const auto& [index, leaf] : index_and_leaf) {
    lines += fmt::format("{}:{}\n", index, crypto::HexEncode(leaf));
  }
  return crypto::Sha256Hex(lines);
}

std::string VerifierKeysDigest(const std::vector<std::string>& vkeys) {
  std::string lines;
  for (const std::string& vkey : vkeys) lines += vkey + "\n";
  return crypto::Sha256Hex(lines);
}

// Parses the package's verifier keys; each must be in the one form a server writes, so that no
// byte of them can change unnoticed.
absl::StatusOr<std::vector<note::VerifierKey>> PackageKeys(const std::vector<std::string>& vkeys) {
  if (vkeys.empty()) return Malformed("verifierKeys is empty");
  std::vector<note::VerifierKey> keys;
  std::set<std::string> seen;
  for (size_t i = 0; i < vkeys.size(); ++i) {
    absl::StatusOr<note::VerifierKey> key = note::ParseVerifierKey(vkeys[i]);
    if (!key.ok()) {
      return absl::DataLossError(
          fmt::format("verifierKeys[{}] is not a verifier key: {}", i, Message(key.status())));
    }
    absl::StatusOr<std::string> canonical = note::FormatVerifierKey(key->name, key->public_key);
    if (!canonical.ok() || *canonical != vkeys[i]) {
      return absl::DataLossError(
          fmt::format("verifierKeys[{}] is not written in its canonical form", i));
    }
    if (!seen.insert(vkeys[i]).second) {
      return Malformed(fmt::format("verifierKeys[{}] repeats an earlier key", i));
    }
    keys.push_back(*std::move(key));
  }
  return keys;
}

// Opens the checkpoint with the trusted keys, and checks that the package's own keys account for
// every signature on it (so no signature line can be added or altered either).
absl::StatusOr<std::pair<audit::Checkpoint, std::vector<std::string>>> OpenCheckpoint(
    const Package& p, const std::vector<note::VerifierKey>& trusted) {
  absl::StatusOr<note::OpenedNote> opened = note::Open(p.checkpoint, trusted);
  if (!opened.ok()) {
    return absl::UnauthenticatedError(
        fmt::format("the checkpoint is not signed by a trusted key: {}", Message(opened.status())));
  }
  ASSIGN_OR_RETURN(std::vector<note::VerifierKey> package_keys, PackageKeys(p.verifier_keys));
  absl::StatusOr<note::OpenedNote> self = note::Open(p.checkpoint, package_keys);
  if (!self.ok()) {
    return absl::DataLossError(fmt::format(
        "the checkpoint is not signed by a key in verifierKeys: {}", Message(self.status())));
  }
  const size_t split = p.checkpoint.rfind("\n\n");
  const size_t signatures = std::count(
      p.checkpoint.begin() + static_cast<std::ptrdiff_t>(split) + 2, p.checkpoint.end(), '\n');
  if (self->signed_by.size() != signatures) {
    return absl::DataLossError(
        fmt::format("the checkpoint carries {} signatures, only {} of them by keys in "
                    "verifierKeys",
                    signatures, self->signed_by.size()));
  }
  absl::StatusOr<audit::Checkpoint> checkpoint = audit::ParseCheckpoint(opened->body);
  if (!checkpoint.ok()) {
    return absl::DataLossError(
        fmt::format("the checkpoint body is malformed: {}", Message(checkpoint.status())));
  }
  return std::make_pair(*std::move(checkpoint), std::move(opened->signed_by));
}

// Parses an entry (a JSON object) and checks its proof under `root`. Returns the parsed entry
// and its leaf hash.
absl::StatusOr<std::pair<Json, std::string>> CheckEntry(const ProvenEntry& e,
                                                        const std::string& label,
                                                        uint64_t tree_size,
                                                        const std::string& root) {
  absl::StatusOr<Json> parsed = ParseJson(e.entry);
  if (!parsed.ok() || !parsed->is_object()) {
    return absl::DataLossError(fmt::format("{}: the entry is not a JSON object", label));
  }
  if (e.index >= tree_size) {
    return absl::DataLossError(
        fmt::format("{}: the index is beyond the checkpoint's tree size {}", label, tree_size));
  }
  std::string leaf = merkle::LeafHash(e.entry);
  absl::Status included = merkle::VerifyInclusion(e.index, tree_size, leaf, e.proof, root);
  if (!included.ok()) {
    return absl::DataLossError(fmt::format(
        "{}: inclusion proof does not match the checkpoint root: {}", label, Message(included)));
  }
  return std::make_pair(*std::move(parsed), std::move(leaf));
}

// debugContext.debugData.<key> of the manifest, as a string.
absl::StatusOr<std::string> ManifestData(const Json& manifest, std::string_view key) {
  const Json* data = nullptr;
  if (manifest.contains("debugContext") && manifest["debugContext"].is_object() &&
      manifest["debugContext"].contains("debugData") &&
      manifest["debugContext"]["debugData"].is_object()) {
    data = &manifest["debugContext"]["debugData"];
  }
  if (data == nullptr || !data->contains(std::string(key)) ||
      !(*data)[std::string(key)].is_string()) {
    return absl::DataLossError(fmt::format("the manifest has no debugData.{}", key));
  }
  return (*data)[std::string(key)].get<std::string>();
}

absl::Status CheckManifestValue(const Json& manifest, std::string_view key,
                                std::string_view expected, std::string_view what) {
  ASSIGN_OR_RETURN(std::string value, ManifestData(manifest, key));
  if (value != expected) {
    return absl::DataLossError(
        fmt::format("the manifest's {} is \"{}\", but {} is \"{}\"", key, value, what, expected));
  }
  return absl::OkStatus();
}

absl::Status CheckManifestTarget(const Json& manifest, const Package& p) {
  const Json& target = manifest.contains("target") ? manifest["target"] : Json();
  auto is = [](const Json& object, const char* key, std::string_view value) {
    return object.contains(key) && object[key].is_string() && object[key] == std::string(value);
  };
  if (!target.is_array() || target.size() != 1 || !target[0].is_object() ||
      !is(target[0], "type", "Tenant") || !is(target[0], "id", p.tenant_id) ||
      !is(target[0], "alternateId", p.tenant_name)) {
    return absl::DataLossError(
        fmt::format("the manifest's target is not the tenant {} ({})", p.tenant_name, p.tenant_id));
  }
  return absl::OkStatus();
}

std::optional<absl::Time> PublishedOf(const Json& event) {
  if (!event.contains("published") || !event["published"].is_string()) return std::nullopt;
  absl::StatusOr<absl::Time> t = ParseRfc3339(event["published"].get<std::string>());
  if (!t.ok()) return std::nullopt;
  return *t;
}

absl::Status CheckRequest(const EvidenceRequest& request) {
  if (request.incident_id.empty()) return absl::InvalidArgumentError("the incident id is empty");
  if (request.incident_id.size() > kMaxIncidentFieldBytes ||
      request.incident_title.size() > kMaxIncidentFieldBytes) {
    return absl::InvalidArgumentError(
        fmt::format("the incident id and title may have at most {} bytes", kMaxIncidentFieldBytes));
  }
  if (request.tenant.id.value().empty() || request.tenant.id.value() == store::kProviderLogId) {
    return absl::InvalidArgumentError("evidence packages are made from a tenant's log");
  }
  if (request.verifier_keys.empty()) {
    return absl::InvalidArgumentError("no verifier key to embed in the evidence package");
  }
  if (request.timeout <= absl::ZeroDuration() || request.poll_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the timeout and the poll interval must be positive");
  }
  return absl::OkStatus();
}

void Pause(absl::Duration interval, absl::Time deadline) {
  absl::SleepFor(std::max(absl::ZeroDuration(), std::min(interval, deadline - absl::Now())));
}

// Finds every uuid in the tenant's log and waits until each has a log index. Every uuid is looked
// up before the first wait, so an unknown one is reported at once.
absl::StatusOr<std::vector<store::EventRecord>> WaitUntilSequenced(
    store::Store& store, const EvidenceRequest& request, const std::vector<std::string>& uuids,
    absl::Time deadline) {
  const std::string log_id(request.tenant.id.value());
  std::map<std::string, store::EventRecord> found;
  while (true) {
    std::vector<std::string> pending;
    for (const std::string& uuid : uuids) {
      auto it = found.find(uuid);
      if (it == found.end() || !it->second.log_index) pending.push_back(uuid);
    }
    RETURN_IF_ERROR(store.Read([&](store::Transaction& tx) -> absl::Status {
      for (const std::string& uuid : pending) {
        absl::StatusOr<store::EventRecord> event = tx.Logs().FindEvent(log_id, uuid);
        if (absl::IsNotFound(event.status())) {
          return absl::NotFoundError(fmt::format("event {} is not in the System Log of tenant {}",
                                                 uuid, request.tenant.name));
        }
        RETURN_IF_ERROR(event.status());
        found[uuid] = *std::move(event);
      }
      return absl::OkStatus();
    }));
    const size_t waiting = std::count_if(found.begin(), found.end(),
                                         [](const auto& kv) { return !kv.second.log_index; });
    if (waiting == 0) break;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(fmt::format(
          "{} of {} events are not sequenced into the log of tenant {} after {} (is the log "
          "sequencer running?); no manifest was written",
          waiting, uuids.size(), request.tenant.name, absl::FormatDuration(request.timeout)));
    }
    Pause(request.poll_interval, deadline);
  }
  std::vector<store::EventRecord> events;
  for (auto& [uuid, event] : found) events.push_back(std::move(event));
  std::sort(events.begin(), events.end(),
            [](const auto& a, const auto& b) { return *a.log_index < *b.log_index; });
  return events;
}

// Waits until the manifest has an index and a signed checkpoint covers it; returns the index and
// that checkpoint.
absl::StatusOr<std::pair<uint64_t, store::CheckpointRecord>> WaitForCheckpoint(
    store::Store& store, audit::LogReader& reader, const EvidenceRequest& request,
    const std::string& manifest_uuid, absl::Time deadline) {
  const std::string log_id(request.tenant.id.value());
  while (true) {
    ASSIGN_OR_RETURN(store::EventRecord manifest,
                     store::ReadResult(store, [&](store::Transaction& tx) {
                       return tx.Logs().FindEvent(log_id, manifest_uuid);
                     }));
    if (manifest.log_index) {
      absl::StatusOr<store::CheckpointRecord> latest = reader.LatestCheckpoint(log_id);
      if (latest.ok() && latest->size > *manifest.log_index) {
        return std::make_pair(*manifest.log_index, *std::move(latest));
      }
      if (!latest.ok() && !absl::IsNotFound(latest.status())) return latest.status();
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(fmt::format(
          "the evidence manifest {} was written to the log of tenant {}, but no signed checkpoint "
          "covers it after {} (is the log sequencer running?)",
          manifest_uuid, request.tenant.name, absl::FormatDuration(request.timeout)));
    }
    Pause(request.poll_interval, deadline);
  }
}

Json ProvenJson(uint64_t index, const std::string& entry, const std::vector<std::string>& proof) {
  Json hashes = Json::array();
  for (const std::string& hash : proof) hashes.push_back(crypto::Base64Encode(hash));
  Json j = Json::object();
  j["index"] = index;
  j["entry"] = entry;
  j["proof"] = std::move(hashes);
  return j;
}

}  // namespace

absl::StatusOr<Json> BuildEvidence(store::Store& store, audit::LogReader& reader,
                                   const Clock& clock, crypto::Random& random,
                                   const EvidenceRequest& request) {
  RETURN_IF_ERROR(CheckRequest(request));
  std::vector<note::VerifierKey> keys;
  for (const std::string& vkey : request.verifier_keys) {
    absl::StatusOr<note::VerifierKey> key = note::ParseVerifierKey(vkey);
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("verifier key {}: {}", vkey, Message(key.status())));
    }
    keys.push_back(*std::move(key));
  }
  const absl::Time deadline = absl::Now() + request.timeout;
  const std::string log_id(request.tenant.id.value());

  std::vector<std::string> uuids = request.event_uuids;
  std::sort(uuids.begin(), uuids.end());
  uuids.erase(std::unique(uuids.begin(), uuids.end()), uuids.end());
  ASSIGN_OR_RETURN(std::vector<store::EventRecord> events,
                   WaitUntilSequenced(store, request, uuids, deadline));

  std::vector<std::pair<uint64_t, std::string>> leaves;
  for (const store::EventRecord& event : events) {
    leaves.emplace_back(*event.log_index, merkle::LeafHash(event.json));
  }
  const audit::Principal tenant{request.tenant.id.value(), "Tenant", request.tenant.name,
                                request.tenant.name};
  audit::RequestContext context;
  context.actor = audit::SystemPrincipal();
  const audit::EventSpec spec{
      .event_type = std::string(kEvidenceEventType),
      .display_message = fmt::format("Evidence package for incident {}: {} events",
                                     request.incident_id, events.size()),
      .targets = {tenant},
      .debug_data = {{"incidentId", request.incident_id},
                     {"incidentTitle", request.incident_title},
                     {"entryCount", std::to_string(events.size())},
                     {"entriesSha256", EntriesDigest(leaves)},
                     {"verifierKeysSha256", VerifierKeysDigest(request.verifier_keys)}}};
  const store::EventRecord manifest =
      audit::MakeEvent(request.tenant.id, context, spec, clock, random);
  RETURN_IF_ERROR(
      store.Write([&](store::Transaction& tx) { return tx.Events().Append(manifest).status(); }));

  ASSIGN_OR_RETURN(auto covered,
                   WaitForCheckpoint(store, reader, request, manifest.uuid, deadline));
  const auto& [manifest_index, checkpoint] = covered;
  const uint64_t size = checkpoint.size;

  ASSIGN_OR_RETURN(std::vector<std::string> manifest_proof,
                   reader.InclusionHashes(log_id, manifest_index, size));
  Json proven_events = Json::array();
  for (const store::EventRecord& event : events) {
    ASSIGN_OR_RETURN(std::vector<std::string> proof,
                     reader.InclusionHashes(log_id, *event.log_index, size));
    proven_events.push_back(ProvenJson(*event.log_index, event.json, proof));
  }

  Json package = Json::object();
  package["format"] = std::string(kEvidenceFormat);
  package["incident"] = Json::object();
  package["incident"]["id"] = request.incident_id;
  package["incident"]["title"] = request.incident_title;
  package["tenant"] = Json::object();
  package["tenant"]["id"] = request.tenant.id.value();
  package["tenant"]["name"] = request.tenant.name;
  // The origin line as the checkpoint states it; VerifyEvidence below checks the signature.
  package["origin"] = checkpoint.note.substr(0, checkpoint.note.find('\n'));
  package["treeSize"] = size;
  package["checkpoint"] = checkpoint.note;
  package["verifierKeys"] = request.verifier_keys;
  package["manifest"] = ProvenJson(manifest_index, manifest.json, manifest_proof);
  package["events"] = std::move(proven_events);

  // A package that does not verify is never handed out (e.g. the signing key is not among the
  // keys to embed, or the store's tree disagrees with its entries).
  if (absl::Status verified = VerifyEvidence(package, keys, nullptr); !verified.ok()) {
    return absl::InternalError(
        fmt::format("the evidence package built does not verify: {}", Message(verified)));
  }
  return package;
}

std::string SerializeEvidence(const Json& package) { return DumpJson(package) + "\n"; }

absl::StatusOr<Json> ParseEvidenceFile(std::string_view bytes) {
  if (bytes.size() > kMaxEvidenceFileBytes) {
    return absl::OutOfRangeError(
        fmt::format("the evidence file has {} bytes; an evidence package has at most {} MiB",
                    bytes.size(), kMaxEvidenceFileBytes >> 20));
  }
  bool too_deep = false;
  Json::parser_callback_t depth_limit = [&](int depth, Json::parse_event_t event, Json&) {
    if ((event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start) &&
        depth >= kMaxDepth) {
      too_deep = true;
    }
    return !too_deep;
  };
  Json package;
  try {
    package = Json::parse(bytes.begin(), bytes.end(), depth_limit);
  } catch (const Json::exception& e) {
    const size_t at = e.id == 101 ? static_cast<const Json::parse_error&>(e).byte : 0;
    return absl::InvalidArgumentError(
        at > 0 ? fmt::format("the evidence file is not valid JSON (at byte {})", at)
               : std::string("the evidence file is not valid JSON"));
  }
  if (too_deep) return absl::InvalidArgumentError("the evidence file is nested too deeply");
  if (!package.is_object()) {
    return absl::InvalidArgumentError("the evidence file does not hold a JSON object");
  }
  const std::string canonical = SerializeEvidence(package);
  if (canonical != bytes) {
    const auto differ =
        std::mismatch(canonical.begin(), canonical.end(), bytes.begin(), bytes.end());
    return absl::InvalidArgumentError(fmt::format(
        "the evidence file is not in its canonical form (it differs from it at byte {}): it was "
        "edited or re-formatted",
        differ.first - canonical.begin()));
  }
  return package;
}

absl::Status VerifyEvidence(const Json& package,
                            const std::vector<audit::note::VerifierKey>& trusted,
                            EvidenceSummary* out) {
  if (trusted.empty()) return absl::InvalidArgumentError("no trusted verifier key given");
  ASSIGN_OR_RETURN(Package p, ParsePackage(package));

  ASSIGN_OR_RETURN(auto opened, OpenCheckpoint(p, trusted));
  auto& [checkpoint, signed_by] = opened;
  if (checkpoint.origin != p.origin) {
    return absl::DataLossError(
        fmt::format("the checkpoint is for the log '{}', but the package says '{}'",
                    checkpoint.origin, p.origin));
  }
  if (checkpoint.size != p.tree_size) {
    return absl::DataLossError(
        fmt::format("the checkpoint is at tree size {}, but the package says treeSize {}",
                    checkpoint.size, p.tree_size));
  }
  if (!p.origin.ends_with("/t/" + p.tenant_name)) {
    return absl::DataLossError(
        fmt::format("the log '{}' is not the log of the tenant {}", p.origin, p.tenant_name));
  }

  const std::string manifest_label = fmt::format("manifest (index {})", p.manifest.index);
  ASSIGN_OR_RETURN(auto manifest,
                   CheckEntry(p.manifest, manifest_label, p.tree_size, checkpoint.root_hash));
  const Json& manifest_event = manifest.first;
  if (!manifest_event.contains("eventType") ||
      manifest_event["eventType"] != std::string(kEvidenceEventType)) {
    return absl::DataLossError(
        fmt::format("{}: the entry is not a {} event", manifest_label, kEvidenceEventType));
  }

  std::vector<std::pair<uint64_t, std::string>> leaves;
  std::optional<absl::Time> first, last;
  for (size_t i = 0; i < p.events.size(); ++i) {
    const ProvenEntry& e = p.events[i];
    const std::string label = fmt::format("event {} (index {})", i, e.index);
    if (i > 0 && e.index <= p.events[i - 1].index) {
      return absl::DataLossError(
          fmt::format("{}: indexes are not strictly ascending (event {} has index {})", label,
                      i - 1, p.events[i - 1].index));
    }
    if (e.index == p.manifest.index) {
      return absl::DataLossError(fmt::format("{}: the event is the manifest itself", label));
    }
    if (e.index > p.manifest.index) {
      return absl::DataLossError(
          fmt::format("{}: the event comes after the manifest (index {}), which can only attest "
                      "events already in the log",
                      label, p.manifest.index));
    }
    ASSIGN_OR_RETURN(auto checked, CheckEntry(e, label, p.tree_size, checkpoint.root_hash));
    if (std::optional<absl::Time> t = PublishedOf(checked.first)) {
      if (!first || *t < *first) first = t;
      if (!last || *t > *last) last = t;
    }
    leaves.emplace_back(e.index, std::move(checked.second));
  }

  RETURN_IF_ERROR(CheckManifestTarget(manifest_event, p));
  RETURN_IF_ERROR(CheckManifestValue(manifest_event, "incidentId", p.incident_id, "incident.id"));
  RETURN_IF_ERROR(
      CheckManifestValue(manifest_event, "incidentTitle", p.incident_title, "incident.title"));
  RETURN_IF_ERROR(CheckManifestValue(
      manifest_event, "entriesSha256", EntriesDigest(leaves),
      "the digest of the package's events (an event was dropped, added or reordered)"));
  RETURN_IF_ERROR(CheckManifestValue(manifest_event, "entryCount", std::to_string(p.events.size()),
                                     "the number of events in the package"));
  RETURN_IF_ERROR(CheckManifestValue(manifest_event, "verifierKeysSha256",
                                     VerifierKeysDigest(p.verifier_keys),
                                     "the digest of the package's verifierKeys"));

  if (out != nullptr) {
    *out = EvidenceSummary{.tenant_id = p.tenant_id,
                           .tenant_name = p.tenant_name,
                           .incident_id = p.incident_id,
                           .incident_title = p.incident_title,
                           .origin = p.origin,
                           .tree_size = p.tree_size,
                           .manifest_index = p.manifest.index,
                           .event_count = p.events.size(),
                           .first_event = first,
                           .last_event = last,
                           .signed_by = std::move(signed_by)};
  }
  return absl::OkStatus();
}

}  // namespace custos::incident
