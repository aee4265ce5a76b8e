// custos: the Custos identity provider. Subcommands: serve, admin, log, device, incident, demo.

#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/admin.h"
#include "cli/demo_command.h"
#include "cli/device_command.h"
#include "cli/incident_command.h"
#include "cli/log_command.h"
#include "cli/serve.h"

namespace {

void AddConfigFlags(CLI::App& app, custos::cli::ConfigFlags& flags) {
  app.add_option("--config", flags.config_path,
                 "configuration file (default: ./custos.toml when present)");
  app.add_option("--data-dir", flags.data_dir, "data directory (store.data_dir)");
  app.add_option("--set", flags.sets, "override a setting, e.g. --set server.port=0")
      ->type_name("KEY=VALUE");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Custos: a multi-tenant identity provider that watches its own watchmen."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "custos 0.1.0");

  custos::cli::ConfigFlags config_flags;
  custos::cli::ServeFlags serve_flags;
  std::string listen, port;
  CLI::App* serve = app.add_subcommand("serve", "run the server");
  AddConfigFlags(*serve, config_flags);
  serve->add_option("--listen", listen, "address to listen on (server.listen_address)");
  serve->add_option("--port", port, "port; 0 picks a free one (server.port)");
  serve->add_flag("--demo", serve_flags.demo,
                  "create a demo tenant, user and API token when missing, and print them");

  CLI::App* admin = app.add_subcommand("admin", "administer tenants");
  admin->require_subcommand(1);
  std::string tenant_name, token_tenant, token_name = "api token";
  CLI::App* create_tenant = admin->add_subcommand("create-tenant", "create a tenant");
  AddConfigFlags(*create_tenant, config_flags);
  create_tenant->add_option("name", tenant_name, "URL name of the tenant, e.g. acme")->required();
  CLI::App* create_token =
      admin->add_subcommand("create-api-token", "create an API token and print it once");
  AddConfigFlags(*create_token, config_flags);
  create_token->add_option("--tenant", token_tenant, "tenant name")->required();
  create_token->add_option("--name", token_name, "a name for the token");
  std::string token_scope = "admin";
  create_token
      ->add_option("--scope", token_scope,
                   "admin (everything in the tenant) or log.read (System Log and verifiable log)")
      ->check(CLI::IsMember({"admin", "log.read"}));
  std::string provider_token_name = "provider token";
  CLI::App* create_provider_token = admin->add_subcommand(
      "create-provider-token", "create a token that reads the provider log, print it once");
  AddConfigFlags(*create_provider_token, config_flags);
  create_provider_token->add_option("--name", provider_token_name, "a name for the token");

  CLI::App* log_group = app.add_subcommand("log", "verify a verifiable System Log");
  log_group->require_subcommand(1);
  custos::cli::LogVerifyFlags verify_flags;
  CLI::App* log_verify = log_group->add_subcommand(
      "verify",
      "check a log's checkpoint, every entry, and consistency with the last run; or, with "
      "--evidence, an incident evidence package offline");
  CLI::Option* verify_source = log_verify->add_option(
      "source", verify_flags.source,
      "log URL (https://host/t/acme/log) or directory from `custos log export`");
  log_verify
      ->add_option("--evidence", verify_flags.evidence_path,
                   "an evidence package file to check offline instead of a log (trusts the "
                   "--vkey keys, else the file's own, and says so)")
      ->excludes(verify_source);
  log_verify->add_option("--origin", verify_flags.origin,
                         "origin the checkpoint must carry (default: the URL without scheme and "
                         "/log)");
  log_verify->add_option("--state", verify_flags.state_path,
                         "state file (default: $XDG_STATE_HOME/custos/<origin>.json)");
  log_verify->add_option("--vkey", verify_flags.vkeys, "trusted verifier key (repeatable)")
      ->allow_extra_args(false);
  log_verify->add_option("--token", verify_flags.token, "API token (default: $CUSTOS_TOKEN)");
  log_verify->add_flag("--incremental", verify_flags.incremental,
                       "check only the entries added since the state's checkpoint");
  custos::cli::LogExportFlags export_flags;
  CLI::App* log_export = log_group->add_subcommand(
      "export", "download a log's checkpoint, keys, tiles and entries, and verify them");
  log_export->add_option("source", export_flags.source, "log URL (https://host/t/acme/log)")
      ->required();
  log_export->add_option("--out", export_flags.out_dir, "new or empty directory")->required();
  log_export->add_option("--vkey", export_flags.vkeys, "trusted verifier key (repeatable)")
      ->allow_extra_args(false);
  log_export->add_option("--token", export_flags.token, "API token (default: $CUSTOS_TOKEN)");
  std::string rotate_name;
  CLI::App* log_rotate = log_group->add_subcommand(
      "rotate-key", "make a new checkpoint signing key the signer (old checkpoints stay valid)");
  AddConfigFlags(*log_rotate, config_flags);
  log_rotate->add_option("--name", rotate_name, "key name (default: the current key's)");
  custos::cli::LogVerifyProofFlags proof_flags;
  CLI::App* log_verify_proof =
      log_group->add_subcommand("verify-proof", "check a C2SP tlog-proof of one entry");
  log_verify_proof->add_option("proof", proof_flags.proof_path, "tlog-proof file")->required();
  log_verify_proof->add_option("--vkey", proof_flags.vkeys, "trusted verifier key (repeatable)")
      ->allow_extra_args(false)
      ->required();
  log_verify_proof->add_option("--entry", proof_flags.entry_path,
                               "file holding the entry (default: the proof's extra line)");

  CLI::App* device_group = app.add_subcommand(
      "device",
      "the managed device of a support operator: enrol it, report its posture, get a "
      "device-bound token, call the support API");
  device_group->require_subcommand(1);
  const std::string device_dir_help =
      "device directory (default: $CUSTOS_DEVICE_DIR, else ~/.config/custos/device)";
  custos::cli::DeviceEnrollFlags enroll_flags;
  CLI::App* device_enroll = device_group->add_subcommand(
      "enroll", "make this device's key and register it with an enrolment token");
  device_enroll
      ->add_option("--server", enroll_flags.server, "server URL, e.g. https://id.example.com")
      ->required();
  device_enroll
      ->add_option("--token", enroll_flags.token,
                   "enrolment token from a provider admin; - reads it from the input")
      ->required();
  device_enroll->add_option("--dir", enroll_flags.dir, device_dir_help);
  custos::cli::DeviceReportFlags report_flags;
  CLI::App* device_report = device_group->add_subcommand(
      "report", "collect this device's posture, sign it with the device key and send it");
  device_report->add_option("--dir", report_flags.dir, device_dir_help);
  device_report->add_option("--posture-file", report_flags.posture_file,
                            "JSON object of posture members that override what was collected "
                            "(an MDM or EDR agent's answer)");
  device_report
      ->add_option("--edr-process", report_flags.edr_processes,
                   "comma-separated names of EDR agent processes")
      ->default_str(report_flags.edr_processes);
  custos::cli::DeviceTokenFlags device_token_flags;
  CLI::App* device_token = device_group->add_subcommand(
      "token", "exchange a provider session token for an access token bound to this device");
  device_token->add_option("--dir", device_token_flags.dir, device_dir_help);
  device_token->add_option("--session-token", device_token_flags.session_token,
                           "provider session token (default: read from the input, which keeps it "
                           "out of the process list)");
  custos::cli::DeviceCallFlags call_flags;
  CLI::App* device_call = device_group->add_subcommand(
      "call", "send one request with the device-bound token and a DPoP proof, print the answer");
  device_call->add_option("method", call_flags.method, "GET, POST, PUT, PATCH or DELETE")
      ->required();
  device_call->add_option("path", call_flags.path, "e.g. /provider/api/v1/support/me")->required();
  device_call->add_option("--data", call_flags.data, "JSON request body");
  device_call->add_option("--dir", call_flags.dir, device_dir_help);
  custos::cli::DeviceShowFlags show_flags;
  CLI::App* device_show =
      device_group->add_subcommand("show", "print the enrolled device and its key thumbprint");
  device_show->add_option("--dir", show_flags.dir, device_dir_help);

  custos::cli::IncidentCommand incident_command;
  CLI::App* incident_group = custos::cli::AddIncidentCommand(app, incident_command);

  custos::cli::DemoFlags demo_flags;
  CLI::App* demo = custos::cli::AddDemoCommand(app, demo_flags);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    // The log, device and incident commands promise exit 2 for usage errors (1 means a check failed
    // or the server refused).
    return code != 0 && (log_group->parsed() || device_group->parsed() ||
                         incident_group->parsed() || demo->parsed())
               ? 2
               : code;
  }

