#include "audit/sequencer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "audit/checkpoint.h"
#include "audit/merkle.h"
#include "audit/note.h"
#include "common/files.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "crypto/encoding.h"

namespace custos::audit {
namespace {

// The C2SP entry bundle prefixes each entry with a 16-bit length.
constexpr size_t kMaxEntryBytes = 65535;

// One line per log: "<log id> <size> <base64 root>".
std::string FormatHeads(const std::map<std::string, std::pair<uint64_t, std::string>>& heads) {
  std::string out;
  for (const auto& [log_id, head] : heads) {
    out += fmt::format("{} {} {}\n", log_id, head.first, crypto::Base64Encode(head.second));
  }
  return out;
}

}  // namespace

std::string TenantLogOrigin(std::string_view host, std::string_view tenant_name) {
  return fmt::format("{}/t/{}", host, tenant_name);
}

std::string ProviderLogOrigin(std::string_view host) { return fmt::format("{}/provider", host); }

Sequencer::Sequencer(store::Store& store, LogKeys& keys, const Clock& clock,
                     SequencerOptions options)
    : store_(store), keys_(keys), clock_(clock), options_(std::move(options)) {
  if (options_.metrics != nullptr) {
    events_counter_ = &options_.metrics->AddCounter(
        "custos_log_events_sequenced_total", "System Log events appended to a verifiable log.", {});
    checkpoints_counter_ = &options_.metrics->AddCounter(
        "custos_log_checkpoints_signed_total", "Checkpoints signed over a verifiable log.", {});
    failures_counter_ = &options_.metrics->AddCounter(
        "custos_log_sequencer_failures_total",
        "Sequencer rounds that failed (see the server log); events wait in the outbox.", {});
    inconsistent_counter_ = &options_.metrics->AddCounter(
        "custos_log_inconsistent_checkpoints_total",
        "Stored checkpoints found, while following another node, not to extend what this node "
        "signed or saw signed (the store went back or forked); it will refuse to sign.",
        {});
    leader_gauge_ = &options_.metrics->AddGauge(
        "custos_log_sequencer_leader",
        "1 while this process leads the log sequencer (holds its store lease), else 0.", {});
    leader_gauge_->Set({}, 0);
  }
}

Sequencer::~Sequencer() { Stop(); }

absl::Status Sequencer::Recover() {
  absl::MutexLock lock(&mu_);
  if (!broken_.ok()) return broken_;
  ASSIGN_OR_RETURN(const bool leading, LeadLocked());
  RETURN_IF_ERROR(RecoverLocked());
  if (leading) return SignLocked();
  // Checked only: the leader signs, and this process reloads when it takes over.
  ForgetLogsLocked();
  return absl::OkStatus();
}

absl::Status Sequencer::NotLeadingError() {
  return absl::UnavailableError("another process leads the log sequencer");
}

bool Sequencer::leading() const { return leading_.load(std::memory_order_acquire); }

absl::StatusOr<bool> Sequencer::LeadLocked() {
  if (lease_ != nullptr) {
    if (lease_->Held()) return true;
    StepDownLocked(/*lost=*/true);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<store::LeaderLease> lease, store_.TryLead(kSequencerLease));
  if (lease == nullptr) return false;
  lease_ = std::move(lease);
  // Another process may have sequenced since this one last loaded the logs.
  ForgetLogsLocked();
  leading_.store(true, std::memory_order_release);
  if (leader_gauge_ != nullptr) leader_gauge_->Set({}, 1);
  Log(LogLevel::kInfo, "log sequencer leading");
  return true;
}

void Sequencer::StepDownLocked(bool lost) {
  lease_.reset();
  ForgetLogsLocked();
  leading_.store(false, std::memory_order_release);
  if (leader_gauge_ != nullptr) leader_gauge_->Set({}, 0);
  Log(lost ? LogLevel::kWarn : LogLevel::kInfo, "log sequencer stopped leading",
      {{"reason", lost ? "the lease was lost" : "stopped"}});
}

void Sequencer::ForgetLogsLocked() {
  recovered_ = false;
  logs_.clear();
  unsigned_.clear();
}

absl::Status Sequencer::LoadSignedHeadsLocked() {
  signed_heads_.clear();
  heads_loaded_ = false;
  if (options_.signed_heads_path.empty()) return absl::OkStatus();
  std::ifstream in(options_.signed_heads_path);
  if (!in) {
    if (errno != ENOENT) {
      return absl::InternalError(
          fmt::format("{}: {}", options_.signed_heads_path, std::strerror(errno)));
    }
    heads_loaded_ = true;
    return absl::OkStatus();
  }
  std::string log_id, root_b64;
  uint64_t size = 0;
  while (in >> log_id >> size >> root_b64) {
    std::optional<std::string> root = crypto::Base64Decode(root_b64);
    if (!root || root->size() != merkle::kHashSize) {
      signed_heads_.clear();
      return absl::DataLossError(
          fmt::format("{}: the root of log {} is not valid", options_.signed_heads_path, log_id));
    }
    signed_heads_[log_id] = {size, *root};
  }
  heads_loaded_ = true;
  return absl::OkStatus();
}

absl::Status Sequencer::SaveSignedHeadsLocked() {
  if (options_.signed_heads_path.empty()) return absl::OkStatus();
  return WriteFileAtomically(options_.signed_heads_path, FormatHeads(signed_heads_));
}

absl::Status Sequencer::RecoverLocked() {
  if (!broken_.ok()) return broken_;
  logs_.clear();
  unsigned_.clear();
  RETURN_IF_ERROR(LoadSignedHeadsLocked());
  absl::Status checked = store_.Read([&](store::Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<store::LogStateRecord> states, tx.Logs().ListStates());
    for (store::LogStateRecord& state : states) {
      TransactionTileReader reader(tx, state.log_id);
      absl::StatusOr<tiles::TreeBuilder> tree = tiles::TreeBuilder::Load(state.size, reader);
      if (!tree.ok()) {
        return absl::DataLossError(fmt::format("log {}: the tiles of its {} entries: {}",
                                               state.log_id, state.size,
                                               std::string(tree.status().message())));
      }
      if (tree->Root() != state.root_hash) {
        return absl::DataLossError(fmt::format(
            "log {}: its tiles do not give the stored root of size {}", state.log_id, state.size));
      }
      absl::StatusOr<store::CheckpointRecord> latest = tx.Logs().LatestCheckpoint(state.log_id);
      if (!latest.ok() && !absl::IsNotFound(latest.status())) return latest.status();
      if (latest.ok()) {
        if (latest->size > state.size) {
          return absl::DataLossError(fmt::format(
              "log {}: a checkpoint was signed at size {} but the stored tree has only {} "
              "entries (was the store restored from an older copy?)",
              state.log_id, latest->size, state.size));
        }
        ASSIGN_OR_RETURN(std::string root, tiles::RootAt(latest->size, reader));
        if (root != latest->root_hash) {
          return absl::DataLossError(
              fmt::format("log {}: the stored tree of size {} is not the one its checkpoint signed",
                          state.log_id, latest->size));
        }
      }
      // What this server signed (or saw signed) before must still be in the store, as it was.
      if (auto head = signed_heads_.find(state.log_id); head != signed_heads_.end()) {
        const auto& [signed_size, signed_root] = head->second;
        if (signed_size > state.size) {
          return absl::DataLossError(fmt::format(
              "log {}: this server signed (or saw signed) a checkpoint at size {}, but the store "
              "has only {} entries (was the store restored from an older copy?)",
              state.log_id, signed_size, state.size));
        }
        ASSIGN_OR_RETURN(std::string root, tiles::RootAt(signed_size, reader));
        if (root != signed_root) {
          return absl::DataLossError(fmt::format(
              "log {}: the stored tree of size {} is not the one this server signed (or saw "
              "signed) (was the store restored from an older copy and grown since?)",
              state.log_id, signed_size));
        }
      }
      if (!latest.ok() || latest->size < state.size) unsigned_.insert(state.log_id);
      logs_[state.log_id] = LogCursor{.origin = state.origin, .tree = *std::move(tree)};
    }
    // A log this server signed must not have vanished from the store.
    for (const auto& [log_id, head] : signed_heads_) {
      if (!logs_.contains(log_id)) {
        return absl::DataLossError(fmt::format(
            "log {}: this server signed (or saw signed) a checkpoint at size {}, but the store "
            "has no such log (was the store restored from an older copy?)",
            log_id, head.first));
      }
    }
    return absl::OkStatus();
  });
  if (absl::IsDataLoss(checked)) {
    broken_ = checked;
    Log(LogLevel::kError, "the verifiable log is inconsistent; no checkpoint will be signed",
        {{"error", std::string(checked.message())}});
  }
  RETURN_IF_ERROR(checked);
  recovered_ = true;
  return absl::OkStatus();
}

