// Keeps docs/openapi.yaml true: its operations are exactly the routes `custos serve` registers
// (cli::ApiRoutes plus the server's /healthz, /readyz and /metrics), each with an operationId and
// at least one documented 4xx answer, its path parameters match the path templates, and every
// $ref resolves.
//
// No YAML library is available, so the document is read line by line and must keep this shape:
//
//   paths:
//     /t/{tenant}/api/v1/users/{id}:            <- path, exactly as the router spells it (2 spaces)
//       parameters:                             <- path parameters, as $refs (4 spaces)
//         - $ref: '#/components/parameters/Tenant'
//       get:                                    <- one key per method (4 spaces)
//         operationId: getUser                  <- 6 spaces
//         responses:                            <- 6 spaces
//           '404':                              <- status codes (8 spaces)
//   components:
//     parameters:
//       Tenant:                                 <- component names (4 spaces)
//         name: tenant                          <- 6 spaces
//         in: path
//
// Block scalars (`description: |`) are skipped whatever their content.

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "absl/status/statusor.h"
#include "api/common.h"
#include "authn/sign_in.h"
#include "cli/routes.h"
#include "common/clock.h"
#include "common/config.h"
#include "crypto/password_hasher.h"
#include "crypto/random.h"
#include "crypto/sealer.h"
#include "directory/directory.h"
#include "store/sqlite/temp_sqlite_store.h"

namespace custos::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Routes that http::Server adds by itself to every route list.
constexpr std::pair<std::string_view, std::string_view> kServerRoutes[] = {
    {"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/metrics"}};

struct Operation {
  std::string method;  // upper case, as in api::Route
  std::string path;
  std::string operation_id;
  std::vector<std::string> statuses;  // response keys as written, unquoted: "200", "4XX", ...
  int line = 0;
};

struct PathItem {
  std::string path;
  std::vector<std::string> parameter_refs;  // path-level `- $ref:` values
  int line = 0;
};

struct ParameterComponent {
  std::string name;
  std::string in;
};

struct Reference {
  std::string target;
  int line = 0;
};

struct OpenApiDoc {
  std::string openapi_version;
  std::string info_version;
  std::vector<PathItem> paths;
  std::vector<Operation> operations;
  std::set<std::string> components;                      // "#/components/<section>/<name>"
  std::map<std::string, ParameterComponent> parameters;  // by component name
  std::vector<Reference> refs;
};

