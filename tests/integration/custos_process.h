#pragma once

// Runs the real `custos` binary for integration tests: admin commands to completion, and
// `custos serve --port 0` in the background on a temporary data directory, with a small libcurl
// client to talk to it. TestStore chooses the store (SQLite or PostgreSQL) of a data directory.

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "store/postgres/temp_database.h"

namespace custos::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Path of the custos binary (CUSTOS_BINARY, set by CMake).
std::string CustosBinary();

CommandResult RunCustos(const std::vector<std::string>& args);

struct HttpResult {
  long status = 0;    // 0 when no answer came
  int curl_code = 0;  // CURLE_OK, or why no answer came (CURLE_COULDNT_CONNECT: nobody listened)
  std::string body;
  std::multimap<std::string, std::string> headers;  // names in lower case
};

HttpResult Http(const std::string& method, const std::string& url, const std::string& body = "",
                const std::vector<std::string>& headers = {});

class ServerProcess {
 public:
  // Starts `custos serve --data-dir <dir> --port 0 <extra>` and waits for its listening line.
  ServerProcess(const std::string& data_dir, const std::vector<std::string>& extra = {});
  ~ServerProcess();

  bool started() const { return !base_url_.empty(); }
  const std::string& base_url() const { return base_url_; }
  // Sends `signal` and waits; returns the exit status (or -1).
  int Stop(int signal);
  std::string Stderr() const;

 private:
  pid_t pid_ = -1;
  std::string base_url_;
  std::string stderr_path_;
};

// The store of one data directory. By default SQLite, in the directory. With
// CUSTOS_IT_STORE=postgres (the ctest copies of the integration tests labelled postgres), a new
// database on the PostgreSQL server whose admin URL is in CUSTOS_TEST_POSTGRES, dropped when
// this object is destroyed (stop the servers on it first). Every custos command on the
// directory must carry Args(); so that one which does not fails instead of quietly making a
// SQLite store, the directory then holds a *directory* named custos.db, which SQLite cannot
// open. Not thread-safe.
class TestStore {
 public:
  // Whether the tests run on PostgreSQL (CUSTOS_IT_STORE=postgres).
  static bool PostgresRequested();

  // The store for `data_dir` (created when missing). An error when PostgreSQL is requested
  // and CUSTOS_TEST_POSTGRES is unset, or the database cannot be made.
  static absl::StatusOr<std::unique_ptr<TestStore>> Open(const std::string& data_dir);

  bool postgres() const { return database_ != nullptr; }
  // What every custos command on the directory needs on top of --data-dir:
  // {"--set", "store.url=<database URL>"} on PostgreSQL, nothing on SQLite.
  std::vector<std::string> Args() const;
  // `args` followed by Args().
  std::vector<std::string> With(std::vector<std::string> args) const;

  // The rows of `sql` (a SELECT whose columns are text or integers), each column as text (""
  // for NULL), read from the store as the server sees it (SQLite: read-only).
  absl::StatusOr<std::vector<std::vector<std::string>>> Rows(const std::string& sql) const;

 private:
  TestStore(std::string data_dir, std::unique_ptr<store::postgres::TempDatabase> database)
      : data_dir_(std::move(data_dir)), database_(std::move(database)) {}

  std::string data_dir_;
  std::unique_ptr<store::postgres::TempDatabase> database_;  // null on SQLite
};

}  // namespace custos::testing
