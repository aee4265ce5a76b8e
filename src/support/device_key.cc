#include "support/device_key.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "common/status_macros.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "crypto/p256.h"

namespace custos::support {
namespace {

namespace fs = std::filesystem;

// A P-256 PKCS#8 PEM is about 240 bytes; anything much larger is not our key.
constexpr size_t kMaxKeyFileSize = 16 * 1024;
// Posture strings longer than this are refused by ParsePosture (support/posture.h).
constexpr size_t kMaxPostureString = 200;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Bio = std::unique_ptr<BIO, BioFree>;

absl::Status ErrnoError(std::string_view what, const std::string& path, int err) {
  std::string message = fmt::format("{} {}: {}", what, path, std::strerror(err));
  return err == ENOENT ? absl::NotFoundError(message) : absl::InternalError(message);
}

// The oldest error OpenSSL queued, for a message; the queue is emptied so that a later call does
// not report a stale error.
std::string OpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

// Wipes key material from memory when it goes out of scope.
class Scrubbed {
 public:
  explicit Scrubbed(std::string& text) : text_(text) {}
  ~Scrubbed() { OPENSSL_cleanse(text_.data(), text_.size()); }

 private:
  std::string& text_;
};

absl::StatusOr<Json> PublicJwkOf(EVP_PKEY* pkey) {
  ASSIGN_OR_RETURN(crypto::p256::Coordinates point, crypto::p256::PublicCoordinates(pkey));
  return Json{{"kty", "EC"},
              {"crv", "P-256"},
              {"x", crypto::Base64UrlEncode(point.x)},
              {"y", crypto::Base64UrlEncode(point.y)}};
}

absl::StatusOr<std::string> PrivateKeyPem(EVP_PKEY* pkey) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), pkey, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return absl::InternalError("cannot encode the key: " + OpenSslError());
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  if (size <= 0 || data == nullptr) return absl::InternalError("cannot encode the key");
  return std::string(data, static_cast<size_t>(size));
}

// Creates each missing directory of `dir` with mode 0700: the key's directory is nobody else's
// business.
absl::Status MakePrivateDirectories(const fs::path& dir) {
  if (dir.empty()) return absl::OkStatus();
  fs::path partial;
  for (const fs::path& part : dir) {
    partial /= part;
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoError("cannot create directory", partial.string(), errno);
    }
  }
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(fmt::format("{} is not a directory", dir.string()));
  }
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("cannot write", path, errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Writes `data` to a new file `path` with mode 0600 in one step, refusing to replace one that
// exists. The file is written and synced under a temporary name and then hard-linked to `path`:
// link(2) fails with EEXIST instead of replacing (rename would replace silently), and a reader
// or a crash never sees a partial key.
absl::Status WriteNewPrivateFile(const std::string& path, std::string_view data) {
  std::string temp = path + ".tmp-XXXXXX";
  const int fd = ::mkostemp(temp.data(), O_CLOEXEC);  // mode 0600, O_EXCL
  if (fd < 0) return ErrnoError("cannot create", temp, errno);
  absl::Status st = ::fchmod(fd, 0600) == 0 ? absl::OkStatus()
                                            : ErrnoError("cannot set the mode of", temp, errno);
  if (st.ok()) st = WriteAll(fd, data, temp);
  if (st.ok() && ::fsync(fd) != 0) st = ErrnoError("cannot sync", temp, errno);
  if (::close(fd) != 0 && st.ok()) st = ErrnoError("cannot write", temp, errno);
  if (st.ok() && ::link(temp.c_str(), path.c_str()) != 0) {
    st = errno == EEXIST
             ? absl::AlreadyExistsError(fmt::format("{} exists; a key is never overwritten", path))
             : ErrnoError("cannot create", path, errno);
  }
  ::unlink(temp.c_str());
  RETURN_IF_ERROR(st);
  const fs::path p(path);
  const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  if (const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return absl::OkStatus();
}

// Reads a key file after checking that only its owner can reach it.
absl::StatusOr<std::string> ReadPrivateFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoError("cannot stat", path, err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(fmt::format("{} is not a regular file", path));
  }
  if ((st.st_mode & 0077) != 0) {
    ::close(fd);
    return absl::FailedPreconditionError(
        fmt::format("{} is accessible by group or others (mode {:04o}); a key others can read "
                    "is not used: run chmod 600 {} if the key is still trusted",
                    path, st.st_mode & 07777, path));
  }
  if (static_cast<size_t>(st.st_size) > kMaxKeyFileSize) {
    ::close(fd);
    return absl::InvalidArgumentError(fmt::format("{} is too large to be a device key", path));
  }
  std::string data;
  char buffer[4096];
  while (data.size() <= kMaxKeyFileSize) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      OPENSSL_cleanse(buffer, sizeof buffer);
      return ErrnoError("cannot read", path, err);
    }
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  OPENSSL_cleanse(buffer, sizeof buffer);
  ::close(fd);
  return data;
}