bool IsHttpMethod(std::string_view key) {
  for (std::string_view m : {"get", "put", "post", "delete", "options", "head", "patch", "trace"}) {
    if (key == m) return true;
  }
  return false;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string Unquote(std::string_view s) {
  s = Trim(s);
  if (s.size() >= 2 && (s.front() == '\'' || s.front() == '"') && s.back() == s.front()) {
    s = s.substr(1, s.size() - 2);
  }
  return std::string(s);
}

// One `key: value` line. The key may be quoted; the value is what follows ": " (or nothing).
struct KeyLine {
  std::string key;
  std::string value;
};

std::optional<KeyLine> SplitKey(std::string_view content) {
  size_t colon;
  if (!content.empty() && (content.front() == '\'' || content.front() == '"')) {
    size_t close = content.find(content.front(), 1);
    if (close == std::string_view::npos) return std::nullopt;
    colon = close + 1;
    if (colon >= content.size() || content[colon] != ':') return std::nullopt;
  } else {
    colon = content.find(": ");
    if (colon == std::string_view::npos) {
      if (content.empty() || content.back() != ':') return std::nullopt;
      colon = content.size() - 1;
    }
  }
  return KeyLine{Unquote(content.substr(0, colon)), std::string(Trim(content.substr(colon + 1)))};
}

bool StartsBlockScalar(std::string_view value) {
  return !value.empty() && (value.front() == '|' || value.front() == '>');
}

// Reads what the tests need from the document; fails, naming the line, on anything outside the
// shape described at the top of this file.
absl::StatusOr<OpenApiDoc> ParseOpenApi(std::string_view text) {
  OpenApiDoc doc;
  std::istringstream in{std::string(text)};
  std::string raw;
  int line_no = 0;
  std::string section;            // top-level key
  std::string component_section;  // under components:
  std::string component;          // component name under its section
  bool in_path_parameters = false;
  bool in_responses = false;
  int op = -1;                      // index into doc.operations of the operation being read, or -1
  std::optional<int> block_indent;  // set while inside a block scalar started at this indent
  std::set<std::string> seen_paths;
  std::set<std::string> seen_methods;  // of the current path
  auto error = [&](std::string_view what) {
    return absl::InvalidArgumentError(fmt::format("docs/openapi.yaml:{}: {}", line_no, what));
  };

  while (std::getline(in, raw)) {
    ++line_no;
    std::string_view line = raw;
    if (line.find('\t') != std::string_view::npos) return error("tab character");
    std::string_view content = Trim(line);
    if (content.empty()) continue;
    const int indent = static_cast<int>(line.find_first_not_of(' '));
    if (block_indent) {
      if (indent > *block_indent) continue;
      block_indent.reset();
    }
    if (content.front() == '#') continue;

    if (size_t ref = content.find("$ref:"); ref != std::string_view::npos) {
      doc.refs.push_back({Unquote(content.substr(ref + 5)), line_no});
    }
    bool is_item = content.front() == '-';
    std::optional<KeyLine> kv = is_item ? std::nullopt : SplitKey(content);
    if (kv && StartsBlockScalar(kv->value)) block_indent = indent;

    if (indent == 0) {
      if (!kv) return error("expected a top-level key");
      section = kv->key;
      if (section == "openapi") doc.openapi_version = Unquote(kv->value);
      op = -1;
      continue;
    }

    if (section == "info" && indent == 2 && kv && kv->key == "version") {
      doc.info_version = Unquote(kv->value);
    } else if (section == "paths") {
      if (indent == 2) {
        if (!kv || !kv->value.empty() || !kv->key.starts_with('/')) {
          return error("expected a path key starting with '/' at indent 2");
        }
        if (!seen_paths.insert(kv->key).second) return error("path listed twice: " + kv->key);
        doc.paths.push_back({kv->key, {}, line_no});
        seen_methods.clear();
        op = -1;
        in_path_parameters = false;
      } else if (doc.paths.empty()) {
        return error("expected a path key at indent 2");
      } else if (indent == 4) {
        if (!kv) return error("expected a method or 'parameters' at indent 4");
        op = -1;
        in_path_parameters = kv->key == "parameters";
        in_responses = false;
        if (IsHttpMethod(kv->key)) {
          if (!seen_methods.insert(kv->key).second) return error("method listed twice");
          op = static_cast<int>(doc.operations.size());
          doc.operations.push_back({Upper(kv->key), doc.paths.back().path, "", {}, line_no});
        } else if (kv->key != "parameters" && kv->key != "summary" && kv->key != "description") {
          return error(fmt::format("unexpected key '{}' at indent 4 under a path", kv->key));
        }
      } else if (in_path_parameters && indent == 6) {
        if (!content.starts_with("- $ref:")) {
          return error("path-level parameters must be written as '- $ref: ...'");
        }
        doc.paths.back().parameter_refs.push_back(Unquote(content.substr(7)));
      } else if (op >= 0 && indent == 6) {
        in_responses = kv && kv->key == "responses";
        if (kv && kv->key == "operationId") doc.operations[op].operation_id = Unquote(kv->value);
      } else if (op >= 0 && in_responses && indent == 8) {
        if (!kv) return error("expected a status code key under responses");
        doc.operations[op].statuses.push_back(kv->key);
      }
    } else if (section == "components") {
      if (indent == 2) {
        if (!kv) return error("expected a components section");
        component_section = kv->key;
        component.clear();
      } else if (indent == 4 && kv) {
        component = kv->key;
        doc.components.insert(fmt::format("#/components/{}/{}", component_section, component));
      } else if (indent == 6 && kv && component_section == "parameters" && !component.empty()) {
        if (kv->key == "name") doc.parameters[component].name = Unquote(kv->value);
        if (kv->key == "in") doc.parameters[component].in = Unquote(kv->value);
      }
    }
  }
  if (doc.openapi_version.empty()) return absl::InvalidArgumentError("no 'openapi:' line");
  if (doc.operations.empty()) return absl::InvalidArgumentError("no operations under 'paths:'");
  return doc;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Key(std::string_view method, std::string_view path) {
  return fmt::format("{} {}", method, path);
}

// The {name} segments of a path template, in order.
std::vector<std::string> TemplateParams(std::string_view path) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = path.find('{', pos)) != std::string_view::npos) {
    size_t close = path.find('}', pos);
    if (close == std::string_view::npos) break;
    std::string_view name = path.substr(pos + 1, close - pos - 1);
    // "{path...}" (the rest of the path, see http/router.h) is the parameter "path".
    if (name.ends_with("...")) name.remove_suffix(3);
    out.emplace_back(name);
    pos = close + 1;
  }
  return out;
}

