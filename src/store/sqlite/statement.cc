#include "store/sqlite/statement.h"

#include <limits>

namespace custos::store::sqlite {

absl::Status ErrorFromSqlite(sqlite3* db, int rc, std::string_view what) {
  switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return absl::AlreadyExistsError(fmt::format("{}: {}", what, sqlite3_errmsg(db)));
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return absl::NotFoundError(fmt::format("{}: refers to a row that does not exist", what));
    default:
      break;
  }
  if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
    // Another process held the write lock past the busy timeout: worth a retry.
    return absl::UnavailableError(fmt::format("{}: {}", what, sqlite3_errmsg(db)));
  }
  if ((rc & 0xff) == SQLITE_READONLY) {
    return absl::FailedPreconditionError(
        fmt::format("{}: cannot write in a read transaction ({})", what, sqlite3_errmsg(db)));
  }
  return absl::InternalError(fmt::format("{}: {} (sqlite error {})", what, sqlite3_errmsg(db), rc));
}

int64_t CeilMicros(absl::Time t) {
  const int64_t floor = absl::ToUnixMicros(t);
  if (floor != std::numeric_limits<int64_t>::max() && absl::FromUnixMicros(floor) < t) {
    return floor + 1;
  }
  return floor;
}

}  // namespace custos::store::sqlite
