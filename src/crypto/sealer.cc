#include "crypto/sealer.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "absl/status/status.h"
#include "crypto/sodium_init.h"

namespace custos::crypto {
namespace {

constexpr unsigned char kKeyId = 1;
constexpr size_t kKeyBytes = crypto_aead_xchacha20poly1305_ietf_KEYBYTES;
constexpr size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
constexpr size_t kHeaderBytes = 1 + kNonceBytes;
static_assert(kKeyBytes == 32);

const unsigned char* Bytes(std::string_view s) {
  static const unsigned char kEmpty = 0;
  return s.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(s.data());
}

absl::Status SystemError(int err, std::string_view what, const std::string& path) {
  return absl::ErrnoToStatus(err, fmt::format("{} seal key file {}", what, path));
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

absl::StatusOr<std::string> ReadKey(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return SystemError(errno, "cannot stat", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        fmt::format("seal key file {} is not a regular file", path));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(
        fmt::format("seal key file {} has mode {:04o}; group and others must have no access "
                    "(chmod 600 {})",
                    path, st.st_mode & 07777, path));
  }
  if (st.st_size != static_cast<off_t>(kKeyBytes)) {
    return absl::FailedPreconditionError(fmt::format(
        "seal key file {} is {} bytes; a seal key is exactly {}", path, st.st_size, kKeyBytes));
  }
  std::string key(kKeyBytes, '\0');
  size_t got = 0;
  while (got < key.size()) {
    ssize_t n = ::read(fd, key.data() + got, key.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SystemError(errno, "cannot read", path);
    if (n == 0) {
      return absl::FailedPreconditionError(fmt::format("seal key file {} is truncated", path));
    }
    got += static_cast<size_t>(n);
  }
  return key;
}

// Makes each missing directory above `path` with mode 0700.
absl::Status MakeParentDirs(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::filesystem::path prefix;
  for (const auto& part : parent) {
    prefix /= part;
    struct stat st;
    if (::stat(prefix.c_str(), &st) == 0) continue;
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::ErrnoToStatus(
          errno,
          fmt::format("cannot create directory {} for seal key file {}", prefix.string(), path));
    }
  }
  return absl::OkStatus();
}

absl::Status SyncDir(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = ".";
  Fd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0 || ::fsync(dir.get()) != 0) {
    return SystemError(errno, "cannot sync the directory of", path);
  }
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SystemError(errno, "cannot write", path);
    done += static_cast<size_t>(n);
  }
  // Data sealed under this key becomes durable later; the key must be durable first.
  if (::fsync(fd) != 0) return SystemError(errno, "cannot sync", path);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Sealer>> Sealer::OpenOrCreate(const std::string& key_path) {
  internal::EnsureSodium();
  // Two rounds: if another process creates the file between our read and our create, read it.
  for (int round = 0; round < 2; ++round) {
    Fd in(::open(key_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (in.get() >= 0) {
      absl::StatusOr<std::string> key = ReadKey(in.get(), key_path);
      if (!key.ok()) return key.status();
      std::unique_ptr<Sealer> sealer(new Sealer(*std::move(key)));
      return sealer;
    }
    if (errno != ENOENT) return SystemError(errno, "cannot open", key_path);

    if (absl::Status st = MakeParentDirs(key_path); !st.ok()) return st;
    Fd out(::open(key_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (out.get() < 0) {
      if (errno == EEXIST) continue;
      return SystemError(errno, "cannot create", key_path);
    }
    std::string key(kKeyBytes, '\0');
    crypto_aead_xchacha20poly1305_ietf_keygen(reinterpret_cast<unsigned char*>(key.data()));
    if (absl::Status st = WriteAll(out.get(), key, key_path); !st.ok()) {
      // A short key file would be refused on every later start; leave none.
      ::unlink(key_path.c_str());
      sodium_memzero(key.data(), key.size());
      return st;
    }
    if (absl::Status st = SyncDir(key_path); !st.ok()) return st;
    return std::unique_ptr<Sealer>(new Sealer(std::move(key)));
  }
  return absl::UnavailableError(
      fmt::format("seal key file {} keeps appearing and vanishing", key_path));
}

std::unique_ptr<Sealer> Sealer::FromKey(std::string_view key32) {
  if (key32.size() != kKeyBytes) return nullptr;
  internal::EnsureSodium();
  return std::unique_ptr<Sealer>(new Sealer(std::string(key32)));
}

Sealer::~Sealer() { sodium_memzero(key_.data(), key_.size()); }

std::string Sealer::Seal(std::string_view plaintext, std::string_view associated_data) const {
  std::string sealed(kHeaderBytes + plaintext.size() + kTagBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(sealed.data());
  out[0] = kKeyId;
  randombytes_buf(out + 1, kNonceBytes);
  unsigned long long len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out + kHeaderBytes, &len, Bytes(plaintext),
                                             plaintext.size(), Bytes(associated_data),
                                             associated_data.size(), nullptr, out + 1, Bytes(key_));
  return sealed;
}

absl::StatusOr<std::string> Sealer::Open(std::string_view sealed,
                                         std::string_view associated_data) const {
  if (sealed.size() < kHeaderBytes + kTagBytes) {
    return absl::DataLossError("sealed value is truncated");
  }
  const unsigned char* in = Bytes(sealed);
  if (in[0] != kKeyId) {
    return absl::DataLossError(fmt::format("sealed value names unknown key id {}", in[0]));
  }
  std::string plaintext(sealed.size() - kHeaderBytes - kTagBytes, '\0');
  unsigned long long len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(plaintext.data()), &len, nullptr, in + kHeaderBytes,
          sealed.size() - kHeaderBytes, Bytes(associated_data), associated_data.size(), in + 1,
          Bytes(key_)) != 0) {
    return absl::DataLossError("sealed value failed authentication (altered, or other context)");
  }
  plaintext.resize(len);
  return plaintext;
}

}  // namespace custos::crypto
