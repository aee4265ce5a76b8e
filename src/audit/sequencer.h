#pragma once

// The log sequencer: moves System Log events from the outbox (events committed but not yet in a
// log) into their log's Merkle tree and signs checkpoints over the result.
//
// One round (RunOnce):
//   1. read up to `batch_size` outbox events, in commit order;
//   2. append each event's entry (its stored canonical JSON) to its log's tree in memory;
//   3. in ONE store transaction: record every event's position, the changed tiles and each
//      changed log's new size and root. Nothing is signed before this commit is durable;
//   4. sign a checkpoint (C2SP tlog-checkpoint in a signed note) for each changed log and store
//      it.
// A crash anywhere leaves either the old state (step 3 did not commit: the events are still in
// the outbox and are sequenced again, at the same positions) or the new one without its
// checkpoint (Recover signs it). So the tree only ever grows from what was durable, and every
// checkpoint is over a prefix of every later one: the log never forks.
//
// Recover, run before the first round, also checks each log's stored state: the tiles must give
// the stored root, and the latest checkpoint must be over a prefix of the stored tree. If not
// (the store was altered or restored from an older copy), the sequencer refuses to sign
// anything (kDataLoss naming the log) rather than sign a history inconsistent with one it
// signed before.
//
// Leadership. Several processes (custos serve nodes on one PostgreSQL database) may each run a
// Sequencer, but only the one holding the store lease kSequencerLease (store::Store::TryLead)
// runs rounds. A sequencer takes the lease at its first round (RunOnce, Drain, Recover, or the
// background thread, which retries every `leader_retry` while another process leads), and keeps
// it until Stop, destruction, or losing it (LeaderLease::Held is checked before every round).
// On taking it, it reloads every log from the store before its first round (another process
// may have sequenced meanwhile); on losing it, it drops what it holds in memory. RunOnce and
// Drain return kUnavailable (NotLeadingError()) while another process leads; Recover then only
// checks the store. A single process (tests, custos commands) simply takes the lease.
//
// Fencing. A leader that stalls (a long pause, a network partition) may lose the lease without
// knowing it, and resume a round from trees that another node has grown meanwhile. The round's
// write transaction therefore checks that each changed log's stored size and root are still
// those its in-memory tree started from, and otherwise writes nothing (kAborted) and reloads.
// So every stored tree extends the one before it, whoever wrote it, and each checkpoint is
// signed over a tree that was stored: the log does not fork, and no event is sequenced twice
// (AddEntries also refuses events that are no longer at the head of the outbox).
//
// The signed-heads file is per process (per node's data directory): a file that is behind the
// store (another node signed later) is accepted when the stored tree extends what it says.
//
// Following. A node that never led, or led long ago, would otherwise have nothing in its file
// to hold a restored store (or one that lost commits in an asynchronous failover) against, and
// on taking the lead would sign a second history over it. So while another process leads, each
// round that finds the lease taken (RunOnce, every `leader_retry` on the background thread) also
// reads, in one read transaction, each log whose stored tree is not what the file says, and that
// log's latest stored checkpoint. A checkpoint that verifies with the log's keys and extends
// what the file holds for the log (a consistency proof from the stored tiles, checked against
// both signed roots) is recorded in the file, as if this process had signed it. One that does not
// (the store went back or forked, or lost a log) is logged as an error and counted in
// custos_log_inconsistent_checkpoints_total; the file keeps what it held, so that Recover refuses
// the store when this process takes the lead. Each examined tree is examined once until it
// changes again. Without a signed-heads file, followers check nothing.
//
// Metrics (when set): custos_log_sequencer_leader is 1 while this process leads, else 0. The
// log lines "log sequencer leading" and "log sequencer stopped leading" mark the changes.
//
// Thread-safe: RunOnce/Drain/Recover serialise on an internal mutex; Start runs rounds on a
// background thread until Stop.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "audit/log_keys.h"
#include "audit/tiles.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "store/store.h"

namespace custos::audit {

struct SequencerOptions {
  // Host part of every origin: "<host>/t/<tenant name>", "<host>/provider".
  std::string host;
  int batch_size = 16384;
  // How long the background thread waits after a round that emptied the outbox.
  absl::Duration interval = absl::Milliseconds(500);
  // A file outside the store where the sequencer keeps the latest (size, root) it signed, or
  // saw signed while following, for each log, fsynced after every change. Recover refuses a
  // store that is behind it or disagrees with it (a database restored from an older copy would
  // otherwise be signed over again, forking every log). Empty: no such check.
  std::string signed_heads_path;
  // When set, the sequencer counts its work there: custos_log_events_sequenced_total,
  // custos_log_checkpoints_signed_total, custos_log_sequencer_failures_total,
  // custos_log_inconsistent_checkpoints_total, and shows custos_log_sequencer_leader.
  Metrics* metrics = nullptr;
  // How often the background thread tries to take the lease while another process leads.
  absl::Duration leader_retry = absl::Seconds(1);
};

// The store lease that the leading sequencer holds.
inline constexpr std::string_view kSequencerLease = "log-sequencer";

// The checkpoint origin of a tenant's log and of the provider log.
std::string TenantLogOrigin(std::string_view host, std::string_view tenant_name);
std::string ProviderLogOrigin(std::string_view host);

class Sequencer {
 public:
  // `store`, `keys` and `clock` must outlive the Sequencer.
  Sequencer(store::Store& store, LogKeys& keys, const Clock& clock, SequencerOptions options);
  ~Sequencer();  // Stops the background thread.

