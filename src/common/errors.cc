#include "common/errors.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace custos {
namespace {

constexpr char kCodeUrl[] = "custos/error-code";
constexpr char kCausesUrl[] = "custos/error-causes";
constexpr char kReasonUrl[] = "custos/error-reason";

}  // namespace

absl::Status ApiError(absl::StatusCode code, std::string_view error_code, std::string summary,
                      std::vector<std::string> causes) {
  absl::Status st(code, summary);
  st.SetPayload(kCodeUrl, absl::Cord(std::string(error_code)));
  if (!causes.empty()) st.SetPayload(kCausesUrl, absl::Cord(absl::StrJoin(causes, "\n")));
  return st;
}

absl::Status ValidationError(std::string summary, std::vector<std::string> causes) {
  return ApiError(absl::StatusCode::kInvalidArgument, kErrValidation, std::move(summary),
                  std::move(causes));
}

absl::Status NotFoundError(std::string what) {
  return ApiError(absl::StatusCode::kNotFound, kErrNotFound,
                  "Not found: Resource not found: " + what);
}

absl::Status WithReason(absl::Status status, std::string_view reason) {
  status.SetPayload(kReasonUrl, absl::Cord(std::string(reason)));
  return status;
}

std::string ReasonOf(const absl::Status& status) {
  auto p = status.GetPayload(kReasonUrl);
  return p ? std::string(*p) : std::string();
}

std::string ErrorCodeOf(const absl::Status& status) {
  auto p = status.GetPayload(kCodeUrl);
  return p ? std::string(*p) : std::string();
}

std::vector<std::string> ErrorCausesOf(const absl::Status& status) {
  auto p = status.GetPayload(kCausesUrl);
  if (!p) return {};
  return absl::StrSplit(std::string(*p), '\n');
}

}  // namespace custos