// Builds the route list exactly as `custos serve` does, over a throwaway store.
class OpenApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    store_ = &temp_->store();
    hasher_ = std::make_unique<crypto::PasswordHasher>(crypto::Argon2Params{8, 1});
    sealer_ = crypto::Sealer::FromKey(std::string(32, 'k'));
    services_ = std::make_unique<api::Services>(
        api::Services{*store_, config_, clock_, random_, *hasher_, *sealer_});
    directory_ = std::make_unique<directory::Directory>(*store_, config_, clock_, random_, *hasher_,
                                                        *sealer_);
    sign_in_ =
        std::make_unique<authn::SignIn>(*store_, config_, clock_, random_, *hasher_, *sealer_);
    log_keys_ = std::make_unique<audit::LogKeys>(*store_, *sealer_, clock_, random_);
    log_reader_ = std::make_unique<audit::LogReader>(*store_);
    support_ = std::make_unique<SupportStack>(*services_);
    oidc_ = std::make_unique<OidcStack>(*services_, *directory_);

    const char* source_dir = std::getenv("CUSTOS_SOURCE_DIR");
    ASSERT_NE(source_dir, nullptr) << "CUSTOS_SOURCE_DIR is not set (custos_test sets it)";
    const std::string path = std::string(source_dir) + "/docs/openapi.yaml";
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    absl::StatusOr<OpenApiDoc> doc = ParseOpenApi(ReadFile(path));
    ASSERT_TRUE(doc.ok()) << doc.status();
    doc_ = *std::move(doc);
  }

  void TearDown() override {
    log_reader_.reset();
    log_keys_.reset();
    sign_in_.reset();
    directory_.reset();
    temp_.reset();
  }

  // "METHOD pattern" of every route the server answers.
  std::vector<std::string> ServedRoutes() {
    std::vector<std::string> out;
    for (const api::Route& r : ApiRoutes(*services_, *directory_, *sign_in_, *log_reader_,
                                         *log_keys_, *support_, *oidc_)) {
      out.push_back(Key(r.method, r.pattern));
    }
    for (const auto& [method, path] : kServerRoutes) out.push_back(Key(method, path));
    return out;
  }

  std::unique_ptr<store::TempSqliteStore> temp_;
  Config config_;
  FakeClock clock_;
  crypto::SeededRandom random_{42};
  store::Store* store_ = nullptr;
  std::unique_ptr<crypto::PasswordHasher> hasher_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<api::Services> services_;
  std::unique_ptr<directory::Directory> directory_;
  std::unique_ptr<authn::SignIn> sign_in_;
  std::unique_ptr<audit::LogKeys> log_keys_;
  std::unique_ptr<audit::LogReader> log_reader_;
  std::unique_ptr<SupportStack> support_;
  std::unique_ptr<OidcStack> oidc_;
  OpenApiDoc doc_;
};

