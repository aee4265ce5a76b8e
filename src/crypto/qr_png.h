#pragma once

// Renders text as a QR code PNG (libqrencode for the code, zlib for the PNG stream), for TOTP
// enrolment.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace custos::crypto {

// Module size `scale` pixels, 4-module quiet zone, black on white, 1-bit greyscale PNG.
absl::StatusOr<std::string> QrPng(std::string_view text, int scale = 4);

}  // namespace custos::crypto
