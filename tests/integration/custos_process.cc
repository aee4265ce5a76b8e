#include "custos_process.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "fmt/format.h"
#include "store/postgres/pg.h"

extern char** environ;

namespace custos::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

pid_t Spawn(const std::vector<std::string>& args, const std::string& out_path,
            const std::string& err_path) {
  std::vector<char*> argv;
  std::string bin = CustosBinary();
  argv.push_back(bin.data());
  std::vector<std::string> copy = args;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  pid_t pid = -1;
  if (posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

size_t Collect(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t CollectHeader(char* data, size_t size, size_t n, void* user) {
  std::string line(data, size * n);
  size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    static_cast<std::multimap<std::string, std::string>*>(user)->emplace(name, value);
  }
  return size * n;
}

std::string TempPath(const std::string& name) {
  static int counter = 0;
  return ::testing::TempDir() + "/" + name + std::to_string(::getpid()) + "_" +
         std::to_string(counter++);
}

}  // namespace

std::string CustosBinary() {
  const char* b = std::getenv("CUSTOS_BINARY");
  return b ? b : "custos";
}

CommandResult RunCustos(const std::vector<std::string>& args) {
  std::string out = TempPath("out"), err = TempPath("err");
  CommandResult result;
  pid_t pid = Spawn(args, out, err);
  if (pid < 0) return result;
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = ReadFile(out);
  result.err = ReadFile(err);
  std::remove(out.c_str());
  std::remove(err.c_str());
  return result;
}

HttpResult Http(const std::string& method, const std::string& url, const std::string& body,
                const std::vector<std::string>& headers) {
  HttpResult result;
  CURL* curl = curl_easy_init();
  curl_slist* list = nullptr;
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  if (!body.empty()) list = curl_slist_append(list, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!body.empty() || method == "POST" || method == "PUT") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &result.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, CollectHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &result.headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  result.curl_code = curl_easy_perform(curl);
  if (result.curl_code == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
  }
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  return result;
}

ServerProcess::ServerProcess(const std::string& data_dir, const std::vector<std::string>& extra) {
  std::string out = TempPath("serve_out");
  stderr_path_ = TempPath("serve_err");
  std::vector<std::string> args = {"serve", "--data-dir", data_dir, "--port", "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  pid_ = Spawn(args, out, stderr_path_);
  if (pid_ < 0) return;
  const std::string marker = "custos listening on ";
  for (int i = 0; i < 300; ++i) {
    std::string text = ReadFile(out);
    size_t at = text.find(marker);
    if (at != std::string::npos) {
      size_t end = text.find('\n', at);
      if (end != std::string::npos) {
        base_url_ = text.substr(at + marker.size(), end - at - marker.size());
        return;
      }
    }
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

ServerProcess::~ServerProcess() { Stop(SIGKILL); }

int ServerProcess::Stop(int signal) {
  if (pid_ < 0) return -1;
  ::kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ServerProcess::Stderr() const { return ReadFile(stderr_path_); }

bool TestStore::PostgresRequested() {
  const char* store = std::getenv("CUSTOS_IT_STORE");
  return store != nullptr && std::string(store) == "postgres";
}

absl::StatusOr<std::unique_ptr<TestStore>> TestStore::Open(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return absl::InternalError(fmt::format("cannot create {}: {}", data_dir, ec.message()));
  if (!PostgresRequested()) {
    return std::unique_ptr<TestStore>(new TestStore(data_dir, nullptr));
  }
  std::optional<std::string> admin_url = store::postgres::TestServerUrl();
  if (!admin_url) {
    return absl::FailedPreconditionError(
        "CUSTOS_IT_STORE=postgres needs a PostgreSQL server in CUSTOS_TEST_POSTGRES (run under "
        "scripts/with-postgres.sh, as `make pg-unit` does)");
  }
  absl::StatusOr<std::unique_ptr<store::postgres::TempDatabase>> database =
      store::postgres::TempDatabase::Create(*admin_url, "it");
  if (!database.ok()) return database.status();
  std::filesystem::create_directories(data_dir + "/custos.db", ec);
  if (ec) return absl::InternalError(fmt::format("cannot create the guard: {}", ec.message()));
  return std::unique_ptr<TestStore>(new TestStore(data_dir, std::move(*database)));
}

std::vector<std::string> TestStore::Args() const {
  if (!database_) return {};
  return {"--set", "store.url=" + database_->url()};
}

std::vector<std::string> TestStore::With(std::vector<std::string> args) const {
  for (std::string& arg : Args()) args.push_back(std::move(arg));
  return args;
}

absl::StatusOr<std::vector<std::vector<std::string>>> TestStore::Rows(
    const std::string& sql) const {
  std::vector<std::vector<std::string>> rows;
  if (database_) {
    absl::StatusOr<std::unique_ptr<store::postgres::Connection>> conn =
        store::postgres::Connection::Open(database_->url());
    if (!conn.ok()) return conn.status();
    PGresult* result = PQexec((*conn)->raw(), sql.c_str());
    absl::Cleanup clear = [result] { PQclear(result); };
    if (PQresultStatus(result) != PGRES_TUPLES_OK) {
      return absl::InvalidArgumentError(fmt::format("{}: {}", sql, PQresultErrorMessage(result)));
    }
    for (int r = 0; r < PQntuples(result); ++r) {
      std::vector<std::string>& row = rows.emplace_back();
      for (int c = 0; c < PQnfields(result); ++c) row.emplace_back(PQgetvalue(result, r, c));
    }
    return rows;
  }
  sqlite3* db = nullptr;
  const std::string path = data_dir_ + "/custos.db";
  absl::Cleanup close = [&db] { sqlite3_close(db); };
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    return absl::InternalError(fmt::format("cannot open {}: {}", path, sqlite3_errmsg(db)));
  }
  sqlite3_busy_timeout(db, 10000);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    return absl::InvalidArgumentError(fmt::format("{}: {}", sql, sqlite3_errmsg(db)));
  }
  absl::Cleanup finalize = [stmt] { sqlite3_finalize(stmt); };
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    std::vector<std::string>& row = rows.emplace_back();
    for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
      const unsigned char* text = sqlite3_column_text(stmt, i);
      row.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
    }
  }
  if (rc != SQLITE_DONE) {
    return absl::InternalError(fmt::format("{}: {}", sql, sqlite3_errmsg(db)));
  }
  return rows;
}

}  // namespace custos::testing
