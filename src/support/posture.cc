#include "support/posture.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "common/status_macros.h"
#include "crypto/encoding.h"
#include "fmt/format.h"
#include "support/jws.h"

namespace custos::support {
namespace {

constexpr size_t kMaxPostureString = 200;
// A report carries about 300 bytes of posture; anything much longer is refused unparsed.
constexpr size_t kMaxReportLength = 8192;
constexpr size_t kMaxJtiLength = 128;

constexpr std::array<std::string_view, 3> kSignals = {kSignalDiskEncrypted, kSignalScreenLock,
                                                      kSignalEdrRunning};

// Untrusted text quoted in a message is cut short, so a message stays a message.
std::string Quote(std::string_view text) {
  constexpr size_t kMaxQuoted = 40;
  if (text.size() <= kMaxQuoted) return fmt::format("\"{}\"", text);
  return fmt::format("\"{}...\"", text.substr(0, kMaxQuoted));
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// The calendar day of a strict "YYYY-MM-DD" text; nullopt for any other text or a day that does
// not exist (2025-02-29).
std::optional<absl::CivilDay> ParseDate(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  int fields[3] = {0, 0, 0};
  const std::pair<size_t, size_t> spans[3] = {{0, 4}, {5, 2}, {8, 2}};
  for (int i = 0; i < 3; ++i) {
    for (size_t j = spans[i].first; j < spans[i].first + spans[i].second; ++j) {
      if (text[j] < '0' || text[j] > '9') return std::nullopt;
      fields[i] = fields[i] * 10 + (text[j] - '0');
    }
  }
  if (fields[0] == 0) return std::nullopt;
  // CivilDay normalises (February 30 becomes March 2); a day that moved did not exist.
  const absl::CivilDay day(fields[0], fields[1], fields[2]);
  if (day.year() != fields[0] || day.month() != fields[1] || day.day() != fields[2]) {
    return std::nullopt;
  }
  return day;
}

absl::Status BadMember(std::string_view member, std::string_view problem) {
  return absl::InvalidArgumentError(fmt::format("posture.{}: {}", member, problem));
}

absl::StatusOr<std::string> PostureString(const Json& json, std::string_view member) {
  auto it = json.find(std::string(member));
  if (it == json.end()) return BadMember(member, "missing");
  if (!it->is_string()) return BadMember(member, "must be a string");
  const std::string& value = it->get_ref<const std::string&>();
  if (value.size() > kMaxPostureString) {
    return BadMember(member, fmt::format("longer than {} bytes", kMaxPostureString));
  }
  return value;
}

absl::StatusOr<bool> PostureBool(const Json& json, std::string_view member) {
  auto it = json.find(std::string(member));
  if (it == json.end()) return BadMember(member, "missing");
  if (!it->is_boolean()) return BadMember(member, "must be true or false");
  return it->get<bool>();
}

// Like dpop.cc: a NumericDate may be any JSON number; one beyond absl::Time saturates.
std::optional<absl::Time> NumericDate(const Json& value) {
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InfiniteFuture();
    }
    return absl::FromUnixSeconds(static_cast<int64_t>(v));
  }
  if (value.is_number_integer()) return absl::FromUnixSeconds(value.get<int64_t>());
  if (value.is_number_float()) return absl::UnixEpoch() + absl::Seconds(value.get<double>());
  return std::nullopt;
}

absl::Status BadReport(std::string_view problem) {
  return absl::InvalidArgumentError(fmt::format("posture report: {}", problem));
}

// RFC 7515 4.1.9: a typ without "/" stands for "application/" + typ; media types ignore case.
bool IsPostureType(const Json& header) {
  auto it = header.find("typ");
  if (it == header.end() || !it->is_string()) return false;
  const std::string typ = Lower(it->get_ref<const std::string&>());
  return typ == kPostureJwtType || typ == fmt::format("application/{}", kPostureJwtType);
}

bool IsSignal(std::string_view name) {
  return std::find(kSignals.begin(), kSignals.end(), name) != kSignals.end();
}

absl::Status CheckSignals(const std::vector<std::string>& signals, std::string_view where) {
  for (size_t i = 0; i < signals.size(); ++i) {
    if (!IsSignal(signals[i])) {
      return absl::InvalidArgumentError(fmt::format("{}: unknown signal {} (known: {}, {}, {})",
                                                    where, Quote(signals[i]), kSignals[0],
                                                    kSignals[1], kSignals[2]));
    }
    if (std::find(signals.begin(), signals.begin() + i, signals[i]) != signals.begin() + i) {
      return absl::InvalidArgumentError(
          fmt::format("{}: signal {} is repeated", where, signals[i]));
    }
  }
  return absl::OkStatus();
}

// "0s" rather than FormatDuration's "0", as the policy JSON shows a rule that is off.
std::string DurationText(absl::Duration d) {
  return d == absl::ZeroDuration() ? "0s" : absl::FormatDuration(d);
}

absl::StatusOr<absl::Duration> PolicyDuration(const Json& value, std::string_view member) {
  absl::Duration d;
  if (!value.is_string() || !absl::ParseDuration(value.get<std::string>(), &d)) {
    return absl::InvalidArgumentError(
        fmt::format("{}: must be a duration such as \"24h\" or \"90m\"", member));
  }
  // An infinite age would switch the check off without saying so; "0s" is how to say it.
  if (d == absl::InfiniteDuration() || d == -absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(fmt::format("{}: must be finite", member));
  }
  return d;
}

}  // namespace

