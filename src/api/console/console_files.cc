#include "api/console/console_files.h"

#include <algorithm>
#include <fstream>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "absl/strings/ascii.h"
#include "common/logging.h"
#include "crypto/hash.h"

#ifndef CUSTOS_DEFAULT_CONSOLE_DIR
#error "CUSTOS_DEFAULT_CONSOLE_DIR must be defined by the build (src/api/console/CMakeLists.txt)"
#endif

namespace custos::api::console {
namespace {

namespace fs = std::filesystem;

// All cached files together stay below this; beyond it files are read from disk each time.
constexpr int64_t kMaxCachedTotalBytes = 64 << 20;

constexpr std::string_view kImmutable = "public, max-age=31536000, immutable";

Response WithConsoleHeaders(Response r) {
  AddConsoleHeaders(r);
  return r;
}

Response TextAnswer(int status, std::string text) {
  Response r;
  r.status = status;
  r.body = std::move(text);
  r.AddHeader("Content-Type", "text/plain; charset=utf-8");
  r.AddHeader("Cache-Control", "no-store");
  return WithConsoleHeaders(std::move(r));
}

Response NotFound() { return TextAnswer(404, "Not found: no such file in the Custos console.\n"); }

// The path's segments, or nullopt when one could step outside the directory or reach a hidden
// file: ".", "..", a name starting with '.', a backslash, a control character, or an empty
// segment before the last (a trailing '/' is allowed).
std::optional<std::vector<std::string>> SafeSegments(std::string_view path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view seg = path.substr(start, slash - start);
    const bool last = slash == path.size();
    if (seg.empty()) {
      if (!last) return std::nullopt;
    } else {
      if (seg.front() == '.') return std::nullopt;
      for (char c : seg) {
        if (c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return std::nullopt;
      }
      out.emplace_back(seg);
    }
    start = slash + 1;
  }
  return out;
}

bool IsRegularFile(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// Whether `file` (which exists) resolves to a place inside `root`, symbolic links followed.
bool Inside(const fs::path& root, const fs::path& file) {
  std::error_code ec;
  const fs::path real_root = fs::canonical(root, ec);
  if (ec) return false;
  const fs::path real_file = fs::canonical(file, ec);
  if (ec) return false;
  auto [root_end, file_it] =
      std::mismatch(real_root.begin(), real_root.end(), real_file.begin(), real_file.end());
  return root_end == real_root.end() && file_it != real_file.end();
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ConsoleHeaders() {
  return {{"Content-Security-Policy", std::string(kConsoleCsp)},
          {"X-Content-Type-Options", "nosniff"},
          {"Referrer-Policy", "no-referrer"},
          {"X-Frame-Options", "DENY"}};
}

void AddConsoleHeaders(Response& response) {
  for (auto& [name, value] : ConsoleHeaders()) response.AddHeader(name, value);
}

std::string ConsoleDir(const Config& config) {
  return config.console_dir.empty() ? std::string(CUSTOS_DEFAULT_CONSOLE_DIR) : config.console_dir;
}

bool ConsoleBuilt(const std::string& dir) { return IsRegularFile(fs::path(dir) / "index.html"); }

std::string ContentTypeFor(std::string_view file_name) {
  const size_t dot = file_name.rfind('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  const std::string ext = absl::AsciiStrToLower(std::string(file_name.substr(dot + 1)));
  static const auto* types = new absl::flat_hash_map<std::string, std::string>{
      {"html", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"json", "application/json"},
      {"map", "application/json"},
      {"webmanifest", "application/manifest+json"},
      {"txt", "text/plain; charset=utf-8"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"avif", "image/avif"},
      {"ico", "image/x-icon"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"ttf", "font/ttf"},
      {"otf", "font/otf"},
      {"wasm", "application/wasm"},
  };
  auto it = types->find(ext);
  return it == types->end() ? "application/octet-stream" : it->second;
}

ConsoleFiles::ConsoleFiles(std::string dir) : dir_(std::move(dir)) {}

std::optional<ConsoleFiles::CachedFile> ConsoleFiles::Load(const fs::path& file) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(file, ec);
  if (ec || size > static_cast<uintmax_t>(kMaxFileBytes)) return std::nullopt;
  const fs::file_time_type modified = fs::last_write_time(file, ec);
  if (ec) return std::nullopt;
  const std::string key = file.string();
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(key);
    if (it != cache_.end() && it->second.size == static_cast<int64_t>(size) &&
        it->second.modified == modified) {
      return it->second;
    }
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  CachedFile loaded{.size = 0, .modified = modified};
  loaded.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) return std::nullopt;
  loaded.size = static_cast<int64_t>(loaded.body.size());
  loaded.etag = fmt::format("\"{}\"", crypto::Sha256Hex(loaded.body).substr(0, 32));
  // A file that changed while it was read is cached under the older time and read again next
  // time: its size or time no longer match.
  if (loaded.size == static_cast<int64_t>(size) && loaded.size <= kMaxCachedFileBytes) {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(key);
    const int64_t replaced = it == cache_.end() ? 0 : it->second.size;
    if (cached_bytes_ - replaced + loaded.size <= kMaxCachedTotalBytes) {
      cached_bytes_ += loaded.size - replaced;
      cache_[key] = loaded;
    }
  }
  return loaded;
}

Response ConsoleFiles::Serve(std::string_view path, const Request& request) {
  const fs::path root(dir_);
  const fs::path index = root / "index.html";
  if (!IsRegularFile(index)) {
    if (!warned_unbuilt_.exchange(true)) {
      Log(LogLevel::kWarn, "the web console is not built: run make web", {{"console_dir", dir_}});
    }
    return TextAnswer(503,
                      "The Custos web console is not built. Build it with `make web` (or set "
                      "console.dir to a directory holding a built console), then reload.\n");
  }
  std::optional<std::vector<std::string>> segments = SafeSegments(path);
  if (!segments.has_value()) return NotFound();

  fs::path file = root;
  for (const std::string& seg : *segments) file /= seg;
  const bool named_file = !segments->empty() && !path.ends_with('/') && IsRegularFile(file);
  if (!named_file) {
    // No such file: a route of the console itself (no extension), or a file that is missing.
    if (!segments->empty() && !path.ends_with('/') &&
        segments->back().find('.') != std::string::npos) {
      return NotFound();
    }
    file = index;
  }
  if (!Inside(root, file)) return NotFound();

  std::optional<CachedFile> content = Load(file);
  if (!content.has_value()) {
    Log(LogLevel::kError, "cannot read a file of the web console", {{"file", file.string()}});
    return TextAnswer(500, "The Custos console could not read this file.\n");
  }
  const bool immutable = named_file && segments->size() > 1 && segments->front() == "assets";
  Response r;
  r.AddHeader("Cache-Control", std::string(immutable ? kImmutable : "no-cache"));
  r.AddHeader("ETag", content->etag);
  if (request.Header("if-none-match") == content->etag) {
    r.status = 304;
    return WithConsoleHeaders(std::move(r));
  }
  r.status = 200;
  r.AddHeader("Content-Type", ContentTypeFor(file.filename().string()));
  r.body = std::move(content->body);
  return WithConsoleHeaders(std::move(r));
}

}  // namespace custos::api::console