std::string StripQueryAndFragment(std::string_view url) {
  return std::string(url.substr(0, url.find_first_of("?#")));
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// Cuts `text` to at most `limit` bytes without splitting a UTF-8 sequence.
std::string Truncated(std::string text, size_t limit) {
  if (text.size() <= limit) return text;
  size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
  return text;
}

std::optional<std::string> ReadSmallFile(const fs::path& path, size_t limit = 1 << 20) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string data;
  char buffer[8192];
  while (data.size() < limit) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

// The value of an os-release assignment: shell-like, optionally in single or double quotes
// (os-release(5)); inside double quotes a backslash escapes the next character.
std::string Unquote(std::string_view value) {
  if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'') {
    return std::string(value.substr(1, value.size() - 2));
  }
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    value = value.substr(1, value.size() - 2);
    std::string out;
    for (size_t i = 0; i < value.size(); ++i) {
      if (value[i] == '\\' && i + 1 < value.size()) ++i;
      out.push_back(value[i]);
    }
    return out;
  }
  return std::string(value);
}

void ReadOsRelease(const std::string& root, Posture& posture) {
  std::optional<std::string> text = ReadSmallFile(root + "/etc/os-release");
  if (!text) text = ReadSmallFile(root + "/usr/lib/os-release");
  // os-release(5): NAME defaults to "Linux"; VERSION_ID is optional (rolling releases).
  std::string name = "Linux";
  std::string version;
  if (text) {
    std::string_view rest = *text;
    while (!rest.empty()) {
      const size_t eol = rest.find('\n');
      const std::string_view line = Trim(rest.substr(0, eol));
      rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
      const size_t eq = line.find('=');
      if (line.empty() || line.front() == '#' || eq == std::string_view::npos) continue;
      const std::string_view key = line.substr(0, eq);
      if (key == "NAME") name = Unquote(line.substr(eq + 1));
      if (key == "VERSION_ID") version = Unquote(line.substr(eq + 1));
    }
  }
  posture.os_name = Truncated(std::move(name), kMaxPostureString);
  posture.os_version = Truncated(std::move(version), kMaxPostureString);
}

// True when the block device at `dev_dir` (a sysfs device directory) is a dm-crypt target or
// is built on one: with LVM on LUKS the root volume is an LVM device whose slave is the crypt
// device.
bool IsOnDmCrypt(const fs::path& dev_dir, int depth = 0) {
  if (depth > 8) return false;
  if (std::optional<std::string> uuid = ReadSmallFile(dev_dir / "dm" / "uuid", 4096)) {
    if (uuid->starts_with("CRYPT-")) return true;
  }
  std::error_code ec;
  for (fs::directory_iterator it(dev_dir / "slaves", ec), end; !ec && it != end; it.increment(ec)) {
    if (IsOnDmCrypt(it->path(), depth + 1)) return true;
  }
  return false;
}

