#include "audit/log_verifier.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "audit/merkle.h"
#include "audit/note.h"
#include "audit/tiles.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "common/time_format.h"
#include "crypto/encoding.h"
#include "fmt/format.h"

namespace custos::audit {
namespace {

constexpr char kFailurePayloadUrl[] = "type.custos.dev/custos.audit.LogVerificationFailure";
constexpr std::string_view kTlogProofHeader = "c2sp.org/tlog-proof@v1";
constexpr std::string_view kSigPrefix = "\xe2\x80\x94 ";  // U+2014 EM DASH, space
constexpr uint64_t kTileWidth = tiles::kTileWidth;

std::string B64(std::string_view data) { return crypto::Base64Encode(data); }

// Reads a C2SP entry bundle one entry at a time, so that a short or truncated bundle still
// yields the entries before the damage.
class BundleReader {
 public:
  explicit BundleReader(std::string_view data) : data_(data) {}

  // The next entry, or nullopt at the end or at a truncated entry (then truncated() is true).
  std::optional<std::string_view> Next() {
    if (data_.empty()) return std::nullopt;
    if (data_.size() < 2) return Truncate();
    size_t length = (static_cast<uint8_t>(data_[0]) << 8) | static_cast<uint8_t>(data_[1]);
    if (data_.size() < 2 + length) return Truncate();
    std::string_view entry = data_.substr(2, length);
    data_.remove_prefix(2 + length);
    consumed_ += 2 + length;
    return entry;
  }
  bool truncated() const { return truncated_; }
  bool at_end() const { return data_.empty(); }
  size_t consumed() const { return consumed_; }

 private:
  std::optional<std::string_view> Truncate() {
    truncated_ = true;
    data_ = {};
    return std::nullopt;
  }

