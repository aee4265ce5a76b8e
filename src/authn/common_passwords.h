#pragma once

// Internal to the authn module: the password blocklist, compiled in from
// data/common-passwords.txt by embed_common_passwords.cmake. Use IsCommonPassword
// (password_policy.h) rather than this list.

#include <span>
#include <string_view>

namespace custos::authn::internal {

// Every entry of the list, as written (case preserved), in file order; comments dropped.
std::span<const std::string_view> CommonPasswordEntries();

}  // namespace custos::authn::internal