absl::StatusOr<int> Sequencer::RunOnce() {
  absl::MutexLock lock(&mu_);
  return RunOnceLocked();
}

absl::StatusOr<int> Sequencer::RunOnceLocked() {
  if (!broken_.ok()) {
    // Refusing, but keeping the lease while it is held: see Recover.
    if (lease_ != nullptr && !lease_->Held()) StepDownLocked(/*lost=*/true);
    return broken_;
  }
  ASSIGN_OR_RETURN(const bool leading, LeadLocked());
  if (!leading) {
    // Following is not leading's business: its failures are logged here, once each, and the
    // round still says who leads.
    absl::Status followed = FollowLocked();
    if (!followed.ok() && followed != follow_error_) {
      Log(LogLevel::kWarn, "log sequencer could not follow the leader's checkpoints",
          {{"error", std::string(followed.message())}});
    }
    follow_error_ = followed;
    return NotLeadingError();
  }
  if (!recovered_) RETURN_IF_ERROR(RecoverLocked());
  // Anything a failed earlier round left unsigned goes first.
  RETURN_IF_ERROR(SignLocked());

  std::vector<store::EventRecord> events;
  RETURN_IF_ERROR(store_.Read([&](store::Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(events, tx.Logs().Unsequenced(options_.batch_size));
    // Logs this process has not seen yet: a new log gets its origin now, once.
    for (const store::EventRecord& event : events) {
      const std::string& log_id = event.tenant_id.value();
      if (logs_.contains(log_id)) continue;
      absl::StatusOr<store::LogStateRecord> state = tx.Logs().GetState(log_id);
      if (state.ok()) {
        TransactionTileReader reader(tx, log_id);
        ASSIGN_OR_RETURN(tiles::TreeBuilder tree, tiles::TreeBuilder::Load(state->size, reader));
        if (tree.Root() != state->root_hash) {
          return absl::DataLossError(fmt::format(
              "log {}: its tiles do not give the stored root of size {}", log_id, state->size));
        }
        logs_[log_id] = LogCursor{.origin = state->origin, .tree = std::move(tree)};
        continue;
      }
      if (!absl::IsNotFound(state.status())) return state.status();
      std::string origin;
      if (log_id == store::kProviderLogId) {
        origin = ProviderLogOrigin(options_.host);
      } else {
        ASSIGN_OR_RETURN(store::TenantRecord tenant, tx.Tenants().Get(event.tenant_id));
        origin = TenantLogOrigin(options_.host, tenant.name);
      }
      logs_[log_id] = LogCursor{.origin = std::move(origin), .tree = tiles::TreeBuilder()};
    }
    return absl::OkStatus();
  }));
  if (events.empty()) return 0;

  // Checked before anything is appended: a refused round must leave the trees as they were.
  for (const store::EventRecord& event : events) {
    if (!event.leaf_hash.empty() && event.leaf_hash.size() != merkle::kHashSize) {
      return absl::DataLossError(fmt::format("event {} has a stored leaf hash of {} bytes",
                                             event.uuid, event.leaf_hash.size()));
    }
    if (event.json.size() > kMaxEntryBytes) {
      // The store refuses such events, so this is a bug; stopping keeps the log consistent.
      return absl::InternalError(fmt::format("event {} is {} bytes, more than a log entry may hold",
                                             event.uuid, event.json.size()));
    }
  }
  std::vector<store::LogEntryRef> refs;
  refs.reserve(events.size());
  std::set<std::string> changed;
  // The (size, root) each changed log's tree starts from: the write requires the store to hold
  // exactly that (see Fencing in the header).
  std::map<std::string, std::pair<uint64_t, std::string>> starts;
  for (const store::EventRecord& event : events) {
    const std::string& log_id = event.tenant_id.value();
    LogCursor& log = logs_[log_id];
    if (!starts.contains(log_id)) starts[log_id] = {log.tree.size(), log.tree.Root()};
    refs.push_back({.seq = event.seq, .log_id = log_id, .index = log.tree.size()});
    // The hash made with the event; events stored before it was kept are hashed here.
    log.tree.Append(event.leaf_hash.empty() ? merkle::LeafHash(event.json) : event.leaf_hash);
    changed.insert(log_id);
  }

  std::vector<store::LogTileRecord> tiles;
  std::vector<store::LogStateRecord> states;
  const absl::Time now = clock_.Now();
  for (const std::string& log_id : changed) {
    LogCursor& log = logs_[log_id];
    for (store::LogTileRecord& tile : log.tree.TakeChangedTiles()) {
      tile.log_id = log_id;
      tiles.push_back(std::move(tile));
    }
    states.push_back({.log_id = log_id,
                      .origin = log.origin,
                      .size = log.tree.size(),
                      .root_hash = log.tree.Root(),
                      .updated = now});
  }
  absl::Status written = store_.Write([&](store::Transaction& tx) -> absl::Status {
    for (const auto& [log_id, start] : starts) {
      absl::StatusOr<store::LogStateRecord> stored = tx.Logs().GetState(log_id);
      if (!stored.ok() && !absl::IsNotFound(stored.status())) return stored.status();
      const uint64_t stored_size = stored.ok() ? stored->size : 0;
      if (stored_size != start.first || (stored.ok() && stored->root_hash != start.second)) {
        return absl::AbortedError(fmt::format(
            "log {}: the store holds a tree of {} entries, not the one of {} this round started "
            "from: another sequencer wrote it meanwhile (did this process lose the lead?); the "
            "round wrote nothing and the next one reloads",
            log_id, stored_size, start.first));
      }
    }
    RETURN_IF_ERROR(tx.Logs().AddEntries(refs));
    for (const store::LogTileRecord& tile : tiles) RETURN_IF_ERROR(tx.Logs().PutTile(tile));
    for (const store::LogStateRecord& state : states) RETURN_IF_ERROR(tx.Logs().PutState(state));
    return absl::OkStatus();
  });
  if (!written.ok()) {
    // The trees in memory are ahead of the store: reload everything from the store next round.
    recovered_ = false;
    return written;
  }
  unsigned_.insert(changed.begin(), changed.end());
  stats_.events += events.size();
  stats_.rounds += 1;
  if (events_counter_ != nullptr) events_counter_->Increment({}, events.size());
  RETURN_IF_ERROR(SignLocked());
  return static_cast<int>(events.size());
}

