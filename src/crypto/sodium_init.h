#pragma once

// Internal to the crypto module.

namespace custos::crypto::internal {

// Calls sodium_init() once per process (thread-safe); aborts if libsodium cannot start, since no
// random number or hash could be trusted after that.
void EnsureSodium();

}  // namespace custos::crypto::internal
