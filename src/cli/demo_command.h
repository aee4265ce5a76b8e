#pragma once

// `custos demo`: the January 2022 incident at scale on a fresh embedded store, then the whole
// response to it, timed (README, "The incident, replayed"):
//
//   custos demo [--data-dir DIR] [--tenants 400] [--engineers 40] [--days 5] [--seed N]
//               [--keep] [--force] [--config FILE] [--set KEY=VALUE]...
//
// 1. replays the story (incident/replay.h) through the support plane into DIR, each tenant
//    getting a webhook security contact that points at a local sink this command runs
//    (127.0.0.1, any free port; it checks every delivery's Standard Webhooks signature);
// 2. sequences every event into the verifiable logs and signs their checkpoints;
// 3. declares the incident with what a responder would know (the contractor, the taken-over
//    device, the attacker's network, the five days and the 25 minutes), scopes it, writes and
//    verifies an evidence package per confirmed tenant, writes the report, notifies every tenant
//    of the potential scope and delivers the notifications to the sink;
// 4. prints both scopes, what the attacker saw and tried, and the time each step took.
//
// DIR must not exist or be empty; a directory an earlier `custos demo` made (it holds
// demo.json) is replaced with --force. Without --data-dir a temporary directory is used and
// removed at the end unless --keep is given. The store is opened with synchronous=NORMAL (a
// demo needs no power-loss durability). `custos serve --data-dir DIR` serves the result; the
// logs' origins are named after server.public_base_url (else http://<listen_address>:<port>),
// so give the demo the same settings as the server.
//
// Progress goes to stderr, the summary to stdout. Exit codes: 0 done, 1 failed, 2 usage.

#include <cstdint>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/runtime.h"

namespace custos::cli {

struct DemoFlags {
  ConfigFlags config;
  int tenants = 400;
  int engineers = 40;
  int days = 5;
  uint64_t seed = 20220121;
  bool keep = false;
  bool force = false;
};

// Adds the `demo` subcommand to `app`; parsing fills `flags`. Returns the subcommand.
CLI::App* AddDemoCommand(CLI::App& app, DemoFlags& flags);

// Runs the demo. Returns the process exit code.
int RunDemo(const DemoFlags& flags, std::FILE* out = stdout, std::FILE* err = stderr);

}  // namespace custos::cli