Json PostureToJson(const Posture& posture) {
  return {{"os_name", posture.os_name},
          {"os_version", posture.os_version},
          {"disk_encrypted", posture.disk_encrypted},
          {"screen_lock", posture.screen_lock},
          {"edr_running", posture.edr_running},
          {"last_patch", posture.last_patch ? Json(*posture.last_patch) : Json(nullptr)}};
}

absl::StatusOr<Posture> ParsePosture(const Json& json) {
  if (!json.is_object()) return absl::InvalidArgumentError("posture: must be a JSON object");
  static constexpr std::array<std::string_view, 6> kMembers = {
      "os_name", "os_version", "disk_encrypted", "screen_lock", "edr_running", "last_patch"};
  for (const auto& [name, value] : json.items()) {
    if (std::find(kMembers.begin(), kMembers.end(), name) == kMembers.end()) {
      return absl::InvalidArgumentError(fmt::format("posture: unknown member {}", Quote(name)));
    }
  }
  Posture posture;
  ASSIGN_OR_RETURN(posture.os_name, PostureString(json, "os_name"));
  ASSIGN_OR_RETURN(posture.os_version, PostureString(json, "os_version"));
  ASSIGN_OR_RETURN(posture.disk_encrypted, PostureBool(json, "disk_encrypted"));
  ASSIGN_OR_RETURN(posture.screen_lock, PostureBool(json, "screen_lock"));
  ASSIGN_OR_RETURN(posture.edr_running, PostureBool(json, "edr_running"));
  auto patch = json.find("last_patch");
  if (patch == json.end()) return BadMember("last_patch", "missing (null when unknown)");
  if (!patch->is_null()) {
    if (!patch->is_string() || !ParseDate(patch->get_ref<const std::string&>())) {
      return BadMember("last_patch", "must be a date YYYY-MM-DD or null");
    }
    posture.last_patch = patch->get<std::string>();
  }
  return posture;
}

Json PostureReportClaims(std::string_view device_id, const Posture& posture, absl::Time iat,
                         std::string_view jti) {
  return {{"device_id", std::string(device_id)},
          {"iat", absl::ToUnixSeconds(iat)},
          {"jti", std::string(jti)},
          {"posture", PostureToJson(posture)}};
}

absl::StatusOr<PostureReport> VerifyPostureReport(std::string_view jws, const PublicJwk& key,
                                                  std::string_view device_id, absl::Time now,
                                                  absl::Duration max_skew) {
  if (jws.empty() || jws.size() > kMaxReportLength) {
    return BadReport(fmt::format("empty or longer than {} bytes", kMaxReportLength));
  }
  const std::optional<CompactJwsParts> parts = SplitCompactJws(jws);
  if (!parts) return BadReport("not a compact JWS of three parts");
  const std::optional<Json> header = DecodeJwsObject(parts->header);
  if (!header) return BadReport("header is not a base64url JSON object");
  const std::optional<Json> claims = DecodeJwsObject(parts->payload);
  if (!claims) return BadReport("payload is not a base64url JSON object");
  const std::optional<std::string> signature = crypto::Base64UrlDecode(parts->signature);
  if (!signature) return BadReport("signature is not base64url");

  if (!IsPostureType(*header)) {
    return BadReport(fmt::format("header typ is not {}", kPostureJwtType));
  }
  const std::string_view expected_alg = JwsAlgorithmFor(key);
  auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string() ||
      alg->get_ref<const std::string&>() != expected_alg) {
    return BadReport(fmt::format("header alg is not {}, the device key's", expected_alg));
  }
  // RFC 7515 4.1.11: an extension we do not understand must not be ignored.
  if (header->contains("crit")) return BadReport("header has crit, and no extension is supported");
  if (!VerifyJwsSignature(key, expected_alg, parts->signing_input, *signature)) {
    return absl::UnauthenticatedError(
        "posture report: signature does not verify with the device key");
  }

  auto id = claims->find("device_id");
  if (id == claims->end() || !id->is_string()) return BadReport("device_id missing");
  if (id->get_ref<const std::string&>() != device_id) {
    return BadReport("device_id is not the reporting device's");
  }
  auto jti = claims->find("jti");
  if (jti == claims->end() || !jti->is_string() || jti->get_ref<const std::string&>().empty() ||
      jti->get_ref<const std::string&>().size() > kMaxJtiLength) {
    return BadReport(fmt::format("jti must be a string of 1 to {} bytes", kMaxJtiLength));
  }
  auto iat_member = claims->find("iat");
  const std::optional<absl::Time> iat =
      iat_member == claims->end() ? std::nullopt : NumericDate(*iat_member);
  if (!iat) return BadReport("iat (a number of seconds) missing");
  if (*iat < now - max_skew) {
    return BadReport(
        fmt::format("iat is more than {} in the past", absl::FormatDuration(max_skew)));
  }
  if (*iat > now + max_skew) {
    return BadReport(
        fmt::format("iat is more than {} in the future", absl::FormatDuration(max_skew)));
  }
  auto posture_member = claims->find("posture");
  if (posture_member == claims->end()) return BadReport("posture missing");
  absl::StatusOr<Posture> posture = ParsePosture(*posture_member);
  if (!posture.ok()) return BadReport(std::string(posture.status().message()));
  return PostureReport{.posture = *std::move(posture), .iat = *iat};
}