  if (!listen.empty()) config_flags.sets.push_back("server.listen_address=" + listen);
  if (!port.empty()) config_flags.sets.push_back("server.port=" + port);
  if (serve->parsed()) return custos::cli::Serve(config_flags, serve_flags);
  if (create_tenant->parsed()) return custos::cli::CreateTenant(config_flags, tenant_name);
  if (create_token->parsed()) {
    return custos::cli::CreateApiToken(config_flags, token_tenant, token_name, token_scope);
  }
  if (create_provider_token->parsed()) {
    return custos::cli::CreateProviderToken(config_flags, provider_token_name);
  }
  if (log_rotate->parsed()) return custos::cli::RotateLogKey(config_flags, rotate_name);
  if (log_verify->parsed()) return custos::cli::LogVerify(verify_flags);
  if (log_export->parsed()) return custos::cli::LogExport(export_flags);
  if (log_verify_proof->parsed()) return custos::cli::LogVerifyProof(proof_flags);
  if (device_enroll->parsed()) return custos::cli::DeviceEnroll(enroll_flags);
  if (device_report->parsed()) return custos::cli::DeviceReport(report_flags);
  if (device_token->parsed()) return custos::cli::DeviceToken(device_token_flags);
  if (device_call->parsed()) return custos::cli::DeviceCall(call_flags);
  if (device_show->parsed()) return custos::cli::DeviceShow(show_flags);
  if (incident_group->parsed()) return custos::cli::RunIncidentCommand(incident_command);
  if (demo->parsed()) return custos::cli::RunDemo(demo_flags);
  return 2;
}