// The sysfs directory of the block device mounted at "/", found in mountinfo (proc(5)): by its
// device number, or, for file systems with anonymous device numbers (btrfs), by its source.
std::optional<fs::path> RootBlockDevice(const std::string& root) {
  const std::optional<std::string> mountinfo = ReadSmallFile(root + "/proc/self/mountinfo");
  if (!mountinfo) return std::nullopt;
  std::string device_number;
  std::string source;
  std::string_view rest = *mountinfo;
  while (!rest.empty()) {
    const size_t eol = rest.find('\n');
    const std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    std::vector<std::string_view> fields;
    for (size_t start = 0; start < line.size();) {
      const size_t space = line.find(' ', start);
      const size_t stop = space == std::string_view::npos ? line.size() : space;
      if (stop > start) fields.push_back(line.substr(start, stop - start));
      start = stop + 1;
    }
    // id parent major:minor root mount-point options [optional...] - fstype source options
    if (fields.size() < 5 || fields[4] != "/") continue;
    size_t separator = 5;
    while (separator < fields.size() && fields[separator] != "-") ++separator;
    // The last mount on "/" is the one in effect.
    device_number = std::string(fields[2]);
    source = separator + 2 < fields.size() ? std::string(fields[separator + 2]) : "";
  }
  if (device_number.empty()) return std::nullopt;
  std::error_code ec;
  if (!device_number.starts_with("0:")) {
    const fs::path dir = fs::path(root + "/sys/dev/block") / device_number;
    if (fs::is_directory(dir, ec)) return dir;
  }
  if (source.starts_with("/dev/mapper/")) {
    const std::string name = source.substr(std::string_view("/dev/mapper/").size());
    for (fs::directory_iterator it(root + "/sys/class/block", ec), end; !ec && it != end;
         it.increment(ec)) {
      std::optional<std::string> dm_name = ReadSmallFile(it->path() / "dm" / "name", 4096);
      if (dm_name && Trim(*dm_name) == name) return it->path();
    }
  } else if (source.starts_with("/dev/")) {
    const fs::path dir = fs::path(root + "/sys/class/block") / fs::path(source).filename();
    if (fs::is_directory(dir, ec)) return dir;
  }
  return std::nullopt;
}

std::set<std::string, std::less<>> ProcessNames(std::string_view list) {
  std::set<std::string, std::less<>> names;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view name = Trim(list.substr(0, comma));
    if (!name.empty()) names.emplace(name);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
  return names;
}

// The kernel keeps only the first 15 bytes of a process name in comm.
constexpr size_t kCommLength = 15;

bool ProcessRuns(const std::string& root, const std::set<std::string, std::less<>>& names) {
  if (names.empty()) return false;
  std::error_code ec;
  for (fs::directory_iterator it(root + "/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string pid = it->path().filename().string();
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (std::optional<std::string> comm = ReadSmallFile(it->path() / "comm", 256)) {
      const std::string_view c = Trim(*comm);
      for (const std::string& name : names) {
        if (c == name || (c.size() == kCommLength && name.starts_with(c))) return true;
      }
    }
    if (std::optional<std::string> cmdline = ReadSmallFile(it->path() / "cmdline", 4096)) {
      const std::string argv0(cmdline->c_str());  // up to the first NUL
      if (!argv0.empty() && names.contains(fs::path(argv0).filename().string())) return true;
    }
  }
  return false;
}

std::optional<std::string> LastPatchDate(const std::string& root) {
  std::optional<time_t> newest;
  for (const char* file : {"/var/lib/dpkg/status", "/var/log/dpkg.log"}) {
    struct stat st;
    if (::stat((root + file).c_str(), &st) == 0 && (!newest || st.st_mtime > *newest)) {
      newest = st.st_mtime;
    }
  }
  if (!newest) return std::nullopt;
  return absl::FormatTime("%Y-%m-%d", absl::FromTimeT(*newest), absl::UTCTimeZone());
}

}  // namespace

struct FileDeviceKey::Impl {
  Pkey pkey;
  Json jwk;
};

FileDeviceKey::FileDeviceKey(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FileDeviceKey::~FileDeviceKey() = default;

absl::StatusOr<std::unique_ptr<FileDeviceKey>> FileDeviceKey::Create(const std::string& path) {
  const fs::path p(path);
  RETURN_IF_ERROR(MakePrivateDirectories(p.parent_path()));
  // Checked before the key is made only for a clear message; the link in WriteNewPrivateFile is
  // what guarantees that no key is replaced.
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(fmt::format("{} exists; a key is never overwritten", path));
  }
  Pkey pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!pkey) return absl::InternalError("cannot generate a P-256 key: " + OpenSslError());
  ASSIGN_OR_RETURN(std::string pem, PrivateKeyPem(pkey.get()));
  const Scrubbed scrub(pem);
  RETURN_IF_ERROR(WriteNewPrivateFile(path, pem));
  ASSIGN_OR_RETURN(Json jwk, PublicJwkOf(pkey.get()));
  return std::unique_ptr<FileDeviceKey>(
      new FileDeviceKey(std::make_unique<Impl>(Impl{std::move(pkey), std::move(jwk)})));
}

