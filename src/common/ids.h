#pragma once

// Strongly typed identifiers. Each is a thin wrapper over the string form that the API shows
// (Okta-style: a three-character prefix and 17 base62 characters, e.g. "00u1a2b3c4d5e6f7g8h").
// Distinct types keep a UserId from being passed where a TenantId is expected.

#include <compare>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace custos {

template <typename Tag>
class Id {
 public:
  Id() = default;
  explicit Id(std::string value) : value_(std::move(value)) {}

  const std::string& value() const { return value_; }
  bool empty() const { return value_.empty(); }

  friend auto operator<=>(const Id&, const Id&) = default;
  friend bool operator==(const Id&, const Id&) = default;

  template <typename H>
  friend H AbslHashValue(H h, const Id& id) {
    return H::combine(std::move(h), id.value_);
  }

 private:
  std::string value_;
};

using TenantId = Id<struct TenantIdTag>;
using UserId = Id<struct UserIdTag>;
using GroupId = Id<struct GroupIdTag>;
using FactorId = Id<struct FactorIdTag>;
using SessionId = Id<struct SessionIdTag>;
using ApiTokenId = Id<struct ApiTokenIdTag>;

// Id prefixes, as shown in the API.
inline constexpr std::string_view kTenantIdPrefix = "00o";
inline constexpr std::string_view kUserIdPrefix = "00u";
inline constexpr std::string_view kGroupIdPrefix = "00g";
inline constexpr std::string_view kFactorIdPrefix = "uft";
inline constexpr std::string_view kSessionIdPrefix = "102";
inline constexpr std::string_view kApiTokenIdPrefix = "00T";
inline constexpr std::string_view kAuthnTransactionIdPrefix = "00a";

}  // namespace custos

template <typename Tag>
struct std::hash<custos::Id<Tag>> {
  size_t operator()(const custos::Id<Tag>& id) const {
    return std::hash<std::string>()(id.value());
  }
};
