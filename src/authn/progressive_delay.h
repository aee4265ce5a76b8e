#pragma once

// The progressive delay after failed sign-ins. Failures are counted per key (tenant and
// lower-cased username as typed), in memory, whether or not the username exists, so the delay
// says nothing about which usernames are real. The answer to an attempt is held back by
// DelayFor(key) as it was when the attempt began; successes are held back too, so that a
// client cannot stop waiting early and read a fast answer as a success.
//
//   consecutive failures before the attempt:  0-1   2      3      4    5    6    7+
//   delay:                                     0    250ms  500ms  1s   2s   4s   5s
//
// A key forgets its failures `kForgetAfter` after its last one, and after Reset. The map holds
// at most `max_keys` keys; when full it first drops forgotten keys, then the least recently
// failed ones. That bound makes the delay best effort under a flood of distinct usernames;
// the persistent lockout (users.failed_sign_ins) is what caps guessing for a real user.
//
// Thread-safe.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/ids.h"

namespace custos::authn {

class ProgressiveDelay {
 public:
  static constexpr int kFreeFailures = 2;
  static constexpr absl::Duration kFirstDelay = absl::Milliseconds(250);
  static constexpr absl::Duration kMaxDelay = absl::Seconds(5);
  static constexpr absl::Duration kForgetAfter = absl::Minutes(15);
  static constexpr size_t kDefaultMaxKeys = 100'000;

  explicit ProgressiveDelay(const Clock& clock, size_t max_keys = kDefaultMaxKeys);

  // The key for a username as typed; ASCII letters are folded, as logins compare.
  static std::string Key(const TenantId& tenant, std::string_view username);

  // The delay for the next answer on `key`.
  absl::Duration DelayFor(const std::string& key) const;
  void RecordFailure(const std::string& key);
  void Reset(const std::string& key);

  // The delay after `failures` consecutive failures.
  static absl::Duration DelayAfter(int failures);

  size_t size() const;

 private:
  struct Entry {
    int failures = 0;
    absl::Time last_failure;
  };
  void MakeRoomLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock& clock_;
  const size_t max_keys_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace custos::authn