TEST_F(OpenApiTest, DocumentsExactlyTheServedRoutes) {
  std::vector<std::string> served = ServedRoutes();
  std::set<std::string> served_set(served.begin(), served.end());
  ASSERT_EQ(served_set.size(), served.size()) << "a route is registered twice";

  std::set<std::string> documented;
  for (const Operation& op : doc_.operations) documented.insert(Key(op.method, op.path));

  std::vector<std::string> undocumented, not_served;
  for (const std::string& k : served_set) {
    if (!documented.contains(k)) undocumented.push_back(k);
  }
  for (const std::string& k : documented) {
    if (!served_set.contains(k)) not_served.push_back(k);
  }
  EXPECT_THAT(undocumented, IsEmpty()) << "served but missing from docs/openapi.yaml:\n  "
                                       << fmt::format("{}", fmt::join(undocumented, "\n  "));
  EXPECT_THAT(not_served, IsEmpty()) << "in docs/openapi.yaml but not served:\n  "
                                     << fmt::format("{}", fmt::join(not_served, "\n  "));
}

TEST_F(OpenApiTest, DocumentDeclaresItsVersions) {
  EXPECT_EQ(doc_.openapi_version, "3.0.3");
  EXPECT_EQ(doc_.info_version, "0.1.0");
}

TEST_F(OpenApiTest, EveryOperationHasAUniqueIdAndAClientError) {
  std::map<std::string, std::string> ids;  // operationId -> operation
  for (const Operation& op : doc_.operations) {
    const std::string where = fmt::format("{} (line {})", Key(op.method, op.path), op.line);
    EXPECT_FALSE(op.operation_id.empty()) << where << " has no operationId";
    if (!op.operation_id.empty()) {
      auto [it, inserted] = ids.emplace(op.operation_id, where);
      EXPECT_TRUE(inserted) << "operationId " << op.operation_id << " is used by " << it->second
                            << " and " << where;
    }
    bool success = false, client_error = false;
    for (const std::string& s : op.statuses) {
      // A redirect is how the browser-facing OIDC endpoints succeed.
      success = success || s.starts_with('2') || s.starts_with('3');
      client_error = client_error || s.starts_with('4');
    }
    EXPECT_TRUE(success) << where << " documents no 2xx response";
    EXPECT_TRUE(client_error) << where << " documents no 4xx response";
  }
}

TEST_F(OpenApiTest, PathParametersMatchThePathTemplates) {
  for (const PathItem& item : doc_.paths) {
    std::multiset<std::string> declared;
    for (const std::string& ref : item.parameter_refs) {
      constexpr std::string_view kPrefix = "#/components/parameters/";
      ASSERT_TRUE(ref.starts_with(kPrefix)) << item.path << ": " << ref;
      auto it = doc_.parameters.find(ref.substr(kPrefix.size()));
      ASSERT_NE(it, doc_.parameters.end()) << item.path << ": no parameter component " << ref;
      if (it->second.in == "path") declared.insert(it->second.name);
    }
    std::vector<std::string> in_template = TemplateParams(item.path);
    EXPECT_EQ(declared, std::multiset<std::string>(in_template.begin(), in_template.end()))
        << item.path << " (line " << item.line << ")";
  }
}

TEST_F(OpenApiTest, EveryReferenceResolves) {
  ASSERT_FALSE(doc_.refs.empty());
  for (const Reference& ref : doc_.refs) {
    EXPECT_TRUE(doc_.components.contains(ref.target))
        << "line " << ref.line << ": $ref " << ref.target << " is not defined";
  }
}

// The parser itself, on small documents, so that a mistake in it cannot hide a mismatch.

