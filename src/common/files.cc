#include "common/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

namespace custos {
namespace {

absl::Status ErrnoError(std::string_view what, const std::string& path, int err) {
  std::string message = fmt::format("{} {}: {}", what, path, std::strerror(err));
  return err == ENOENT ? absl::NotFoundError(message) : absl::InternalError(message);
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

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, std::string_view data) {
  const std::string temp = fmt::format("{}.tmp-{}", path, ::getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("cannot create", temp, errno);
  absl::Status st = WriteAll(fd, data, temp);
  if (st.ok() && ::fsync(fd) != 0) st = ErrnoError("cannot sync", temp, errno);
  if (::close(fd) != 0 && st.ok()) st = ErrnoError("cannot write", temp, errno);
  if (st.ok() && std::rename(temp.c_str(), path.c_str()) != 0) {
    st = ErrnoError("cannot replace", path, errno);
  }
  if (!st.ok()) {
    ::unlink(temp.c_str());
    return st;
  }
  // Make the rename itself durable.
  const std::filesystem::path p(path);
  const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  if (const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return absl::OkStatus();
}

}  // namespace custos