absl::StatusOr<std::unique_ptr<FileDeviceKey>> FileDeviceKey::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem, ReadPrivateFile(path));
  const Scrubbed scrub(pem);
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return absl::InternalError("cannot read the key: " + OpenSslError());
  Pkey pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!pkey) {
    return absl::InvalidArgumentError(
        fmt::format("{} does not hold a PEM private key (PKCS#8)", path));
  }
  if (!crypto::p256::IsP256(pkey.get())) {
    return absl::InvalidArgumentError(fmt::format("{} holds a key that is not P-256", path));
  }
  ASSIGN_OR_RETURN(Json jwk, PublicJwkOf(pkey.get()));
  return std::unique_ptr<FileDeviceKey>(
      new FileDeviceKey(std::make_unique<Impl>(Impl{std::move(pkey), std::move(jwk)})));
}

Json FileDeviceKey::PublicJwk() const { return impl_->jwk; }

std::string FileDeviceKey::Algorithm() const { return "ES256"; }

absl::StatusOr<std::string> FileDeviceKey::SignJws(const Json& header, const Json& payload) const {
  Json protected_header = header;
  protected_header["alg"] = Algorithm();
  std::string signing_input = crypto::Base64UrlEncode(DumpJson(protected_header)) + "." +
                              crypto::Base64UrlEncode(DumpJson(payload));

  ASSIGN_OR_RETURN(std::string raw, crypto::p256::SignEs256(impl_->pkey.get(), signing_input));
  signing_input += ".";
  signing_input += crypto::Base64UrlEncode(raw);
  return signing_input;
}

absl::StatusOr<std::string> MakeDpopProof(const DeviceKey& key, std::string_view method,
                                          std::string_view url,
                                          std::optional<std::string_view> access_token,
                                          absl::Time now, crypto::Random& random) {
  const Json header = {{"typ", "dpop+jwt"}, {"jwk", key.PublicJwk()}};
  Json claims = {{"jti", crypto::Base64UrlEncode(random.Bytes(16))},
                 {"htm", std::string(method)},
                 {"htu", StripQueryAndFragment(url)},
                 {"iat", absl::ToUnixSeconds(now)}};
  if (access_token) {
    claims["ath"] = crypto::Base64UrlEncode(crypto::Sha256(*access_token));
  }
  return key.SignJws(header, claims);
}

absl::StatusOr<std::string> MakePostureReport(const DeviceKey& key, std::string_view device_id,
                                              const Posture& posture, absl::Time now,
                                              crypto::Random& random) {
  const Json header = {{"typ", std::string(kPostureJwtType)}};
  return key.SignJws(header, PostureReportClaims(device_id, posture, now,
                                                 crypto::Base64UrlEncode(random.Bytes(16))));
}

Posture CollectPosture(std::string_view edr_process_names, const std::string& root) {
  Posture posture;
  ReadOsRelease(root, posture);
  if (std::optional<fs::path> device = RootBlockDevice(root)) {
    posture.disk_encrypted = IsOnDmCrypt(*device);
  }
  posture.screen_lock = false;
  posture.edr_running = ProcessRuns(root, ProcessNames(edr_process_names));
  posture.last_patch = LastPatchDate(root);
  return posture;
}

absl::Status MergePosture(Posture& posture, const Json& overrides) {
  if (!overrides.is_object()) {
    return absl::InvalidArgumentError("posture overrides must be a JSON object");
  }
  // The merged object goes through ParsePosture, so an override is held to the same rules
  // (types, dates, lengths) as a report the server receives.
  Json merged = PostureToJson(posture);
  for (const auto& [name, value] : overrides.items()) {
    if (!merged.contains(name)) {
      return absl::InvalidArgumentError(
          fmt::format("unknown posture member \"{}\"", Truncated(name, 64)));
    }
    merged[name] = value;
  }
  ASSIGN_OR_RETURN(Posture parsed, ParsePosture(merged));
  posture = std::move(parsed);
  return absl::OkStatus();
}

}  // namespace custos::support
