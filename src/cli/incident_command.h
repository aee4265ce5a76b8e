#pragma once

// `custos incident ...`: incident response from the command line, against the data directory
// directly, like `custos admin` (docs/incidents.md):
//
//   custos incident declare --title T [--vendor V] [--operator O] [--device D] [--session S]
//                           [--ip-range CIDR] --from RFC3339 --to RFC3339
//                           [--compromise-from RFC3339 --compromise-to RFC3339] [--notes N]
//   custos incident list [--limit N]
//   custos incident show ID
//   custos incident scope ID [--json]
//   custos incident report ID [--html] [-o FILE]
//   custos incident evidence ID --tenant NAME -o FILE [--timeout SECONDS]
//   custos incident notify ID [--audience potential|confirmed]
//   custos incident close ID [--notes N]
//
// Each step is recorded in the provider log with the custos CLI as actor. `evidence` needs the
// events in a signed checkpoint: the sequencer of `custos serve` (on the same data directory)
// must be running; without it the command says so after the timeout. Notifications are queued
// here and delivered by `custos serve`.
//
// Exit codes: 0 done; 1 refused or failed (an unknown incident, a wrong status, a timeout);
// 2 usage errors (bad flags or values). Results go to stdout, progress and errors to stderr.

#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/runtime.h"

namespace custos::cli {

struct IncidentDeclareFlags {
  std::string title;
  std::vector<std::string> vendors;
  std::vector<std::string> operators;
  std::vector<std::string> devices;
  std::vector<std::string> sessions;
  std::vector<std::string> ip_ranges;
  std::string from;
  std::string to;
  std::string compromise_from;  // both or neither
  std::string compromise_to;
  std::string notes;
};

// What the command line asked for; filled by the parser that AddIncidentCommand sets up.
struct IncidentCommand {
  ConfigFlags config;
  std::string action;  // "declare", "list", "show", "scope", "report", "evidence", ...
  std::string id;
  IncidentDeclareFlags declare;
  int limit = 20;
  bool json = false;
  bool html = false;
  std::string out_path;  // report: empty prints; evidence: required
  std::string tenant;
  std::string audience = "potential";
  std::string notes;
  double timeout_seconds = 30;
};

// Where the command writes; tests replace them.
struct IncidentCommandIo {
  std::FILE* out = stdout;
  std::FILE* err = stderr;
};

// Adds the `incident` subcommand group to `app`; parsing fills `command`. Returns the group.
CLI::App* AddIncidentCommand(CLI::App& app, IncidentCommand& command);

// Runs what was parsed. Returns the process exit code.
int RunIncidentCommand(const IncidentCommand& command, const IncidentCommandIo& io = {});

}  // namespace custos::cli
