#pragma once

// Device posture: what a managed device says about itself, how it says it (a report signed by
// its device key), and whether it complies with the provider's device policy.
//
// A posture report is a compact JWS (RFC 7515) signed with the device key:
//   header  {"alg":"ES256"|"EdDSA","typ":"custos-posture+jwt"}
//   payload {"device_id":"dev...","iat":<unix seconds>,"jti":"<random>","posture":{...}}
// and the posture object is
//   {"os_name":"Debian GNU/Linux","os_version":"12","disk_encrypted":true,"screen_lock":true,
//    "edr_running":true,"last_patch":"2026-11-20"}
// where the three signals are booleans and last_patch is a calendar date (YYYY-MM-DD) or null
// when unknown. Unknown members are refused, so a typo is not silently ignored.
//
// Pure functions; thread-safe.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/json.h"
#include "support/jwk.h"

namespace custos::support {

struct Posture {
  std::string os_name;
  std::string os_version;
  bool disk_encrypted = false;
  bool screen_lock = false;
  bool edr_running = false;
  std::optional<std::string> last_patch;  // "YYYY-MM-DD"
};

// The posture object above. ParsePosture refuses (kInvalidArgument, naming the member) a
// missing or mistyped member, an unknown member, an invalid date, or strings over 200 bytes.
Json PostureToJson(const Posture& posture);
absl::StatusOr<Posture> ParsePosture(const Json& json);

// The JWS payload of a report (claims above); the device signs its compact serialisation.
Json PostureReportClaims(std::string_view device_id, const Posture& posture, absl::Time iat,
                         std::string_view jti);

struct PostureReport {
  Posture posture;
  absl::Time iat;
};

inline constexpr std::string_view kPostureJwtType = "custos-posture+jwt";

// Verifies a report: one compact JWS, typ kPostureJwtType, alg matching `key`, a valid
// signature by `key`, device_id equal to `device_id`, iat within `max_skew` of `now` (either
// side), and a valid posture. kInvalidArgument with a message naming the failed check
// (kUnauthenticated for a bad signature).
absl::StatusOr<PostureReport> VerifyPostureReport(std::string_view jws, const PublicJwk& key,
                                                  std::string_view device_id, absl::Time now,
                                                  absl::Duration max_skew);

// The signals a policy may require.
inline constexpr std::string_view kSignalDiskEncrypted = "disk_encrypted";
inline constexpr std::string_view kSignalScreenLock = "screen_lock";
inline constexpr std::string_view kSignalEdrRunning = "edr_running";

// The provider's device policy.
struct DevicePolicy {
  absl::Duration max_posture_age = absl::Hours(24);
  std::vector<std::string> required_signals;            // subset of the kSignal* names
  absl::Duration max_patch_age = absl::ZeroDuration();  // zero: last_patch not checked
};

// {"maxPostureAge":"24h","requiredSignals":["disk_encrypted"],"maxPatchAge":"720h"} — durations
// as absl::FormatDuration text; "0s" for max_patch_age off.
Json DevicePolicyToJson(const DevicePolicy& policy);
// Refuses unknown members, unknown signals, repeated signals, non-positive max_posture_age, a
// negative max_patch_age and malformed or infinite durations (kInvalidArgument naming the
// member). Missing members keep their value from `defaults`.
absl::StatusOr<DevicePolicy> ParseDevicePolicy(const Json& json, const DevicePolicy& defaults);
// From the comma-separated config text ("disk_encrypted,screen_lock"); empty gives none.
absl::StatusOr<std::vector<std::string>> ParseSignalList(std::string_view text);

// Why a device does not comply; stable codes.
inline constexpr std::string_view kPostureMissing = "posture_missing";
inline constexpr std::string_view kPostureStale = "posture_stale";
inline constexpr std::string_view kDiskNotEncrypted = "disk_not_encrypted";
inline constexpr std::string_view kScreenLockOff = "screen_lock_off";
inline constexpr std::string_view kEdrNotRunning = "edr_not_running";
inline constexpr std::string_view kPatchTooOld = "patch_too_old";  // also when unknown

struct Compliance {
  bool compliant = false;
  std::vector<std::string> failures;  // codes above, in this order; empty when compliant
};

// Evaluates a device's last accepted posture (nullopt: never reported; `reported` is when it
// was reported) against `policy` at `now`.
Compliance Evaluate(const std::optional<Posture>& posture, std::optional<absl::Time> reported,
                    const DevicePolicy& policy, absl::Time now);

}  // namespace custos::support
