// custos: the Custos identity provider. Subcommands: serve, admin, version.

#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/admin.h"
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

  CLI11_PARSE(app, argc, argv);

  if (!listen.empty()) config_flags.sets.push_back("server.listen_address=" + listen);
  if (!port.empty()) config_flags.sets.push_back("server.port=" + port);
  if (serve->parsed()) return custos::cli::Serve(config_flags, serve_flags);
  if (create_tenant->parsed()) return custos::cli::CreateTenant(config_flags, tenant_name);
  if (create_token->parsed()) {
    return custos::cli::CreateApiToken(config_flags, token_tenant, token_name);
  }
  return 2;
}
