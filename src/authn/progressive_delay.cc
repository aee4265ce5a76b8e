#include "authn/progressive_delay.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"

namespace custos::authn {

ProgressiveDelay::ProgressiveDelay(const Clock& clock, size_t max_keys)
    : clock_(clock), max_keys_(std::max<size_t>(max_keys, 1)) {}

std::string ProgressiveDelay::Key(const TenantId& tenant, std::string_view username) {
  // The NUL cannot occur in a tenant id, so different (tenant, username) pairs never collide.
  std::string key = tenant.value();
  key.push_back('\0');
  key += absl::AsciiStrToLower(std::string(username));
  return key;
}

absl::Duration ProgressiveDelay::DelayAfter(int failures) {
  if (failures < kFreeFailures) return absl::ZeroDuration();
  absl::Duration d = kFirstDelay;
  for (int i = kFreeFailures; i < failures && d < kMaxDelay; ++i) d *= 2;
  return std::min(d, kMaxDelay);
}

absl::Duration ProgressiveDelay::DelayFor(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || clock_.Now() - it->second.last_failure >= kForgetAfter) {
    return absl::ZeroDuration();
  }
  return DelayAfter(it->second.failures);
}

void ProgressiveDelay::RecordFailure(const std::string& key) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    MakeRoomLocked();
    it = entries_.emplace(key, Entry{}).first;
  } else if (now - it->second.last_failure >= kForgetAfter) {
    it->second.failures = 0;
  }
  // Past the cap the count no longer changes the delay; keep it from growing without end.
  it->second.failures = std::min(it->second.failures + 1, 1000);
  it->second.last_failure = now;
}

void ProgressiveDelay::Reset(const std::string& key) {
  absl::MutexLock lock(&mu_);
  entries_.erase(key);
}

size_t ProgressiveDelay::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

void ProgressiveDelay::MakeRoomLocked() {
  if (entries_.size() < max_keys_) return;
  const absl::Time now = clock_.Now();
  absl::erase_if(entries_,
                 [&](const auto& kv) { return now - kv.second.last_failure >= kForgetAfter; });
  if (entries_.size() < max_keys_) return;
  // Still full of live keys: drop the older half, so that a flood costs one sort per
  // max_keys / 2 new keys rather than one scan per key.
  std::vector<absl::Time> times;
  times.reserve(entries_.size());
  for (const auto& [key, entry] : entries_) times.push_back(entry.last_failure);
  auto middle = times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2);
  std::nth_element(times.begin(), middle, times.end());
  const absl::Time cutoff = *middle;
  absl::erase_if(entries_, [&](const auto& kv) { return kv.second.last_failure <= cutoff; });
}

}  // namespace custos::authn
