#pragma once

// RETURN_IF_ERROR and ASSIGN_OR_RETURN, which Debian's abseil (20220623) does not ship.
//
//   RETURN_IF_ERROR(store.Write(...));
//   ASSIGN_OR_RETURN(UserRecord user, users.Get(tenant, id));

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CUSTOS_STATUS_CONCAT_INNER(a, b) a##b
#define CUSTOS_STATUS_CONCAT(a, b) CUSTOS_STATUS_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status custos_status_ = (expr);          \
    if (!custos_status_.ok()) return custos_status_; \
  } while (false)

#define CUSTOS_ASSIGN_OR_RETURN_IMPL(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#define ASSIGN_OR_RETURN(lhs, rexpr) \
  CUSTOS_ASSIGN_OR_RETURN_IMPL(CUSTOS_STATUS_CONCAT(custos_statusor_, __LINE__), lhs, rexpr)
