#include "cli/incident_command.h"

#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "audit/event.h"
#include "audit/log_keys.h"
#include "audit/log_reader.h"
#include "common/clock.h"
#include "common/errors.h"
#include "common/time_format.h"
#include "crypto/random.h"
#include "incident/incidents.h"

namespace custos::cli {
namespace {

namespace inc = custos::incident;

audit::RequestContext CliContext() {
  audit::RequestContext ctx;
  ctx.actor = audit::SystemPrincipal();
  ctx.request_id = "cli-" + crypto::SystemRandom().Token(9);
  ctx.user_agent = "custos-cli";
  return ctx;
}

// Prints the error and its causes; usage errors (bad values) exit 2, the rest 1.
int Fail(const IncidentCommandIo& io, const absl::Status& status) {
  fmt::print(io.err, "custos incident: {}\n", std::string(status.message()));
  for (const std::string& cause : ErrorCausesOf(status)) fmt::print(io.err, "  {}\n", cause);
  return absl::IsInvalidArgument(status) ? 2 : 1;
}

int Usage(const IncidentCommandIo& io, std::string_view message) {
  fmt::print(io.err, "custos incident: {}\n", message);
  return 2;
}

absl::Status WriteFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return absl::UnavailableError(fmt::format("cannot write {}", path));
  return absl::OkStatus();
}

std::string Pretty(const Json& json) {
  return json.dump(2, ' ', false, Json::error_handler_t::replace);
}

// The services a step needs, over the data directory's store.
struct Session {
  std::unique_ptr<Runtime> runtime;
  std::unique_ptr<audit::LogKeys> keys;
  std::unique_ptr<audit::LogReader> reader;
  std::unique_ptr<inc::Incidents> incidents;
};

absl::StatusOr<Session> Open(const IncidentCommand& command) {
  absl::StatusOr<Config> config = ResolveConfig(command.config);
  if (!config.ok()) return config.status();
  absl::StatusOr<std::unique_ptr<Runtime>> runtime = OpenRuntime(*config);
  if (!runtime.ok()) return runtime.status();
  Session s;
  s.runtime = *std::move(runtime);
  store::Store& store = *s.runtime->store;
  s.keys = std::make_unique<audit::LogKeys>(store, *s.runtime->sealer, SystemClock::Get(),
                                            crypto::SystemRandom());
  s.reader = std::make_unique<audit::LogReader>(store);
  s.incidents = std::make_unique<inc::Incidents>(
      store, SystemClock::Get(), crypto::SystemRandom(), *s.reader, *s.keys,
      inc::IncidentsOptions{.evidence_timeout = absl::Seconds(command.timeout_seconds)});
  return s;
}

int Declare(const IncidentCommand& c, inc::Incidents& incidents, const IncidentCommandIo& io) {
  const IncidentDeclareFlags& d = c.declare;
  if (d.compromise_from.empty() != d.compromise_to.empty()) {
    return Usage(io, "--compromise-from and --compromise-to go together");
  }
  Json indicators = Json::object();
  auto add = [&](const char* key, const std::vector<std::string>& values) {
    if (!values.empty()) indicators[key] = values;
  };
  add("operatorIds", d.operators);
  add("vendorIds", d.vendors);
  add("deviceIds", d.devices);
  add("sessionIds", d.sessions);
  add("ipRanges", d.ip_ranges);
  Json definition = {{"title", d.title},
                     {"indicators", indicators},
                     {"window", {{"start", d.from}, {"end", d.to}}}};
  if (!d.compromise_from.empty()) {
    definition["compromiseWindow"] = {{"start", d.compromise_from}, {"end", d.compromise_to}};
  }
  if (!d.notes.empty()) definition["notes"] = d.notes;
  absl::StatusOr<store::IncidentRecord> incident = incidents.Declare(CliContext(), definition);
  if (!incident.ok()) return Fail(io, incident.status());
  fmt::print(io.out, "{}\n", incident->id);
  fmt::print(io.err, "declared {} ({}); next: custos incident scope {}\n", incident->id,
             incident->status, incident->id);
  return 0;
}

int List(const IncidentCommand& c, inc::Incidents& incidents, const IncidentCommandIo& io) {
  absl::StatusOr<std::vector<store::IncidentRecord>> list = incidents.List(c.limit);
  if (!list.ok()) return Fail(io, list.status());
  if (list->empty()) {
    fmt::print(io.err, "no incidents\n");
    return 0;
  }
  fmt::print(io.out, "{:<22} {:<9} {:<24} {}\n", "ID", "STATUS", "CREATED", "TITLE");
  for (const store::IncidentRecord& i : *list) {
    fmt::print(io.out, "{:<22} {:<9} {:<24} {}\n", i.id, i.status, FormatRfc3339(i.created),
               i.title);
  }
  return 0;
}

int Show(const IncidentCommand& c, inc::Incidents& incidents, const IncidentCommandIo& io) {
  absl::StatusOr<store::IncidentRecord> incident = incidents.Get(c.id);
  if (!incident.ok()) return Fail(io, incident.status());
  fmt::print(io.out, "{}\n", Pretty(inc::IncidentView(*incident)));
  return 0;
}

void PrintScope(const inc::ScopeResult& scope, std::FILE* out) {
  fmt::print(out, "potential: {} tenant(s)\nconfirmed: {} tenant(s)\n", scope.potential,
             scope.confirmed);
  if (scope.tenants.empty()) return;
  size_t width = 6;
  for (const inc::TenantScope& t : scope.tenants) width = std::max(width, t.tenant_name.size());
  fmt::print(out, "\n{:<{}}  {:<9}  {:>5}  {:>8}  {:>8}\n", "TENANT", width, "CONFIRMED", "VIEWS",
             "ATTEMPTS", "REFUSALS");
  for (const inc::TenantScope& t : scope.tenants) {
    fmt::print(out, "{:<{}}  {:<9}  {:>5}  {:>8}  {:>8}\n", t.tenant_name, width,
               t.confirmed ? "yes" : "no", t.views, t.attempts, t.refusals);
  }
}

int Scope(const IncidentCommand& c, inc::Incidents& incidents, const IncidentCommandIo& io) {
  fmt::print(io.err, "scoping {} over the support activity index...\n", c.id);
  absl::StatusOr<inc::ScopeResult> scope = incidents.Scope(CliContext(), c.id);
  if (!scope.ok()) return Fail(io, scope.status());
  fmt::print(io.err, "{} activity rows examined in {:.0f} ms\n", scope->rows_examined,
             absl::ToDoubleMilliseconds(scope->elapsed));
  if (c.json) {
    fmt::print(io.out, "{}\n", Pretty(scope->ToJson(true)));
  } else {
    PrintScope(*scope, io.out);
  }
  return 0;
}

int Report(const IncidentCommand& c, inc::Incidents& incidents, const IncidentCommandIo& io) {
  absl::StatusOr<std::string> report =
      incidents.Report(c.id, c.html ? inc::ReportFormat::kHtml : inc::ReportFormat::kMarkdown);
  if (!report.ok()) return Fail(io, report.status());
  if (c.out_path.empty()) {
    fmt::print(io.out, "{}", *report);
    return 0;
  }
  if (absl::Status st = WriteFile(c.out_path, *report); !st.ok()) return Fail(io, st);
  fmt::print(io.err, "wrote {}\n", c.out_path);
  return 0;
}

int Evidence(const IncidentCommand& c, Session& s, const IncidentCommandIo& io) {
  absl::StatusOr<std::vector<std::string>> vkeys = s.keys->VerifierKeys();
  if (!vkeys.ok() || vkeys->empty()) {
    fmt::print(io.err,
               "custos incident: this data directory has no checkpoint signing key yet; "
               "`custos serve` makes it and runs the sequencer that signs the log: start it on "
               "this data directory, then retry\n");
    return 1;
  }
  fmt::print(io.err,
             "building the evidence package of {} for {}; waiting up to {:g} s for the "
             "sequencer of `custos serve` to sign a checkpoint over its events...\n",
             c.tenant, c.id, c.timeout_seconds);
  absl::StatusOr<inc::EvidenceFile> file = s.incidents->Evidence(CliContext(), c.id, c.tenant);
  if (absl::IsDeadlineExceeded(file.status())) {
    fmt::print(io.err,
               "custos incident: no signed checkpoint covers the events after {:g} s ({}).\n"
               "`custos serve` (the sequencer) must be running on this data directory for "
               "evidence packages; start it, or give it more time with --timeout.\n",
               c.timeout_seconds, std::string(file.status().message()));
    return 1;
  }
  if (!file.ok()) return Fail(io, file.status());
  if (absl::Status st = WriteFile(c.out_path, file->bytes); !st.ok()) return Fail(io, st);
  fmt::print(io.out, "wrote {}: {} event(s) of {}, proven at tree size {}\n", c.out_path,
             file->events, file->tenant.name, file->tree_size);
  fmt::print(io.err, "the tenant checks it with: custos log verify --evidence {}\n", c.out_path);
  return 0;
}

int Notify(const IncidentCommand& c, inc::Incidents& incidents, const IncidentCommandIo& io) {
  absl::StatusOr<inc::Audience> audience = inc::ParseAudience(c.audience);
  if (!audience.ok()) return Fail(io, audience.status());
  absl::StatusOr<inc::NotifyResult> result = incidents.Notify(CliContext(), c.id, *audience);
  if (!result.ok()) return Fail(io, result.status());
  fmt::print(io.out,
             "{} {}: {} {} tenant(s); {} notification(s) queued, {} already queued before\n",
             result->incident.id, result->incident.status, inc::AudienceName(result->audience),
             result->tenants.size(), result->created, result->existing);
  if (result->without_contacts > 0) {
    std::string names;
    for (const inc::TenantNotifyResult& t : result->tenants) {
      if (t.contacts == 0) names += (names.empty() ? "" : ", ") + t.tenant_name;
    }
    fmt::print(io.out, "{} tenant(s) without a security contact: {}\n", result->without_contacts,
               names);
  }
  fmt::print(io.out, "status notice {} published\n", result->notice_id);
  fmt::print(io.err,
             "`custos serve` delivers the notifications; follow them with "
             "GET /provider/api/v1/incidents/{}/notifications\n",
             result->incident.id);
  return 0;
}

int Close(const IncidentCommand& c, inc::Incidents& incidents, const IncidentCommandIo& io) {
  absl::StatusOr<store::IncidentRecord> closed = incidents.Close(CliContext(), c.id, c.notes);
  if (!closed.ok()) return Fail(io, closed.status());
  fmt::print(io.out, "{} {}\n", closed->id, closed->status);
  return 0;
}

void AddConfigFlags(CLI::App& app, ConfigFlags& flags) {
  app.add_option("--config", flags.config_path,
                 "configuration file (default: ./custos.toml when present)");
  app.add_option("--data-dir", flags.data_dir, "data directory (store.data_dir)");
  app.add_option("--set", flags.sets, "override a setting, e.g. --set store.synchronous=full")
      ->type_name("KEY=VALUE");
}

CLI::App* Sub(CLI::App& group, IncidentCommand& c, const char* name, const char* help) {
  CLI::App* sub = group.add_subcommand(name, help);
  AddConfigFlags(*sub, c.config);
  sub->callback([&c, name] { c.action = name; });
  return sub;
}

void AddId(CLI::App& sub, IncidentCommand& c) {
  sub.add_option("id", c.id, "incident id (inc...)")->required();
}

}  // namespace

