#pragma once

// For the tests of this folder: the DPoP and JWK vectors in tests/testdata/dpop (see its README).

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/json.h"

namespace custos::support {

// CUSTOS_SOURCE_DIR (set by ctest), else the tree this file was compiled from.
inline std::filesystem::path SourceDir() {
  if (const char* src = std::getenv("CUSTOS_SOURCE_DIR"); src != nullptr) return src;
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
}

// tests/testdata/dpop/<name> parsed; a discarded value when it is missing or not JSON.
inline Json ReadJson(const std::string& name) {
  std::ifstream in(SourceDir() / "tests/testdata/dpop" / name);
  std::stringstream text;
  text << in.rdbuf();
  return Json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
}

}  // namespace custos::support