  std::string_view data_;
  size_t consumed_ = 0;
  bool truncated_ = false;
};

absl::StatusOr<std::vector<note::VerifierKey>> ParseKeys(const std::vector<std::string>& vkeys) {
  std::vector<note::VerifierKey> keys;
  for (const std::string& vkey : vkeys) {
    absl::StatusOr<note::VerifierKey> key = note::ParseVerifierKey(vkey);
    if (!key.ok()) {
      return absl::InvalidArgumentError(fmt::format("\"{}\" is not a verifier key: {}", vkey,
                                                    std::string(key.status().message())));
    }
    keys.push_back(*std::move(key));
  }
  return keys;
}

// "name+keyid" of every signature line of a note, to say who signed a checkpoint that no
// trusted key signed. Best effort: lines that do not parse are skipped.
std::vector<std::string> SignerHints(std::string_view note_text) {
  std::vector<std::string> hints;
  size_t split = note_text.rfind("\n\n");
  if (split == std::string_view::npos) return hints;
  std::string_view sigs = note_text.substr(split + 2);
  while (!sigs.empty()) {
    size_t eol = sigs.find('\n');
    std::string_view line = sigs.substr(0, eol);
    sigs = eol == std::string_view::npos ? std::string_view() : sigs.substr(eol + 1);
    if (line.substr(0, kSigPrefix.size()) != kSigPrefix) continue;
    line.remove_prefix(kSigPrefix.size());
    size_t space = line.find(' ');
    if (space == std::string_view::npos) continue;
    std::optional<std::string> blob = crypto::Base64Decode(line.substr(space + 1));
    if (!blob || blob->size() < 4) continue;
    uint32_t key_id = 0;
    for (int i = 0; i < 4; ++i) key_id = (key_id << 8) | static_cast<uint8_t>((*blob)[i]);
    hints.push_back(fmt::format("{}+{:08x}", line.substr(0, space), key_id));
  }
  return hints;
}

std::string JoinOrNone(const std::vector<std::string>& items) {
  return items.empty() ? std::string("none") : fmt::format("{}", fmt::join(items, ", "));
}

// Opens and parses a signed checkpoint; every problem is a log verification failure.
absl::StatusOr<std::pair<note::OpenedNote, Checkpoint>> OpenCheckpoint(
    std::string_view note_text, const std::vector<note::VerifierKey>& keys,
    const std::vector<std::string>& trusted_vkeys) {
  absl::StatusOr<note::OpenedNote> opened = note::Open(note_text, keys);
  if (!opened.ok()) {
    const std::string why(opened.status().message());
    if (absl::IsInvalidArgument(opened.status())) {
      return LogVerificationFailure("the checkpoint is not a valid signed note: " + why);
    }
    std::vector<std::string> hints = SignerHints(note_text);
    const bool trusted_signer = std::any_of(hints.begin(), hints.end(), [&](const std::string& h) {
      return std::any_of(keys.begin(), keys.end(), [&](const note::VerifierKey& k) {
        return h == fmt::format("{}+{:08x}", k.name, k.key_id);
      });
    });
    if (!trusted_signer) {
      return LogVerificationFailure(fmt::format(
          "the checkpoint is not signed by a trusted key: it is signed by {}; trusted: {} (if "
          "the log changed its key, check the new key and pass it with --vkey)",
          JoinOrNone(hints), JoinOrNone(trusted_vkeys)));
    }
    return LogVerificationFailure("the checkpoint's signature is not valid: " + why);
  }
  absl::StatusOr<Checkpoint> checkpoint = ParseCheckpoint(opened->body);
  if (!checkpoint.ok()) {
    return LogVerificationFailure("the checkpoint is malformed: " +
                                  std::string(checkpoint.status().message()));
  }
  return std::make_pair(*std::move(opened), *std::move(checkpoint));
}

absl::Status CheckState(const VerifyState& state) {
  ASSIGN_OR_RETURN(CompactRange range, CompactRange::FromHashes(state.size, state.compact_range));
  if (range.Root() != state.root_hash) {
    return absl::InvalidArgumentError(
        "the state's compact range does not give its root hash: the state file is damaged");
  }
  return ParseKeys(state.verifier_keys).status();
}

// The fetch errors of a resource the checkpoint commits to: a missing one is the log's fault.
absl::Status ResourceError(const absl::Status& status, std::string_view what, uint64_t index) {
  if (!absl::IsNotFound(status)) return status;
  return LogVerificationFailure(
      fmt::format("index {}: the log does not serve {} ({}): its entries cannot be checked", index,
                  what, std::string(status.message())),
      index);
}

}  // namespace

absl::Status LogVerificationFailure(std::string message, std::optional<uint64_t> index) {
  absl::Status status = absl::DataLossError(message);
  status.SetPayload(kFailurePayloadUrl, absl::Cord(index ? std::to_string(*index) : std::string()));
  return status;
}

bool IsLogVerificationFailure(const absl::Status& status) {
  return status.GetPayload(kFailurePayloadUrl).has_value();
}

std::optional<uint64_t> FailedIndex(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kFailurePayloadUrl);
  if (!payload || payload->empty()) return std::nullopt;
  uint64_t index = 0;
  if (!absl::SimpleAtoi(std::string(*payload), &index)) return std::nullopt;
  return index;
}

absl::StatusOr<CompactRange> CompactRange::FromHashes(uint64_t size,
                                                      std::vector<std::string> hashes) {
  if (hashes.size() != static_cast<size_t>(std::popcount(size))) {
    return absl::InvalidArgumentError(
        fmt::format("a compact range of size {} has {} hashes, not {}", size, std::popcount(size),
                    hashes.size()));
  }
  for (const std::string& h : hashes) {
    if (h.size() != merkle::kHashSize) {
      return absl::InvalidArgumentError(
          fmt::format("a compact range hash has {} bytes, expected 32", h.size()));
    }
  }
  CompactRange range;
  range.size_ = size;
  range.hashes_ = std::move(hashes);
  return range;
}

void CompactRange::Append(std::string_view leaf_hash) {
  hashes_.emplace_back(leaf_hash);
  // Each trailing one bit of the old size is a subtree of the same height as the one just
  // completed on its right: merge them, lowest first.
  for (uint64_t s = size_; (s & 1) != 0; s >>= 1) {
    std::string right = std::move(hashes_.back());
    hashes_.pop_back();
    hashes_.back() = merkle::NodeHash(hashes_.back(), right);
  }
  ++size_;
}