absl::Status Sequencer::SignLocked() {
  if (unsigned_.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(LogSigner signer, keys_.Current());
  std::vector<store::CheckpointRecord> checkpoints;
  const absl::Time now = clock_.Now();
  for (const std::string& log_id : unsigned_) {
    const LogCursor& log = logs_.at(log_id);
    Checkpoint body{.origin = log.origin, .size = log.tree.size(), .root_hash = log.tree.Root()};
    ASSIGN_OR_RETURN(std::string text, FormatCheckpoint(body));
    ASSIGN_OR_RETURN(std::string signed_note, note::Sign(text, signer.name, signer.seed));
    checkpoints.push_back({.log_id = log_id,
                           .size = body.size,
                           .root_hash = body.root_hash,
                           .note = std::move(signed_note),
                           .key_id = signer.key_record_id,
                           .signed_at = now});
  }
  absl::Status stored = store_.Write([&](store::Transaction& tx) -> absl::Status {
    for (const store::CheckpointRecord& checkpoint : checkpoints) {
      absl::Status put = tx.Logs().PutCheckpoint(checkpoint);
      if (absl::IsAlreadyExists(put)) {
        // Signed before by a round that crashed after storing it: it must be the same tree.
        ASSIGN_OR_RETURN(store::CheckpointRecord stored,
                         tx.Logs().GetCheckpoint(checkpoint.log_id, checkpoint.size));
        if (stored.root_hash != checkpoint.root_hash) {
          return absl::DataLossError(
              fmt::format("log {}: a checkpoint of size {} with another root is already stored",
                          checkpoint.log_id, checkpoint.size));
        }
        continue;
      }
      RETURN_IF_ERROR(put);
    }
    return absl::OkStatus();
  });
  if (absl::IsDataLoss(stored)) broken_ = stored;
  RETURN_IF_ERROR(stored);
  for (const store::CheckpointRecord& checkpoint : checkpoints) {
    signed_heads_[checkpoint.log_id] = {checkpoint.size, checkpoint.root_hash};
  }
  RETURN_IF_ERROR(SaveSignedHeadsLocked());
  stats_.checkpoints += checkpoints.size();
  if (checkpoints_counter_ != nullptr) checkpoints_counter_->Increment({}, checkpoints.size());
  unsigned_.clear();
  return absl::OkStatus();
}

absl::Status Sequencer::FollowLocked() {
  if (options_.signed_heads_path.empty()) return absl::OkStatus();
  if (!heads_loaded_) RETURN_IF_ERROR(LoadSignedHeadsLocked());
  using Head = std::pair<uint64_t, std::string>;
  std::map<std::string, Head> seen;                        // log id -> checkpoint to record
  std::vector<std::pair<std::string, std::string>> found;  // (log id, what is inconsistent)
  std::map<std::string, Head> settled;
  std::set<std::string> stored;
  RETURN_IF_ERROR(store_.Read([&](store::Transaction& tx) -> absl::Status {
    seen.clear();
    found.clear();
    settled.clear();
    stored.clear();
    std::optional<std::vector<note::VerifierKey>> keys;  // read once, when first needed
    ASSIGN_OR_RETURN(std::vector<store::LogStateRecord> states, tx.Logs().ListStates());
    for (const store::LogStateRecord& state : states) {
      const std::string& log_id = state.log_id;
      stored.insert(log_id);
      const Head current{state.size, state.root_hash};
      auto head = signed_heads_.find(log_id);
      if (head != signed_heads_.end() && head->second == current) continue;
      if (auto last = followed_.find(log_id); last != followed_.end() && last->second == current) {
        continue;
      }
      auto inconsistent = [&](std::string what) {
        found.emplace_back(log_id, std::move(what));
        settled[log_id] = current;
      };
      absl::StatusOr<store::CheckpointRecord> latest = tx.Logs().LatestCheckpoint(log_id);
      if (absl::IsNotFound(latest.status())) {
        if (head == signed_heads_.end()) continue;  // nothing signed yet
        inconsistent(fmt::format("the store has no checkpoint, but one was signed at size {}",
                                 head->second.first));
        continue;
      }
      RETURN_IF_ERROR(latest.status());
      if (!keys.has_value()) {
        ASSIGN_OR_RETURN(std::vector<store::LogKeyRecord> records, tx.Logs().ListKeys());
        keys.emplace();
        for (const store::LogKeyRecord& record : records) {
          ASSIGN_OR_RETURN(std::string vkey,
                           note::FormatVerifierKey(record.name, record.public_key));
          ASSIGN_OR_RETURN(note::VerifierKey key, note::ParseVerifierKey(vkey));
          keys->push_back(std::move(key));
        }
      }
      absl::StatusOr<note::OpenedNote> opened = note::Open(latest->note, *keys);
      absl::StatusOr<Checkpoint> body =
          opened.ok() ? ParseCheckpoint(opened->body) : absl::StatusOr<Checkpoint>(opened.status());
      if (!body.ok()) {
        inconsistent(
            fmt::format("its latest checkpoint (size {}) does not verify with the log's keys: {}",
                        latest->size, std::string(body.status().message())));
        continue;
      }
      if (body->origin != state.origin || body->size != latest->size ||
          body->root_hash != latest->root_hash || body->size > state.size) {
        inconsistent(
            fmt::format("its latest checkpoint (size {}) does not match its stored record or tree",
                        latest->size));
        continue;
      }
      if (head != signed_heads_.end()) {
        const auto& [head_size, head_root] = head->second;
        if (body->size < head_size) {
          inconsistent(fmt::format(
              "the store's latest checkpoint is at size {}, but one was signed at size {} (was "
              "the store restored from an older copy, or did a failover lose commits?)",
              body->size, head_size));
          continue;
        }
        if (body->size == head_size && body->root_hash != head_root) {
          inconsistent(fmt::format(
              "the store's checkpoint at size {} has another root than the one signed before "
              "(a fork)",
              head_size));
          continue;
        }
        if (body->size > head_size) {
          TransactionTileReader reader(tx, log_id);
          absl::StatusOr<std::vector<std::string>> proof =
              tiles::ConsistencyProof(head_size, body->size, reader);
          // A missing or narrow tile is the store's inconsistency; any other error its failure.
          if (!proof.ok() && !absl::IsDataLoss(proof.status())) return proof.status();
          const absl::Status consistent =
              proof.ok() ? merkle::VerifyConsistency(head_size, body->size, *proof, head_root,
                                                     body->root_hash)
                         : proof.status();
          if (!consistent.ok()) {
            inconsistent(fmt::format(
                "the store's checkpoint at size {} does not extend the one signed at size {}: {}",
                body->size, head_size, std::string(consistent.message())));
            continue;
          }
        }
      }
      if (head == signed_heads_.end() || body->size > head->second.first) {
        seen[log_id] = {body->size, body->root_hash};
      }
      // A tree the leader has not signed yet is read again next round.
      if (body->size == state.size) settled[log_id] = current;
    }
    return absl::OkStatus();
  }));
  for (const auto& [log_id, head] : signed_heads_) {
    if (!stored.contains(log_id) && vanished_.insert(log_id).second) {
      found.emplace_back(log_id, fmt::format("the store has no such log, but a checkpoint was "
                                             "signed at size {} (was the store restored from an "
                                             "older copy?)",
                                             head.first));
    }
  }
  for (const auto& [log_id, what] : found) {
    Log(LogLevel::kError,
        "the verifiable log in the store is inconsistent with what this node saw signed; it "
        "will not sign it",
        {{"log", log_id}, {"error", what}});
    if (inconsistent_counter_ != nullptr) inconsistent_counter_->Increment({});
  }
  for (auto& [log_id, head] : settled) followed_[log_id] = std::move(head);
  if (seen.empty()) return absl::OkStatus();
  std::map<std::string, Head> previous = signed_heads_;
  for (auto& [log_id, head] : seen) signed_heads_[log_id] = std::move(head);
  absl::Status saved = SaveSignedHeadsLocked();
  // The file is what Recover reads: memory must not claim more than it holds.
  if (!saved.ok()) signed_heads_ = std::move(previous);
  return saved;
}

absl::Status Sequencer::Drain() {
  absl::MutexLock lock(&mu_);
  while (true) {
    ASSIGN_OR_RETURN(int n, RunOnceLocked());
    if (n == 0) return absl::OkStatus();
  }
}

void Sequencer::Start() {
  absl::MutexLock lock(&stop_mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Sequencer::Stop() {
  {
    absl::MutexLock lock(&stop_mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  if (lease_ != nullptr) StepDownLocked(/*lost=*/false);
}

void Sequencer::Loop() {
  absl::Status last_error;
  while (true) {
    absl::StatusOr<int> n = RunOnce();
    const bool follower = !n.ok() && n.status() == NotLeadingError();
    if (!n.ok() && !follower) {
      if (failures_counter_ != nullptr) failures_counter_->Increment({});
      if (n.status() != last_error) {
        Log(LogLevel::kError, "log sequencer round failed",
            {{"error", std::string(n.status().message())}});
      }
    }
    last_error = n.ok() || follower ? absl::OkStatus() : n.status();
    const bool full = n.ok() && *n >= options_.batch_size;
    absl::MutexLock lock(&stop_mu_);
    if (full) {
      if (stopping_) return;
      continue;
    }
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(stop_mu_) { return stopping_; };
    if (stop_mu_.AwaitWithTimeout(absl::Condition(&stopping),
                                  follower ? options_.leader_retry : options_.interval)) {
      return;
    }
  }
}

Sequencer::Stats Sequencer::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace custos::audit
