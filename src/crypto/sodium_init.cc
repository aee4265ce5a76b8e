#include "crypto/sodium_init.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>

namespace custos::crypto::internal {

void EnsureSodium() {
  // A function-local static is initialised exactly once even under concurrent first calls.
  static const bool started = [] {
    if (sodium_init() < 0) {
      std::fputs("custos: libsodium failed to initialise\n", stderr);
      std::abort();
    }
    return true;
  }();
  (void)started;
}

}  // namespace custos::crypto::internal