std::string CompactRange::Root() const {
  if (hashes_.empty()) return merkle::EmptyRoot();
  // MTH splits at the largest power of two below the size, which is exactly the leftmost
  // subtree; so the root folds the subtrees from the right.
  std::string root = hashes_.back();
  for (size_t i = hashes_.size() - 1; i-- > 0;) root = merkle::NodeHash(hashes_[i], root);
  return root;
}

std::string FormatVerifyState(const VerifyState& state) {
  OrderedJson j;
  j["origin"] = state.origin;
  j["size"] = state.size;
  j["rootHash"] = B64(state.root_hash);
  j["checkpoint"] = state.checkpoint;
  j["verifierKeys"] = state.verifier_keys;
  OrderedJson range = OrderedJson::array();
  for (const std::string& h : state.compact_range) range.push_back(B64(h));
  j["compactRange"] = std::move(range);
  j["verifiedAt"] = FormatRfc3339(state.verified_at);
  return j.dump(2, ' ', false, OrderedJson::error_handler_t::replace) + "\n";
}

absl::StatusOr<VerifyState> ParseVerifyState(std::string_view json) {
  ASSIGN_OR_RETURN(Json j, ParseJson(json));
  auto bad = [](std::string_view field, std::string_view what) {
    return absl::InvalidArgumentError(fmt::format("state: \"{}\" {}", field, what));
  };
  if (!j.is_object()) return absl::InvalidArgumentError("state: not a JSON object");
  auto string_field = [&](const char* name) -> absl::StatusOr<std::string> {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string()) return bad(name, "is missing or not a string");
    return it->get<std::string>();
  };
  auto hash_of = [&](const char* name, const std::string& text) -> absl::StatusOr<std::string> {
    std::optional<std::string> raw = crypto::Base64Decode(text);
    if (!raw || raw->size() != merkle::kHashSize) return bad(name, "holds a bad hash");
    return *raw;
  };
  auto string_list = [&](const char* name) -> absl::StatusOr<std::vector<std::string>> {
    auto it = j.find(name);
    if (it == j.end() || !it->is_array()) return bad(name, "is missing or not an array");
    std::vector<std::string> out;
    for (const Json& item : *it) {
      if (!item.is_string()) return bad(name, "holds a value that is not a string");
      out.push_back(item.get<std::string>());
    }
    return out;
  };

  VerifyState state;
  ASSIGN_OR_RETURN(state.origin, string_field("origin"));
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_unsigned()) {
    return bad("size", "is missing or not a non-negative integer");
  }
  state.size = size->get<uint64_t>();
  ASSIGN_OR_RETURN(std::string root_text, string_field("rootHash"));
  ASSIGN_OR_RETURN(state.root_hash, hash_of("rootHash", root_text));
  ASSIGN_OR_RETURN(state.checkpoint, string_field("checkpoint"));
  ASSIGN_OR_RETURN(state.verifier_keys, string_list("verifierKeys"));
  ASSIGN_OR_RETURN(std::vector<std::string> range_text, string_list("compactRange"));
  for (const std::string& text : range_text) {
    ASSIGN_OR_RETURN(std::string h, hash_of("compactRange", text));
    state.compact_range.push_back(std::move(h));
  }
  ASSIGN_OR_RETURN(std::string verified_at, string_field("verifiedAt"));
  absl::StatusOr<absl::Time> t = ParseRfc3339(verified_at);
  if (!t.ok()) return bad("verifiedAt", "is not an RFC 3339 time");
  state.verified_at = *t;
  RETURN_IF_ERROR(CheckState(state));
  return state;
}

absl::StatusOr<std::string> FetchTile(LogSource& source, int level, uint64_t index, int width) {
  const size_t want = static_cast<size_t>(width) * merkle::kHashSize;
  std::string path = tiles::TilePath(level, index, width);
  absl::StatusOr<std::string> data = source.Fetch(path);
  if (absl::IsNotFound(data.status()) && width < tiles::kTileWidth) {
    path = tiles::TilePath(level, index, tiles::kTileWidth);
    data = source.Fetch(path);
    if (data.ok() && data->size() == kTileWidth * merkle::kHashSize) data->resize(want);
  }
  if (!data.ok()) return data.status();
  if (data->size() != want) {
    std::string message =
        fmt::format("{} has {} bytes, expected {} ({} hashes)", path, data->size(), want, width);
    if (level != 0) return LogVerificationFailure(std::move(message));
    return LogVerificationFailure(fmt::format("index {}: {}", index * kTileWidth, message),
                                  index * kTileWidth);
  }
  return data;
}