constexpr char kSmallDoc[] = R"(openapi: 3.0.3
info:
  version: 9.9.9
  description: |
    paths:
      /not/a/path:
        get:
paths:
  /t/{tenant}/things/{id}:
    parameters:
      - $ref: '#/components/parameters/Tenant'
    get:
      operationId: getThing
      description: >-
        get: not a method
      responses:
        '200':
          description: ok
        "404":
          description: not found
    delete:
      operationId: deleteThing
      responses:
        204:
          description: gone
  /healthz:
    get:
      responses:
        '200':
          description: ok
components:
  parameters:
    Tenant:
      name: tenant
      in: path
)";

TEST(OpenApiParserTest, ReadsPathsMethodsIdsAndStatuses) {
  absl::StatusOr<OpenApiDoc> doc = ParseOpenApi(kSmallDoc);
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->openapi_version, "3.0.3");
  EXPECT_EQ(doc->info_version, "9.9.9");
  ASSERT_EQ(doc->operations.size(), 3u);
  EXPECT_EQ(Key(doc->operations[0].method, doc->operations[0].path), "GET /t/{tenant}/things/{id}");
  EXPECT_EQ(doc->operations[0].operation_id, "getThing");
  EXPECT_THAT(doc->operations[0].statuses, ElementsAre("200", "404"));
  EXPECT_EQ(Key(doc->operations[1].method, doc->operations[1].path),
            "DELETE /t/{tenant}/things/{id}");
  EXPECT_THAT(doc->operations[1].statuses, ElementsAre("204"));
  EXPECT_EQ(Key(doc->operations[2].method, doc->operations[2].path), "GET /healthz");
  EXPECT_EQ(doc->operations[2].operation_id, "");
  ASSERT_EQ(doc->paths.size(), 2u);
  EXPECT_THAT(doc->paths[0].parameter_refs, ElementsAre("#/components/parameters/Tenant"));
  EXPECT_EQ(doc->parameters["Tenant"].name, "tenant");
  EXPECT_EQ(doc->parameters["Tenant"].in, "path");
  EXPECT_TRUE(doc->components.contains("#/components/parameters/Tenant"));
  EXPECT_THAT(TemplateParams(doc->paths[0].path), ElementsAre("tenant", "id"));
}

TEST(OpenApiParserTest, RefusesDocumentsOutsideItsShape) {
  auto error_of = [](std::string_view text) {
    absl::StatusOr<OpenApiDoc> doc = ParseOpenApi(text);
    return doc.ok() ? std::string("ok") : std::string(doc.status().message());
  };
  EXPECT_THAT(error_of("openapi: 3.0.3\npaths:\n  /a:\n    get:\n      operationId: a\n"
                       "    get:\n      operationId: b\n"),
              HasSubstr("method listed twice"));
  EXPECT_THAT(error_of("openapi: 3.0.3\npaths:\n  /a:\n    get:\n  /a:\n    post:\n"),
              HasSubstr("path listed twice"));
  EXPECT_THAT(error_of("openapi: 3.0.3\npaths:\n  a:\n    get:\n"), HasSubstr("starting with '/'"));
  EXPECT_THAT(error_of("openapi: 3.0.3\npaths:\n  /a:\n    gett:\n"),
              HasSubstr("unexpected key 'gett'"));
  EXPECT_THAT(error_of("openapi: 3.0.3\npaths:\n  /a:\n\tget:\n"), HasSubstr("tab"));
  EXPECT_THAT(error_of("openapi: 3.0.3\npaths:\n  /a:\n    parameters:\n      - name: a\n"),
              HasSubstr("'- $ref: ...'"));
  EXPECT_THAT(error_of("openapi: 3.0.3\npaths:\n"), HasSubstr("no operations"));
  EXPECT_THAT(error_of("paths:\n  /a:\n    get:\n"), HasSubstr("no 'openapi:' line"));
}

}  // namespace
}  // namespace custos::cli