Json DevicePolicyToJson(const DevicePolicy& policy) {
  return {{"maxPostureAge", DurationText(policy.max_posture_age)},
          {"requiredSignals", policy.required_signals},
          {"maxPatchAge", DurationText(policy.max_patch_age)}};
}

absl::StatusOr<DevicePolicy> ParseDevicePolicy(const Json& json, const DevicePolicy& defaults) {
  if (!json.is_object()) return absl::InvalidArgumentError("device policy: must be a JSON object");
  DevicePolicy policy = defaults;
  for (const auto& [name, value] : json.items()) {
    if (name == "maxPostureAge") {
      ASSIGN_OR_RETURN(policy.max_posture_age, PolicyDuration(value, name));
      if (policy.max_posture_age <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError("maxPostureAge: must be positive");
      }
    } else if (name == "maxPatchAge") {
      ASSIGN_OR_RETURN(policy.max_patch_age, PolicyDuration(value, name));
      if (policy.max_patch_age < absl::ZeroDuration()) {
        return absl::InvalidArgumentError("maxPatchAge: must not be negative (\"0s\" is off)");
      }
    } else if (name == "requiredSignals") {
      if (!value.is_array()) {
        return absl::InvalidArgumentError("requiredSignals: must be an array of signal names");
      }
      std::vector<std::string> signals;
      for (const Json& signal : value) {
        if (!signal.is_string()) {
          return absl::InvalidArgumentError("requiredSignals: must be an array of signal names");
        }
        signals.push_back(signal.get<std::string>());
      }
      RETURN_IF_ERROR(CheckSignals(signals, "requiredSignals"));
      policy.required_signals = std::move(signals);
    } else {
      return absl::InvalidArgumentError(
          fmt::format("device policy: unknown member {}", Quote(name)));
    }
  }
  return policy;
}

absl::StatusOr<std::vector<std::string>> ParseSignalList(std::string_view text) {
  constexpr std::string_view kSpace = " \t";
  std::vector<std::string> signals;
  if (text.find_first_not_of(kSpace) == std::string_view::npos) return signals;
  size_t start = 0;
  while (true) {
    const size_t comma = std::min(text.find(',', start), text.size());
    std::string_view item = text.substr(start, comma - start);
    const size_t first = item.find_first_not_of(kSpace);
    item = first == std::string_view::npos
               ? std::string_view()
               : item.substr(first, item.find_last_not_of(kSpace) - first + 1);
    if (item.empty()) return absl::InvalidArgumentError("signal list: empty item");
    signals.emplace_back(item);
    if (comma == text.size()) break;
    start = comma + 1;
  }
  RETURN_IF_ERROR(CheckSignals(signals, "signal list"));
  return signals;
}

Compliance Evaluate(const std::optional<Posture>& posture, std::optional<absl::Time> reported,
                    const DevicePolicy& policy, absl::Time now) {
  Compliance result;
  if (!posture) {
    result.failures.emplace_back(kPostureMissing);
    return result;
  }
  // A posture whose report time is unknown cannot be shown to be fresh.
  if (!reported || now - *reported > policy.max_posture_age) {
    result.failures.emplace_back(kPostureStale);
  }
  auto required = [&](std::string_view signal) {
    return std::find(policy.required_signals.begin(), policy.required_signals.end(), signal) !=
           policy.required_signals.end();
  };
  if (required(kSignalDiskEncrypted) && !posture->disk_encrypted) {
    result.failures.emplace_back(kDiskNotEncrypted);
  }
  if (required(kSignalScreenLock) && !posture->screen_lock) {
    result.failures.emplace_back(kScreenLockOff);
  }
  if (required(kSignalEdrRunning) && !posture->edr_running) {
    result.failures.emplace_back(kEdrNotRunning);
  }
  if (policy.max_patch_age > absl::ZeroDuration()) {
    // The patch day counts from its start (UTC): the strict reading of a date without a time.
    const std::optional<absl::CivilDay> day =
        posture->last_patch ? ParseDate(*posture->last_patch) : std::nullopt;
    if (!day || now - absl::FromCivil(*day, absl::UTCTimeZone()) > policy.max_patch_age) {
      result.failures.emplace_back(kPatchTooOld);
    }
  }
  result.compliant = result.failures.empty();
  return result;
}

}  // namespace custos::support