absl::StatusOr<std::string> FetchEntryBundle(LogSource& source, uint64_t index, int width) {
  absl::StatusOr<std::string> data = source.Fetch(tiles::EntriesPath(index, width));
  if (absl::IsNotFound(data.status()) && width < tiles::kTileWidth) {
    data = source.Fetch(tiles::EntriesPath(index, tiles::kTileWidth));
    if (data.ok()) {
      BundleReader reader(*data);
      for (int i = 0; i < width && reader.Next(); ++i) {
      }
      data->resize(reader.consumed());
    }
  }
  return data;
}

absl::StatusOr<VerifyReport> VerifyLog(LogSource& source, const VerifyOptions& options,
                                       const std::optional<VerifyState>& previous,
                                       const ProgressFn& progress) {
  std::vector<std::string> trusted = options.trusted_keys;
  if (previous) {
    RETURN_IF_ERROR(CheckState(*previous));
    for (const std::string& vkey : previous->verifier_keys) {
      if (std::find(trusted.begin(), trusted.end(), vkey) == trusted.end()) trusted.push_back(vkey);
    }
  }
  ASSIGN_OR_RETURN(std::vector<note::VerifierKey> keys, ParseKeys(trusted));
  const std::string since =
      previous ? FormatRfc3339(previous->verified_at) : std::string("(never)");

  absl::StatusOr<std::string> note_text = source.Fetch("checkpoint");
  if (absl::IsNotFound(note_text.status())) {
    if (previous && previous->size > 0) {
      return LogVerificationFailure(
          fmt::format("the log has no checkpoint any more, but you verified it at size {} on {}",
                      previous->size, since));
    }
    return absl::NotFoundError(
        fmt::format("the log has no checkpoint (empty log, or wrong source?): {}",
                    std::string(note_text.status().message())));
  }
  if (!note_text.ok()) return note_text.status();

  VerifyReport report;
  if (keys.empty()) {
    absl::StatusOr<std::string> published = source.Fetch("keys");
    if (!published.ok()) {
      return absl::Status(published.status().code(),
                          fmt::format("no trusted key given, and the log's keys are not available: "
                                      "{}",
                                      std::string(published.status().message())));
    }
    std::string_view rest = *published;
    while (!rest.empty()) {
      size_t eol = rest.find('\n');
      std::string_view line = rest.substr(0, eol);
      rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) continue;
      absl::StatusOr<note::VerifierKey> key = note::ParseVerifierKey(line);
      if (!key.ok()) {
        return LogVerificationFailure(
            fmt::format("the log's keys hold a line that is not a "
                        "verifier key: {}",
                        std::string(key.status().message())));
      }
      keys.push_back(*std::move(key));
      report.trusted_on_first_use.emplace_back(line);
      trusted.emplace_back(line);
    }
    if (keys.empty()) return LogVerificationFailure("the log publishes no keys");
  }

  ASSIGN_OR_RETURN(auto opened, OpenCheckpoint(*note_text, keys, trusted));
  report.signed_by = std::move(opened.first.signed_by);
  const Checkpoint& cp = report.checkpoint = std::move(opened.second);

  if (previous) {
    if (cp.origin != previous->origin) {
      return LogVerificationFailure(
          fmt::format("the checkpoint is for log \"{}\", but the state is for log \"{}\"",
                      cp.origin, previous->origin));
    }
    if (cp.size < previous->size) {
      return LogVerificationFailure(fmt::format(
          "rollback: the log's checkpoint has size {}, smaller than size {} you verified on {}",
          cp.size, previous->size, since));
    }
    if (cp.size == previous->size && cp.root_hash != previous->root_hash) {
      return LogVerificationFailure(fmt::format(
          "history rewritten: the log signed a different root for the tree of size {} you "
          "verified on {}",
          previous->size, since));
    }
  }

  const bool incremental = options.incremental && previous;
  CompactRange range;
  uint64_t start = 0;
  if (incremental) {
    ASSIGN_OR_RETURN(range, CompactRange::FromHashes(previous->size, previous->compact_range));
    start = previous->size;
  }
  report.first_checked = start;

  for (uint64_t tile = start / kTileWidth; tile * kTileWidth < cp.size; ++tile) {
    const int width = tiles::TileWidthAt(cp.size, 0, tile);
    const uint64_t first = tile * kTileWidth;
    const std::string tile_path = tiles::TilePath(0, tile, width);
    const std::string bundle_path = tiles::EntriesPath(tile, width);
    absl::StatusOr<std::string> hashes = FetchTile(source, 0, tile, width);
    if (!hashes.ok()) return ResourceError(hashes.status(), tile_path, first);
    absl::StatusOr<std::string> bundle = FetchEntryBundle(source, tile, width);
    if (!bundle.ok()) return ResourceError(bundle.status(), bundle_path, first);

    BundleReader reader(*bundle);
    // In incremental mode, the leaves of this tile before `start`: they must rebuild the low
    // end of the state's compact range.
    CompactRange before_start;
    for (int j = 0; j < width; ++j) {
      const uint64_t i = first + j;
      std::optional<std::string_view> entry = reader.Next();
      if (!entry) {
        return LogVerificationFailure(
            fmt::format("index {}: the entry is missing: {} {} before it (it should hold the "
                        "entries up to index {}; the server stops a bundle at the first "
                        "missing event, so later ones may be there)",
                        i, bundle_path, reader.truncated() ? "is cut off" : "ends",
                        first + width - 1),
            i);
      }
      const std::string leaf = merkle::LeafHash(*entry);
      if (leaf != std::string_view(*hashes).substr(j * merkle::kHashSize, merkle::kHashSize)) {
        return LogVerificationFailure(
            fmt::format("index {}: the entry does not match the log's leaf hash: the event was "
                        "altered, removed or moved",
                        i),
            i);
      }
      if (i < start) {
        before_start.Append(leaf);
        continue;
      }
      range.Append(leaf);
      if (previous && !incremental && range.size() == previous->size &&
          range.Root() != previous->root_hash) {
        return LogVerificationFailure(fmt::format(
            "history rewritten: the tree of size {} no longer has the root you verified on {}",
            previous->size, since));
      }
    }
    if (!reader.at_end()) {
      return LogVerificationFailure(
          fmt::format("index {}: {} holds more than the {} entries the tree of size {} has there: "
                      "an entry was inserted",
                      first + width, bundle_path, width, cp.size),
          first + width);
    }
    if (before_start.size() > 0) {
      const std::vector<std::string>& low = before_start.hashes();
      const std::vector<std::string>& state_hashes = previous->compact_range;
      if (!std::equal(low.rbegin(), low.rend(), state_hashes.rbegin())) {
        return LogVerificationFailure(fmt::format(
            "history rewritten: the tree of size {} no longer has the root you verified on {} "
            "(entries {} to {} changed)",
            previous->size, since, first, start - 1));
      }
    }
    if (progress) progress(first + width, cp.size);
  }

  const std::string root = range.Root();
  if (root != cp.root_hash) {
    if (incremental && start > 0) {
      return LogVerificationFailure(fmt::format(
          "the entries do not produce the signed root: entries {} to {} added to the tree of "
          "size {} you verified on {} give root {}, the checkpoint of size {} says {} (the history "
          "before index {} may have been rewritten: verify without --incremental to see where)",
          start, cp.size - 1, start, since, B64(root), cp.size, B64(cp.root_hash), start));
    }
    return LogVerificationFailure(
        fmt::format("the entries do not produce the signed root: entries 0 to {} give root {}, "
                    "the checkpoint of size {} says {}",
                    cp.size == 0 ? 0 : cp.size - 1, B64(root), cp.size, B64(cp.root_hash)));
  }

  report.consistent_with_previous = previous.has_value();
  report.state.origin = cp.origin;
  report.state.size = cp.size;
  report.state.root_hash = cp.root_hash;
  report.state.checkpoint = *note_text;
  report.state.verifier_keys = std::move(trusted);
  report.state.compact_range = range.hashes();
  report.state.verified_at = options.clock->Now();
  return report;
}