CLI::App* AddIncidentCommand(CLI::App& app, IncidentCommand& c) {
  CLI::App* group = app.add_subcommand(
      "incident",
      "incident response: declare, scope, report, evidence packages, notification (runs against "
      "the data directory; evidence needs `custos serve` running)");
  group->require_subcommand(1);

  CLI::App* declare =
      Sub(*group, c, "declare", "declare an incident from indicators; prints its id");
  IncidentDeclareFlags& d = c.declare;
  declare->add_option("--title", d.title, "what happened, 1 to 200 bytes")->required();
  declare->add_option("--vendor", d.vendors, "suspect vendor id (repeatable)")
      ->allow_extra_args(false);
  declare->add_option("--operator", d.operators, "suspect operator (user) id (repeatable)")
      ->allow_extra_args(false);
  declare->add_option("--device", d.devices, "compromised device id (repeatable)")
      ->allow_extra_args(false);
  declare->add_option("--session", d.sessions, "compromised session id (repeatable)")
      ->allow_extra_args(false);
  declare->add_option("--ip-range", d.ip_ranges, "attacker network, CIDR (repeatable)")
      ->allow_extra_args(false);
  declare->add_option("--from", d.from, "window start, RFC 3339")->required();
  declare->add_option("--to", d.to, "window end (exclusive), RFC 3339")->required();
  declare->add_option("--compromise-from", d.compromise_from,
                      "start of the confirmed compromise (default: --from)");
  declare->add_option("--compromise-to", d.compromise_to,
                      "end of the confirmed compromise (default: --to)");
  declare->add_option("--notes", d.notes, "free text kept with the incident");

  CLI::App* list = Sub(*group, c, "list", "list incidents, newest first");
  list->add_option("--limit", c.limit, "how many (1 to 1000)")->check(CLI::Range(1, 1000));

  AddId(*Sub(*group, c, "show", "print an incident as JSON"), c);

  CLI::App* scope =
      Sub(*group, c, "scope", "scope an incident: potential and confirmed tenants, with timelines");
  AddId(*scope, c);
  scope->add_flag("--json", c.json, "print the whole result (timelines included) as JSON");

  CLI::App* report = Sub(*group, c, "report", "the incident's report, Markdown or HTML");
  AddId(*report, c);
  report->add_flag("--html", c.html, "an HTML page instead of Markdown");
  report->add_option("-o,--output", c.out_path, "file to write (default: standard output)");

  CLI::App* evidence =
      Sub(*group, c, "evidence", "write one tenant's evidence package (custos-evidence/v1)");
  AddId(*evidence, c);
  evidence->add_option("--tenant", c.tenant, "tenant name (in the incident's scope)")->required();
  evidence->add_option("-o,--output", c.out_path, "file to write")->required();
  evidence
      ->add_option("--timeout", c.timeout_seconds,
                   "seconds to wait for the sequencer to sign the events (default 30)")
      ->check(CLI::Range(0.1, 3600.0));

  CLI::App* notify =
      Sub(*group, c, "notify", "queue notifications to the security contacts of the tenants");
  AddId(*notify, c);
  notify->add_option("--audience", c.audience, "potential (default) or confirmed")
      ->check(CLI::IsMember({"potential", "confirmed"}));

  CLI::App* close = Sub(*group, c, "close", "close an incident");
  AddId(*close, c);
  close->add_option("--notes", c.notes, "appended to the incident's notes");
  return group;
}

int RunIncidentCommand(const IncidentCommand& c, const IncidentCommandIo& io) {
  if (c.action.empty()) return Usage(io, "no subcommand");
  absl::StatusOr<Session> session = Open(c);
  if (!session.ok()) return Fail(io, session.status());
  inc::Incidents& incidents = *session->incidents;
  if (c.action == "declare") return Declare(c, incidents, io);
  if (c.action == "list") return List(c, incidents, io);
  if (c.action == "show") return Show(c, incidents, io);
  if (c.action == "scope") return Scope(c, incidents, io);
  if (c.action == "report") return Report(c, incidents, io);
  if (c.action == "evidence") return Evidence(c, *session, io);
  if (c.action == "notify") return Notify(c, incidents, io);
  if (c.action == "close") return Close(c, incidents, io);
  return Usage(io, fmt::format("unknown subcommand {}", c.action));
}

}  // namespace custos::cli