  Sequencer(const Sequencer&) = delete;
  Sequencer& operator=(const Sequencer&) = delete;

  // Loads and checks every log (see above) and, when leading, signs checkpoints a crash left
  // unsigned. Called by the first round after taking the lease. kDataLoss, naming the log and
  // what disagrees, when a log's stored state is inconsistent; every later round then fails the
  // same way (a leader keeps the lease meanwhile: no node signs while this process runs).
  absl::Status Recover();

  // One round; returns how many events it sequenced. NotLeadingError() while another process
  // leads (the round then follows the leader's checkpoints: see Following above); kAborted when
  // another sequencer wrote a log since this one loaded it (the round wrote nothing; the next
  // reloads).
  absl::StatusOr<int> RunOnce();

  // Rounds until the outbox is empty.
  absl::Status Drain();

  // Runs rounds on a background thread: back to back while the outbox holds a full batch,
  // otherwise every `interval`; while another process leads, tries to take over every
  // `leader_retry`. Errors are logged and retried after `interval`.
  void Start();
  // Stops the background thread and gives up the lease.
  void Stop();

  // Whether this sequencer held the lease at its last round or check.
  bool leading() const;

  // What RunOnce and Drain return while another process leads.
  static absl::Status NotLeadingError();

  struct Stats {
    uint64_t events = 0;       // sequenced by this process
    uint64_t rounds = 0;       // rounds that sequenced at least one event
    uint64_t checkpoints = 0;  // signed by this process
  };
  Stats stats() const;

 private:
  struct LogCursor {
    std::string origin;
    tiles::TreeBuilder tree;
  };

  // Takes the lease, or checks that it is still held; false while another process leads.
  absl::StatusOr<bool> LeadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `lost`: the lease ended by itself (logged as a warning), rather than by Stop.
  void StepDownLocked(bool lost) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetLogsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RecoverLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int> RunOnceLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SignLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LoadSignedHeadsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SaveSignedHeadsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records in the signed heads the checkpoints the leader signed since the last call, and
  // reports those inconsistent with them (see Following above).
  absl::Status FollowLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Loop();

  store::Store& store_;
  LogKeys& keys_;
  const Clock& clock_;
  const SequencerOptions options_;
  Counter* events_counter_ = nullptr;
  Counter* checkpoints_counter_ = nullptr;
  Counter* failures_counter_ = nullptr;
  Counter* inconsistent_counter_ = nullptr;
  Gauge* leader_gauge_ = nullptr;

  mutable absl::Mutex mu_;
  std::unique_ptr<store::LeaderLease> lease_ ABSL_GUARDED_BY(mu_);  // null while not leading
  bool recovered_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status broken_ ABSL_GUARDED_BY(mu_);  // set when Recover found an inconsistent log
  std::map<std::string, LogCursor> logs_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> unsigned_ ABSL_GUARDED_BY(mu_);  // logs whose state has no checkpoint
  // log id -> (size, root) of the latest checkpoint signed, as in signed_heads_path.
  std::map<std::string, std::pair<uint64_t, std::string>> signed_heads_ ABSL_GUARDED_BY(mu_);
  bool heads_loaded_ ABSL_GUARDED_BY(mu_) = false;  // signed_heads_ holds the file's content
  // While following: log id -> the stored (size, root) that FollowLocked last settled (its
  // checkpoint covered it, or it was reported inconsistent); not examined again until it
  // changes. A vanished log is reported once (`vanished_`).
  std::map<std::string, std::pair<uint64_t, std::string>> followed_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> vanished_ ABSL_GUARDED_BY(mu_);
  absl::Status follow_error_ ABSL_GUARDED_BY(mu_);  // the last failure to follow, logged once
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> leading_{false};  // lease_ != nullptr, readable without mu_

  absl::Mutex stop_mu_;
  bool stopping_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::thread thread_;
};

// Reads one log's tiles through a store transaction (valid for that transaction only).
class TransactionTileReader : public tiles::TileReader {
 public:
  TransactionTileReader(store::Transaction& tx, std::string log_id)
      : tx_(tx), log_id_(std::move(log_id)) {}
  absl::StatusOr<store::LogTileRecord> ReadTile(int level, uint64_t index) override {
    return tx_.Logs().GetTile(log_id_, level, index);
  }

 private:
  store::Transaction& tx_;
  std::string log_id_;
};

}  // namespace custos::audit