std::string FormatTlogProof(const TlogProof& proof) {
  std::string out(kTlogProofHeader);
  out += '\n';
  if (proof.extra) out += fmt::format("extra {}\n", B64(*proof.extra));
  out += fmt::format("index {}\n", proof.index);
  for (const std::string& h : proof.hashes) out += B64(h) + "\n";
  out += '\n';
  out += proof.checkpoint;
  return out;
}

absl::StatusOr<TlogProof> ParseTlogProof(std::string_view text) {
  auto next_line = [&text]() -> std::optional<std::string_view> {
    size_t eol = text.find('\n');
    if (eol == std::string_view::npos) return std::nullopt;
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol + 1);
    return line;
  };
  auto malformed = [](std::string_view why) {
    return absl::InvalidArgumentError(fmt::format("not a tlog-proof: {}", why));
  };

  std::optional<std::string_view> line = next_line();
  if (!line || *line != kTlogProofHeader) {
    return malformed("the first line is not \"c2sp.org/tlog-proof@v1\"");
  }
  TlogProof proof;
  line = next_line();
  if (line && line->substr(0, 6) == "extra ") {
    std::optional<std::string> extra = crypto::Base64Decode(line->substr(6));
    if (!extra) return malformed("the extra data is not valid base64");
    proof.extra = std::move(extra);
    line = next_line();
  }
  if (!line || line->substr(0, 6) != "index ") return malformed("no \"index\" line");
  std::string_view digits = line->substr(6);
  if (digits.empty() || digits.size() > 20 || (digits.size() > 1 && digits[0] == '0') ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return malformed("the index is not a decimal number without leading zeros");
  }
  uint64_t index = 0;
  for (char c : digits) {
    const uint64_t digit = c - '0';
    if (index > (UINT64_MAX - digit) / 10) return malformed("the index does not fit 64 bits");
    index = index * 10 + digit;
  }
  proof.index = index;
  while (true) {
    line = next_line();
    if (!line) return malformed("no blank line before the checkpoint");
    if (line->empty()) break;
    std::optional<std::string> h = crypto::Base64Decode(*line);
    if (!h || h->size() != merkle::kHashSize) {
      return malformed(
          fmt::format("proof line {} is not a base64 SHA-256 hash", proof.hashes.size() + 1));
    }
    proof.hashes.push_back(*std::move(h));
    if (proof.hashes.size() > 64) return malformed("more than 64 proof hashes");
  }
  if (text.empty()) return malformed("no checkpoint after the blank line");
  proof.checkpoint = std::string(text);
  return proof;
}

