# Turns data/common-passwords.txt into a C++ source with one string literal per entry, so the
# blocklist is part of the binary and nothing is read at run time.
#
#   cmake -DINPUT=<common-passwords.txt> -DOUTPUT=<common_passwords_data.cc> -P <this file>
#
# Lines starting with "#!comment:" and empty lines are dropped; every other line is an entry,
# byte for byte. The whole file is handled as one string (never as a CMake list), so entries
# with ';', '[' or ']' survive.
if(NOT INPUT OR NOT OUTPUT)
  message(FATAL_ERROR "usage: cmake -DINPUT=<list> -DOUTPUT=<source.cc> -P ${CMAKE_CURRENT_LIST_FILE}")
endif()

file(READ "${INPUT}" text)
string(REPLACE "\r" "" text "${text}")
string(APPEND text "\n")
string(REGEX REPLACE "#!comment:[^\n]*\n" "" text "${text}")
string(REGEX REPLACE "\n\n+" "\n" text "${text}")
string(REGEX REPLACE "^\n" "" text "${text}")
# C++ string literal escapes; '?' too, so no entry can form a trigraph.
string(REPLACE "\\" "\\\\" text "${text}")
string(REPLACE "\"" "\\\"" text "${text}")
string(REPLACE "?" "\\?" text "${text}")
string(REGEX REPLACE "\n$" "" text "${text}")
string(REPLACE "\n" "\",\n    \"" entries "${text}")

file(WRITE "${OUTPUT}.tmp" "// Generated from data/common-passwords.txt by embed_common_passwords.cmake. Do not edit.

#include \"authn/common_passwords.h\"

namespace custos::authn::internal {
namespace {

constexpr std::string_view kEntries[] = {
    \"${entries}\",
};

}  // namespace

std::span<const std::string_view> CommonPasswordEntries() { return kEntries; }

}  // namespace custos::authn::internal
")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
