#pragma once

// Runs the real `custos` binary for integration tests: admin commands to completion, and
// `custos serve --port 0` in the background on a temporary data directory, with a small libcurl
// client to talk to it.

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

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

}  // namespace custos::testing
