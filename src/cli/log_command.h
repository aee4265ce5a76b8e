#pragma once

// `custos log verify`, `custos log export` and `custos log verify-proof`: the client side of the
// verifiable System Log (audit/log_verifier.h does the checking).
//
// A source is a URL prefix of a log ("https://id.example.com/t/acme/log") or a directory
// written by `custos log export` (the same layout as the URL paths).
//
// `custos log verify --evidence FILE` checks an incident evidence package offline instead
// (incident/evidence.h): against the --vkey keys when given, otherwise against the keys the
// file itself carries (stderr then says so, and where to compare them). It takes no source and
// writes no state file.
//
// Exit codes: 0 verified; 1 a check failed (the message on stderr names the index or what
// broke); 2 usage, network or I/O error. The state file is written (atomically) only on 0.
// Tokens are never printed.

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace custos::cli {

struct LogVerifyFlags {
  std::string source;  // exactly one of source and evidence_path
  // An evidence package file to check offline. With it, origin (when set) must be the
  // package's origin, and state_path, token and incremental must be unset.
  std::string evidence_path;
  // The origin the checkpoint must carry. Empty: for a URL source, the URL without its scheme
  // and its final "/log" (https://id.example.com/t/acme/log -> id.example.com/t/acme); for a
  // directory, no check beyond the state file's origin.
  std::string origin;
  std::string state_path;  // empty: DefaultStatePath(origin)
  std::vector<std::string> vkeys;
  std::string token;  // empty: $CUSTOS_TOKEN
  bool incremental = false;
};

struct LogExportFlags {
  std::string source;
  std::string out_dir;  // must be missing or empty
  std::vector<std::string> vkeys;
  std::string token;  // empty: $CUSTOS_TOKEN
};

struct LogVerifyProofFlags {
  std::string proof_path;
  std::vector<std::string> vkeys;  // at least one
  std::string entry_path;          // empty: the entry in the proof's "extra" line
};

// Where the commands write and how they pace progress lines; tests replace them.
struct LogCommandIo {
  std::FILE* out = stdout;  // the summary line
  std::FILE* err = stderr;  // progress, notices, errors
  const Clock* clock = &SystemClock::Get();
  absl::Duration progress_interval = absl::Seconds(2);
};

// Each returns the process exit code.
int LogVerify(const LogVerifyFlags& flags, const LogCommandIo& io = {});
int LogExport(const LogExportFlags& flags, const LogCommandIo& io = {});
int LogVerifyProof(const LogVerifyProofFlags& flags, const LogCommandIo& io = {});

// $XDG_STATE_HOME/custos/<origin with '/' and ':' replaced by '_'>.json, XDG_STATE_HOME
// defaulting to $HOME/.local/state. kFailedPrecondition when neither variable is set.
absl::StatusOr<std::string> DefaultStatePath(std::string_view origin);

}  // namespace custos::cli
