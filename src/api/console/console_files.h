#pragma once

// The built web console (web/, docs/console.md), served at /console/ from one directory.
//
// What a browser gets:
//   - a file below the directory, with the Content-Type of its extension; files under assets/
//     (Vite's content-hashed names) with Cache-Control "public, max-age=31536000, immutable",
//     every other file (index.html) with "no-cache" and an ETag, so that a new build shows at
//     once; If-None-Match with the current ETag gets 304;
//   - index.html for the directory itself and for any path below it that names no file and has
//     no file extension (the console routes in the browser);
//   - 404 for any other missing file, and for a path with a "." or ".." segment or a segment
//     starting with "." (however it was percent-encoded: the path arrives decoded), or that
//     leaves the directory through a symbolic link;
//   - 503 saying to run `make web` when the directory has no index.html.
// Every answer, errors and redirects included, carries kConsoleCsp as Content-Security-Policy,
// X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer and X-Frame-Options: DENY.
//
// Thread-safe. Files up to kMaxCachedFileBytes are kept in memory and read again when their size
// or modification time changes (a rebuild while the server runs is served at once).

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "api/http_types.h"
#include "common/config.h"

namespace custos::api::console {

inline constexpr std::string_view kConsoleCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

inline constexpr int64_t kMaxCachedFileBytes = 4 << 20;
// Files larger than this are not served (the built console has none).
inline constexpr int64_t kMaxFileBytes = 64 << 20;

// The directory served: config.console_dir, or when that is empty the one CMake compiled in
// (<source dir>/web/dist, which `make web` builds).
std::string ConsoleDir(const Config& config);

// True when `dir` holds a built console (an index.html).
bool ConsoleBuilt(const std::string& dir);

// The headers every console answer carries (see above). `custos serve` also has the server add
// them to its own answers under /console (router errors such as 400 for a malformed path, 405,
// and admission refusals), which never reach these routes.
std::vector<std::pair<std::string, std::string>> ConsoleHeaders();

// Adds ConsoleHeaders() to `response`.
void AddConsoleHeaders(Response& response);

// The Content-Type for a file name, by its extension (application/octet-stream when unknown).
std::string ContentTypeFor(std::string_view file_name);

class ConsoleFiles {
 public:
  // `dir` need not exist yet (it may be built later; until then answers are 503).
  explicit ConsoleFiles(std::string dir);

  // Answers GET of `path`, the decoded path below /console/ ("" for /console/ itself,
  // "assets/index-3f2a.js"). Reads If-None-Match from `request`.
  Response Serve(std::string_view path, const Request& request);

  const std::string& dir() const { return dir_; }

 private:
  struct CachedFile {
    int64_t size = 0;
    std::filesystem::file_time_type modified;
    std::string body;
    std::string etag;
  };

  // The file's content and ETag, from the cache when it is current. nullopt when it cannot be
  // read (or is too large).
  std::optional<CachedFile> Load(const std::filesystem::path& file);

  const std::string dir_;
  std::atomic<bool> warned_unbuilt_{false};  // the log says so once, not on every request
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, CachedFile> cache_ ABSL_GUARDED_BY(mu_);
  int64_t cached_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace custos::api::console
