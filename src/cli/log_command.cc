#include "cli/log_command.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "audit/checkpoint.h"
#include "audit/log_verifier.h"
#include "audit/note.h"
#include "audit/tiles.h"
#include "cli/http_fetch.h"
#include "common/files.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "common/time_format.h"
#include "crypto/encoding.h"
#include "incident/evidence.h"

namespace custos::cli {
namespace {

namespace fs = std::filesystem;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitError = 2;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

absl::Status ErrnoError(std::string_view what, const std::string& path, int err) {
  std::string message = fmt::format("{} {}: {}", what, path, std::strerror(err));
  return err == ENOENT ? absl::NotFoundError(message) : absl::InternalError(message);
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", path, errno);
  std::string data;
  char buffer[65536];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return ErrnoError("cannot read", path, err);
    }
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

absl::Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("cannot write", path, errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status CreateParentDirectories(const fs::path& path) {
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  if (ec) {
    return absl::InternalError(
        fmt::format("cannot create directory {}: {}", path.parent_path().string(), ec.message()));
  }
  return absl::OkStatus();
}

absl::Status WriteFile(const fs::path& path, std::string_view data) {
  RETURN_IF_ERROR(CreateParentDirectories(path));
  // An export holds a tenant's events (logins, addresses): readable by its owner only.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("cannot create", path.string(), errno);
  absl::Status written = WriteAll(fd, data, path.string());
  if (::close(fd) != 0 && written.ok()) written = ErrnoError("cannot write", path.string(), errno);
  return written;
}

// Creates the state file's directory, then replaces the file in one step.
absl::Status WriteStateFile(const fs::path& path, std::string_view data) {
  RETURN_IF_ERROR(CreateParentDirectories(path));
  return WriteFileAtomically(path.string(), data);
}

bool IsUrl(std::string_view source) {
  return source.starts_with("http://") || source.starts_with("https://");
}

class HttpLogSource final : public audit::LogSource {
 public:
  HttpLogSource(std::string_view prefix, std::string token)
      : prefix_(prefix), client_(HttpFetchOptions{.token = std::move(token)}) {
    while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
  }

  absl::StatusOr<std::string> Fetch(std::string_view path) override {
    absl::StatusOr<std::string> body = client_.Get(fmt::format("{}/{}", prefix_, path));
    if (absl::IsUnauthenticated(body.status()) || absl::IsPermissionDenied(body.status())) {
      return absl::Status(body.status().code(),
                          Message(body.status()) +
                              " (a log that is not public needs --token or CUSTOS_TOKEN: an API "
                              "token with the log.read or admin scope)");
    }
    return body;
  }

 private:
  std::string prefix_;
  HttpClient client_;
};

class DirectoryLogSource final : public audit::LogSource {
 public:
  explicit DirectoryLogSource(fs::path dir) : dir_(std::move(dir)) {}

  absl::StatusOr<std::string> Fetch(std::string_view path) override {
    fs::path relative(path);
    for (const fs::path& part : relative) {
      if (part == ".." || relative.is_absolute()) {
        return absl::InvalidArgumentError(fmt::format("refusing path {}", path));
      }
    }
    return ReadFile((dir_ / relative).string());
  }

 private:
  fs::path dir_;
};

// Serves the checkpoint fetched first to every later request for it, so that the origin read to
// find the state file is the one that gets verified.
class PinnedCheckpointSource final : public audit::LogSource {
 public:
  explicit PinnedCheckpointSource(audit::LogSource& source) : source_(source) {}

  absl::StatusOr<std::string> Fetch(std::string_view path) override {
    if (path != "checkpoint") return source_.Fetch(path);
    if (!checkpoint_) checkpoint_ = source_.Fetch(path);
    return *checkpoint_;
  }

 private:
  audit::LogSource& source_;
  std::optional<absl::StatusOr<std::string>> checkpoint_;
};

std::string TokenOrEnv(const std::string& token) {
  if (!token.empty()) return token;
  const char* env = std::getenv("CUSTOS_TOKEN");
  return env != nullptr ? env : "";
}

absl::StatusOr<std::unique_ptr<audit::LogSource>> OpenSource(const std::string& source,
                                                             const std::string& token) {
  if (IsUrl(source)) return std::make_unique<HttpLogSource>(source, TokenOrEnv(token));
  std::error_code ec;
  if (!fs::is_directory(source, ec)) {
    return absl::InvalidArgumentError(fmt::format(
        "{} is neither an http(s) URL nor a directory written by `custos log export`", source));
  }
  return std::make_unique<DirectoryLogSource>(source);
}

// The origin line of a checkpoint note, unverified: only to find the state file.
std::string OriginOf(std::string_view note) { return std::string(note.substr(0, note.find('\n'))); }

// Prints "verified X of N entries" at most once per interval.
class Progress {
 public:
  Progress(const LogCommandIo& io, std::string_view verb)
      : io_(io), verb_(verb), last_(io.clock->Now()) {}

  void Report(uint64_t done, uint64_t total) {
    const absl::Time now = io_.clock->Now();
    if (now - last_ < io_.progress_interval || done >= total) return;
    last_ = now;
    fmt::print(io_.err, "custos: {} {} of {} entries ({}%)\n", verb_, done, total,
               total == 0 ? 100 : done * 100 / total);
    std::fflush(io_.err);
  }

 private:
  const LogCommandIo& io_;
  std::string verb_;
  absl::Time last_;
};

int Error(const LogCommandIo& io, const absl::Status& status) {
  fmt::print(io.err, "custos: {}\n", Message(status));
  return kExitError;
}

// Exit 1 for a failed check, 2 for anything else.
int Failure(const LogCommandIo& io, const absl::Status& status, std::string_view what,
            std::string_view note = "") {
  if (!audit::IsLogVerificationFailure(status)) return Error(io, status);
  fmt::print(io.err, "custos: {} FAILED: {}{}\n", what, Message(status), note);
  return kExitFailed;
}

void PrintTrustOnFirstUse(const LogCommandIo& io, const audit::VerifyReport& report,
                          std::string_view kept_where) {
  if (report.trusted_on_first_use.empty()) return;
  fmt::print(io.err,
             "custos: no trusted key was given, so the keys the log publishes are trusted on "
             "first use:\n");
  for (const std::string& vkey : report.trusted_on_first_use) fmt::print(io.err, "  {}\n", vkey);
  fmt::print(io.err, "custos: compare them with a copy obtained another way (or pass --vkey); {}\n",
             kept_where);
}

std::string Signers(const audit::VerifyReport& report) {
  return fmt::format("{}", fmt::join(report.signed_by, ", "));
}

// Where the server that signed a log publishes its keys: the origin without "/t/<tenant>" (or
// "/provider") is the server's public base URL without its scheme.
std::string LogKeysUrl(std::string_view origin) {
  const size_t tenant = origin.rfind("/t/");
  if (tenant != std::string_view::npos) origin = origin.substr(0, tenant);
  return fmt::format("https://{}/.well-known/custos/log-keys", origin);
}

int VerifyEvidenceFile(const LogVerifyFlags& flags, const LogCommandIo& io) {
  if (!flags.source.empty()) {
    return Error(io, absl::InvalidArgumentError(
                         "--evidence checks one file offline: give it without a log source"));
  }
  if (!flags.state_path.empty() || !flags.token.empty() || flags.incremental) {
    return Error(io, absl::InvalidArgumentError(
                         "--state, --token and --incremental do not apply to --evidence"));
  }
  std::vector<audit::note::VerifierKey> trusted;
  for (const std::string& vkey : flags.vkeys) {
    absl::StatusOr<audit::note::VerifierKey> key = audit::note::ParseVerifierKey(vkey);
    if (!key.ok()) {
      return Error(io, absl::InvalidArgumentError(
                           fmt::format("--vkey {}: {}", vkey, Message(key.status()))));
    }
    trusted.push_back(*std::move(key));
  }

  // Refused before reading, so that a huge file is not loaded to be turned down.
  std::error_code ec;
  const uintmax_t size = fs::file_size(flags.evidence_path, ec);
  if (!ec && size > incident::kMaxEvidenceFileBytes) {
    return Error(io, absl::OutOfRangeError(fmt::format(
                         "{} has {} bytes; an evidence package has at most {} MiB",
                         flags.evidence_path, size, incident::kMaxEvidenceFileBytes >> 20)));
  }
  absl::StatusOr<std::string> bytes = ReadFile(flags.evidence_path);
  if (!bytes.ok()) return Error(io, bytes.status());
  absl::StatusOr<Json> package = incident::ParseEvidenceFile(*bytes);
  if (absl::IsOutOfRange(package.status())) return Error(io, package.status());
  auto failed = [&](const absl::Status& status) {
    fmt::print(io.err, "custos: evidence verification FAILED: {}\n", Message(status));
    return kExitFailed;
  };
  if (!package.ok()) return failed(package.status());

  if (trusted.empty()) {
    // Trusting the file's own keys proves only that the file is consistent with itself: anyone
    // can sign a checkpoint with a key of their own. Say so, every time.
    const Json& file = *package;
    if (!file.contains("verifierKeys") || !file["verifierKeys"].is_array() ||
        file["verifierKeys"].empty()) {
      return failed(absl::InvalidArgumentError(
          "the package names no verifier key; give the log's key with --vkey"));
    }
    const Json& keys = file["verifierKeys"];
    std::vector<std::string> vkeys;
    for (const Json& key : keys) {
      absl::StatusOr<audit::note::VerifierKey> parsed =
          key.is_string() ? audit::note::ParseVerifierKey(key.get<std::string>())
                          : absl::InvalidArgumentError("not a string");
      if (!parsed.ok()) {
        return failed(absl::DataLossError(fmt::format(
            "a key in the package's verifierKeys is malformed: {}", Message(parsed.status()))));
      }
      vkeys.push_back(key.get<std::string>());
      trusted.push_back(*std::move(parsed));
    }
    const std::string origin = file.contains("origin") && file["origin"].is_string()
                                   ? file["origin"].get<std::string>()
                                   : std::string();
    fmt::print(io.err,
               "custos: no --vkey given, so the checkpoint's key was taken from the evidence file "
               "itself:\n");
    for (const std::string& vkey : vkeys) fmt::print(io.err, "  {}\n", vkey);
    fmt::print(io.err,
               "custos: compare it with the key published at {} (or pass --vkey): a file signed "
               "with someone else's key verifies against that key too\n",
               origin.empty() ? std::string("/.well-known/custos/log-keys") : LogKeysUrl(origin));
  }

  incident::EvidenceSummary summary;
  if (absl::Status st = incident::VerifyEvidence(*package, trusted, &summary); !st.ok()) {
    return failed(st);
  }
  if (!flags.origin.empty() && summary.origin != flags.origin) {
    return failed(absl::DataLossError(
        fmt::format("the package is for the log '{}', not '{}'", summary.origin, flags.origin)));
  }
  std::string window;
  if (summary.first_event && summary.last_event) {
    window = fmt::format(" from {} to {}", FormatRfc3339(*summary.first_event),
                         FormatRfc3339(*summary.last_event));
  }
  fmt::print(io.out,
             "verified evidence for tenant {} ({}), incident {}: {} events{}, tree size {}, "
             "checkpoint origin {}, signed by {}\n",
             summary.tenant_name, summary.tenant_id, summary.incident_id, summary.event_count,
             window, summary.tree_size, summary.origin,
             fmt::format("{}", fmt::join(summary.signed_by, ", ")));
  return kExitOk;
}

}  // namespace

absl::StatusOr<std::string> DefaultStatePath(std::string_view origin) {
  std::string base;
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg != nullptr && xdg[0] == '/') {
    base = xdg;
  } else if (const char* home = std::getenv("HOME"); home != nullptr && home[0] != '\0') {
    base = std::string(home) + "/.local/state";
  } else {
    return absl::FailedPreconditionError(
        "neither XDG_STATE_HOME nor HOME is set: give the state file with --state");
  }
  std::string name(origin);
  for (char& c : name) {
    if (c == '/' || c == ':') c = '_';
  }
  return fmt::format("{}/custos/{}.json", base, name);
}

// The origin a log served at `url` must have: the URL without its scheme, query and final
// "/log" (C2SP tlog-tiles: the origin is the log's prefix without the scheme).
std::string ExpectedOrigin(std::string_view url) {
  url.remove_prefix(url.find("://") + 3);
  url = url.substr(0, url.find_first_of("?#"));
  while (url.ends_with('/')) url.remove_suffix(1);
  if (url.ends_with("/log")) url.remove_suffix(4);
  return std::string(url);
}

int LogVerify(const LogVerifyFlags& flags, const LogCommandIo& io) {
  if (!flags.evidence_path.empty()) return VerifyEvidenceFile(flags, io);
  if (flags.source.empty()) {
    return Error(io, absl::InvalidArgumentError(
                         "give a log source (a URL or a directory from `custos log export`) or "
                         "--evidence FILE"));
  }
  absl::StatusOr<std::unique_ptr<audit::LogSource>> opened = OpenSource(flags.source, flags.token);
  if (!opened.ok()) return Error(io, opened.status());
  PinnedCheckpointSource source(**opened);

  // A checkpoint of another log (another tenant's, or one signed under a new name) must not
  // pass for this one: it would be checked against another state file, or none.
  const std::string expected_origin =
      !flags.origin.empty() ? flags.origin
                            : (IsUrl(flags.source) ? ExpectedOrigin(flags.source) : std::string());
  if (!expected_origin.empty()) {
    absl::StatusOr<std::string> note = source.Fetch("checkpoint");
    if (note.ok() && OriginOf(*note) != expected_origin) {
      fmt::print(io.err,
                 "custos: log verification FAILED: the checkpoint is for the log '{}', but {} "
                 "is the log '{}' (pass --origin if the server's public URL differs from "
                 "the one you use)\n",
                 OriginOf(*note), flags.source, expected_origin);
      return kExitFailed;
    }
  }

  std::string state_path = flags.state_path;
  if (state_path.empty()) {
    absl::StatusOr<std::string> note = source.Fetch("checkpoint");
    if (absl::IsNotFound(note.status())) {
      return Error(io, absl::NotFoundError(fmt::format(
                           "the log at {} has no checkpoint (empty log, or wrong source?): {}",
                           flags.source, Message(note.status()))));
    }
    if (!note.ok()) return Error(io, note.status());
    absl::StatusOr<std::string> path = DefaultStatePath(OriginOf(*note));
    if (!path.ok()) return Error(io, path.status());
    state_path = *path;
  }

  std::optional<audit::VerifyState> previous;
  absl::StatusOr<std::string> state_text = ReadFile(state_path);
  if (state_text.ok()) {
    absl::StatusOr<audit::VerifyState> state = audit::ParseVerifyState(*state_text);
    if (!state.ok()) {
      return Error(io, absl::InvalidArgumentError(fmt::format(
                           "state file {} is not usable: {} (move it away to start over)",
                           state_path, Message(state.status()))));
    }
    previous = *std::move(state);
  } else if (!absl::IsNotFound(state_text.status())) {
    return Error(io, state_text.status());
  }

  audit::VerifyOptions options;
  options.trusted_keys = flags.vkeys;
  options.incremental = flags.incremental;
  options.clock = io.clock;
  Progress progress(io, "verified");
  absl::StatusOr<audit::VerifyReport> report =
      audit::VerifyLog(source, options, previous,
                       [&](uint64_t done, uint64_t total) { progress.Report(done, total); });
  if (!report.ok()) {
    return Failure(io, report.status(), "log verification",
                   fmt::format(" (state file {} {})", state_path,
                               previous ? "left unchanged" : "not written"));
  }

  PrintTrustOnFirstUse(io, *report, fmt::format("they are kept in {}", state_path));
  if (absl::Status st = WriteStateFile(state_path, audit::FormatVerifyState(report->state));
      !st.ok()) {
    return Error(
        io, absl::Status(st.code(),
                         "the log verified, but the state could not be saved: " + Message(st)));
  }

  const audit::Checkpoint& cp = report->checkpoint;
  std::string checked =
      report->first_checked == 0
          ? fmt::format("all {} entries checked", cp.size)
          : fmt::format("entries {} to {} checked", report->first_checked, cp.size - 1);
  if (report->first_checked == cp.size) checked = "no new entries";
  std::string consistent = previous
                               ? fmt::format("; consistent with size {} verified {}",
                                             previous->size, FormatRfc3339(previous->verified_at))
                               : std::string();
  fmt::print(io.out, "verified {}: size {}, root {}, signed by {}; {}{}; state saved to {}\n",
             cp.origin, cp.size, crypto::Base64Encode(cp.root_hash), Signers(*report), checked,
             consistent, state_path);
  return kExitOk;
}

int LogExport(const LogExportFlags& flags, const LogCommandIo& io) {
  const fs::path out(flags.out_dir);
  std::error_code ec;
  if (fs::exists(out, ec) && !(fs::is_directory(out, ec) && fs::is_empty(out, ec))) {
    return Error(io, absl::InvalidArgumentError(
                         fmt::format("{} exists and is not an empty directory", flags.out_dir)));
  }
  absl::StatusOr<std::unique_ptr<audit::LogSource>> opened = OpenSource(flags.source, flags.token);
  if (!opened.ok()) return Error(io, opened.status());
  audit::LogSource& source = **opened;

  absl::StatusOr<std::string> note = source.Fetch("checkpoint");
  if (!note.ok()) return Error(io, note.status());
  const size_t split = note->rfind("\n\n");
  absl::StatusOr<audit::Checkpoint> unverified =
      audit::ParseCheckpoint(split == std::string::npos ? *note : note->substr(0, split + 1));
  if (!unverified.ok()) {
    return Failure(io,
                   audit::LogVerificationFailure("the checkpoint is malformed: " +
                                                 Message(unverified.status())),
                   "export");
  }
  const uint64_t size = unverified->size;
  if (absl::Status st = WriteFile(out / "checkpoint", *note); !st.ok()) return Error(io, st);

  absl::StatusOr<std::string> keys = source.Fetch("keys");
  if (keys.ok()) {
    if (absl::Status st = WriteFile(out / "keys", *keys); !st.ok()) return Error(io, st);
  } else if (!absl::IsNotFound(keys.status())) {
    return Error(io, keys.status());
  }

  // Every tile of every level, so that the export also answers proofs offline; the entry
  // bundles beside level 0.
  Progress progress(io, "downloaded");
  uint64_t tile_count = 0;
  uint64_t bundle_count = 0;
  int levels = 0;
  for (int level = 0; level < 8 && (size >> (audit::tiles::kTileHeight * level)) > 0; ++level) {
    ++levels;
    for (uint64_t index = 0;; ++index) {
      const int width = audit::tiles::TileWidthAt(size, level, index);
      if (width == 0) break;
      const std::string path = audit::tiles::TilePath(level, index, width);
      absl::StatusOr<std::string> tile = audit::FetchTile(source, level, index, width);
      if (absl::IsNotFound(tile.status())) {
        tile = audit::LogVerificationFailure(
            fmt::format("the log does not serve {}: {}", path, Message(tile.status())));
      }
      if (!tile.ok()) return Failure(io, tile.status(), "export");
      if (absl::Status st = WriteFile(out / path, *tile); !st.ok()) return Error(io, st);
      ++tile_count;
      if (level != 0) continue;

      const std::string bundle_path = audit::tiles::EntriesPath(index, width);
      absl::StatusOr<std::string> bundle = audit::FetchEntryBundle(source, index, width);
      if (absl::IsNotFound(bundle.status())) {
        bundle = audit::LogVerificationFailure(
            fmt::format("the log does not serve {}: {}", bundle_path, Message(bundle.status())));
      }
      if (!bundle.ok()) return Failure(io, bundle.status(), "export");
      if (absl::Status st = WriteFile(out / bundle_path, *bundle); !st.ok()) return Error(io, st);
      ++bundle_count;
      progress.Report(index * audit::tiles::kTileWidth + width, size);
    }
  }

  DirectoryLogSource exported(out);
  audit::VerifyOptions options;
  options.trusted_keys = flags.vkeys;
  options.clock = io.clock;
  Progress verify_progress(io, "verified");
  absl::StatusOr<audit::VerifyReport> report =
      audit::VerifyLog(exported, options, std::nullopt,
                       [&](uint64_t done, uint64_t total) { verify_progress.Report(done, total); });
  if (!report.ok()) {
    return Failure(io, report.status(), "verification of the export",
                   fmt::format(" (the files are in {})", flags.out_dir));
  }
  PrintTrustOnFirstUse(io, *report, "no state file was written");
  fmt::print(io.out,
             "exported {} (size {}) to {}: checkpoint, {}, {} entry bundles in tile/entries/, "
             "{} tiles over {} levels in tile/; verified: root {}, signed by {}\n",
             report->checkpoint.origin, report->checkpoint.size, flags.out_dir,
             keys.ok() ? "keys" : "no keys (the log serves none)", bundle_count, tile_count, levels,
             crypto::Base64Encode(report->checkpoint.root_hash), Signers(*report));
  return kExitOk;
}

int LogVerifyProof(const LogVerifyProofFlags& flags, const LogCommandIo& io) {
  if (flags.vkeys.empty()) {
    return Error(io, absl::InvalidArgumentError("give the log's key with --vkey"));
  }
  absl::StatusOr<std::string> proof = ReadFile(flags.proof_path);
  if (!proof.ok()) return Error(io, proof.status());
  std::optional<std::string> entry;
  if (!flags.entry_path.empty()) {
    absl::StatusOr<std::string> data = ReadFile(flags.entry_path);
    if (!data.ok()) return Error(io, data.status());
    entry = *std::move(data);
  }
  absl::StatusOr<audit::VerifiedTlogProof> verified =
      audit::VerifyTlogProof(*proof, entry, flags.vkeys);
  if (!verified.ok()) return Failure(io, verified.status(), "proof verification");
  fmt::print(io.out, "verified: entry {} is in {} at tree size {} (root {}), signed by {}\n",
             verified->index, verified->checkpoint.origin, verified->checkpoint.size,
             crypto::Base64Encode(verified->checkpoint.root_hash),
             fmt::format("{}", fmt::join(verified->signed_by, ", ")));
  return kExitOk;
}

}  // namespace custos::cli