absl::StatusOr<VerifiedTlogProof> VerifyTlogProof(std::string_view proof_text,
                                                  const std::optional<std::string>& entry,
                                                  const std::vector<std::string>& trusted_keys) {
  ASSIGN_OR_RETURN(std::vector<note::VerifierKey> keys, ParseKeys(trusted_keys));
  if (keys.empty()) return absl::InvalidArgumentError("no trusted key given");
  absl::StatusOr<TlogProof> proof = ParseTlogProof(proof_text);
  if (!proof.ok()) return LogVerificationFailure(std::string(proof.status().message()));
  if (!entry && !proof->extra) {
    return absl::InvalidArgumentError("the proof carries no entry (no \"extra\" line): give one");
  }
  ASSIGN_OR_RETURN(auto opened, OpenCheckpoint(proof->checkpoint, keys, trusted_keys));

  VerifiedTlogProof verified;
  verified.checkpoint = std::move(opened.second);
  verified.signed_by = std::move(opened.first.signed_by);
  verified.index = proof->index;
  verified.entry = entry ? *entry : *proof->extra;
  absl::Status included = merkle::VerifyInclusion(proof->index, verified.checkpoint.size,
                                                  merkle::LeafHash(verified.entry), proof->hashes,
                                                  verified.checkpoint.root_hash);
  if (!included.ok()) {
    return LogVerificationFailure(
        fmt::format("index {}: the entry is not proven to be in the log of size {}: {}",
                    proof->index, verified.checkpoint.size, std::string(included.message())),
        proof->index);
  }
  return verified;
}

}  // namespace custos::audit
