#include "support/dpop.h"

#include <array>
#include <cstdint>
#include <limits>
#include <vector>

#include "absl/strings/cord.h"
#include "common/json.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "fmt/format.h"
#include "support/jwk.h"
#include "support/jws.h"

namespace custos::support {
namespace {

constexpr char kReasonUrl[] = "custos/dpop-error";

constexpr std::array<std::pair<DpopError, std::string_view>, 19> kCodes = {{
    {DpopError::kMultipleProofs, "dpop_multiple_proofs"},
    {DpopError::kMalformed, "dpop_malformed"},
    {DpopError::kBadEncoding, "dpop_bad_encoding"},
    {DpopError::kBadTyp, "dpop_bad_typ"},
    {DpopError::kBadAlg, "dpop_bad_alg"},
    {DpopError::kUnsupportedCrit, "dpop_unsupported_crit"},
    {DpopError::kBadJwk, "dpop_bad_jwk"},
    {DpopError::kPrivateJwk, "dpop_private_jwk"},
    {DpopError::kBadSignature, "dpop_bad_signature"},
    {DpopError::kMissingClaim, "dpop_missing_claim"},
    {DpopError::kBadJti, "dpop_bad_jti"},
    {DpopError::kHtmMismatch, "dpop_htm_mismatch"},
    {DpopError::kHtuMismatch, "dpop_htu_mismatch"},
    {DpopError::kIatTooOld, "dpop_iat_too_old"},
    {DpopError::kIatInFuture, "dpop_iat_in_future"},
    {DpopError::kAthMissing, "dpop_ath_missing"},
    {DpopError::kAthMismatch, "dpop_ath_mismatch"},
    {DpopError::kReplayed, "dpop_replayed"},
    {DpopError::kReplayCacheFull, "dpop_replay_cache_full"},
}};

absl::Status Refuse(DpopError error, std::string_view detail) {
  absl::Status status(absl::StatusCode::kUnauthenticated,
                      fmt::format("{}: {}", DpopErrorCode(error), detail));
  status.SetPayload(kReasonUrl, absl::Cord(std::string(DpopErrorCode(error))));
  return status;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsUnreserved(char c) {
  return IsAlpha(c) || IsDigit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
int HexValue(char c) {
  if (IsDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 6.2.2.1 and 6.2.2.2: decode what needs no encoding, upper-case the rest.
std::optional<std::string> NormalizePercent(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c <= ' ' || c >= 0x7f) return std::nullopt;
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = HexValue(s[i + 1]);
    const int lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    const char decoded = static_cast<char>(hi * 16 + lo);
    if (IsUnreserved(decoded)) {
      out.push_back(decoded);
    } else {
      out += fmt::format("%{:02X}", static_cast<unsigned char>(decoded));
    }
    i += 2;
  }
  return out;
}

// RFC 3986 5.2.4, on an absolute path.
std::string RemoveDotSegments(std::string_view path) {
  std::vector<std::string_view> kept;
  size_t start = 1;  // path starts with '/'
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view segment = path.substr(start, end - start);
    const bool last = end == path.size();
    if (segment == ".") {
      if (last) kept.emplace_back();
    } else if (segment == "..") {
      if (!kept.empty()) kept.pop_back();
      if (last) kept.emplace_back();
    } else {
      kept.push_back(segment);
    }
    start = end + 1;
  }
  std::string out;
  for (std::string_view segment : kept) {
    out.push_back('/');
    out.append(segment);
  }
  return out.empty() ? "/" : out;
}

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

const std::string* StringClaim(const Json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return nullptr;
  return it->get_ptr<const std::string*>();
}

}  // namespace

std::string_view DpopErrorCode(DpopError error) {
  for (const auto& [e, code] : kCodes) {
    if (e == error) return code;
  }
  return "dpop_unknown";
}

std::optional<DpopError> DpopErrorOf(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kReasonUrl);
  if (!payload) return std::nullopt;
  const std::string code(*payload);
  for (const auto& [e, c] : kCodes) {
    if (c == code) return e;
  }
  return std::nullopt;
}

std::optional<std::string> NormalizeHtu(std::string_view url) {
  const size_t colon = url.find("://");
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  const std::string scheme = Lower(url.substr(0, colon));
  if (scheme != "http" && scheme != "https") return std::nullopt;
  std::string_view rest = url.substr(colon + 3);
  // Query and fragment are not compared (RFC 9449 4.3 step 9).
  rest = rest.substr(0, rest.find_first_of("?#"));
  const size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  const std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) return std::nullopt;

  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(0, close + 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
    }
  } else if (const size_t c = authority.rfind(':'); c != std::string_view::npos) {
    host = authority.substr(0, c);
    port = authority.substr(c + 1);
  }
  if (host.empty()) return std::nullopt;
  for (char c : host) {
    if (c <= ' ' || c >= 0x7f || c == '%') return std::nullopt;
  }

  std::string normalized = scheme + "://" + Lower(host);
  if (!port.empty()) {
    if (port.size() > 5) return std::nullopt;
    int number = 0;
    for (char c : port) {
      if (!IsDigit(c)) return std::nullopt;
      number = number * 10 + (c - '0');
    }
    if (number > 65535) return std::nullopt;
    const int default_port = scheme == "https" ? 443 : 80;
    if (number != default_port) normalized += fmt::format(":{}", number);
  }

  std::optional<std::string> clean_path = NormalizePercent(path.empty() ? "/" : path);
  if (!clean_path) return std::nullopt;
  normalized += RemoveDotSegments(*clean_path);
  return normalized;
}

MemoryDpopReplayCache::MemoryDpopReplayCache(const Clock& clock, const DpopOptions& options)
    : clock_(clock),
      max_entries_(options.max_replay_entries),
      max_entries_per_key_(options.max_replay_entries_per_key) {}

absl::StatusOr<std::optional<DpopError>> MemoryDpopReplayCache::Remember(const std::string& jkt,
                                                                         const std::string& jti,
                                                                         absl::Time expires) {
  absl::MutexLock lock(&mu_);
  DropExpired(clock_.Now());
  auto it = seen_.find(jkt);
  if (it != seen_.end() && it->second.contains(jti)) return DpopError::kReplayed;
  if (expiry_.size() >= max_entries_) return DpopError::kReplayCacheFull;
  if (it != seen_.end() && it->second.size() >= max_entries_per_key_) {
    return DpopError::kReplayCacheFull;
  }
  if (it == seen_.end()) it = seen_.try_emplace(jkt).first;
  it->second.insert(jti);
  expiry_.emplace(expires, std::make_pair(jkt, jti));
  return std::nullopt;
}

size_t MemoryDpopReplayCache::Size() {
  absl::MutexLock lock(&mu_);
  DropExpired(clock_.Now());
  return expiry_.size();
}

void MemoryDpopReplayCache::DropExpired(absl::Time now) {
  // An entry expires when its proof's iat falls out of the window; after that the proof would be
  // refused as too old, so forgetting its jti opens no replay.
  while (!expiry_.empty() && expiry_.begin()->first < now) {
    const auto& [jkt, jti] = expiry_.begin()->second;
    auto it = seen_.find(jkt);
    if (it != seen_.end()) {
      it->second.erase(jti);
      if (it->second.empty()) seen_.erase(it);
    }
    expiry_.erase(expiry_.begin());
  }
}

DpopVerifier::DpopVerifier(const Clock& clock, DpopOptions options, DpopReplayCache* replay_cache)
    : clock_(clock),
      options_(options),
      own_cache_(replay_cache == nullptr ? std::make_unique<MemoryDpopReplayCache>(clock, options)
                                         : nullptr),
      replay_cache_(replay_cache == nullptr ? *own_cache_ : *replay_cache) {}

absl::StatusOr<DpopResult> DpopVerifier::Verify(std::string_view proof_jwt,
                                                const DpopCheck& check) {
  // The server URL is ours, not the client's: a bad one is a caller bug, checked first so it is
  // never reported as the client's fault.
  const std::optional<std::string> request_url = NormalizeHtu(check.url);
  if (!request_url) {
    return absl::InvalidArgumentError("DPoP check: request URL is not an absolute http(s) URL");
  }

  // Compact JWS has no commas; HTTP joins repeated headers with one.
  if (proof_jwt.find(',') != std::string_view::npos) {
    return Refuse(DpopError::kMultipleProofs, "more than one DPoP proof");
  }
  if (proof_jwt.empty() || proof_jwt.size() > kMaxProofLength) {
    return Refuse(DpopError::kMalformed, "proof is empty or too long");
  }
  const std::optional<CompactJwsParts> parts = SplitCompactJws(proof_jwt);
  if (!parts) return Refuse(DpopError::kMalformed, "proof is not a compact JWS of three parts");

  const std::optional<Json> header = DecodeJwsObject(parts->header);
  if (!header) return Refuse(DpopError::kBadEncoding, "header is not base64url JSON object");
  const std::optional<Json> claims = DecodeJwsObject(parts->payload);
  if (!claims) return Refuse(DpopError::kBadEncoding, "payload is not base64url JSON object");
  const std::optional<std::string> signature = crypto::Base64UrlDecode(parts->signature);
  if (!signature) return Refuse(DpopError::kBadEncoding, "signature is not base64url");

  // RFC 7515 4.1.9: a typ without "/" means "application/" + typ; media types ignore case.
  const std::string* typ = StringClaim(*header, "typ");
  if (typ == nullptr || (Lower(*typ) != "dpop+jwt" && Lower(*typ) != "application/dpop+jwt")) {
    return Refuse(DpopError::kBadTyp, "header typ is not dpop+jwt");
  }
  const std::string* alg = StringClaim(*header, "alg");
  if (alg == nullptr) return Refuse(DpopError::kBadAlg, "header has no alg");
  if (*alg != "ES256" && *alg != "EdDSA" && *alg != "Ed25519") {
    return Refuse(DpopError::kBadAlg,
                  fmt::format("alg \"{}\" is not accepted (ES256, EdDSA or Ed25519)",
                              alg->size() <= 16 ? *alg : alg->substr(0, 16) + "..."));
  }
  if (header->contains("crit")) {
    return Refuse(DpopError::kUnsupportedCrit, "header has crit, and no extension is supported");
  }
  auto jwk_it = header->find("jwk");
  if (jwk_it == header->end() || !jwk_it->is_object()) {
    return Refuse(DpopError::kBadJwk, "header has no jwk object");
  }
  if (HasPrivateKeyMembers(*jwk_it)) {
    return Refuse(DpopError::kPrivateJwk, "jwk holds a private key");
  }
  absl::StatusOr<PublicJwk> key = ParsePublicJwk(*jwk_it);
  if (!key.ok()) return Refuse(DpopError::kBadJwk, std::string(key.status().message()));
  if (JwsAlgorithmFor(*key) != *alg) {
    return Refuse(DpopError::kBadJwk, fmt::format("jwk is not a key for alg {}", *alg));
  }
  if (!VerifyJwsSignature(*key, *alg, parts->signing_input, *signature)) {
    return Refuse(DpopError::kBadSignature, "signature does not verify with the jwk");
  }

  const std::string* jti = StringClaim(*claims, "jti");
  const std::string* htm = StringClaim(*claims, "htm");
  const std::string* htu = StringClaim(*claims, "htu");
  auto iat_it = claims->find("iat");
  std::optional<absl::Time> iat;
  if (iat_it != claims->end()) iat = NumericDate(*iat_it);
  if (jti == nullptr || htm == nullptr || htu == nullptr || !iat) {
    return Refuse(DpopError::kMissingClaim,
                  "claims jti, htm, htu (strings) and iat (number) are "
                  "required");
  }
  if (jti->empty() || jti->size() > kMaxJtiLength) {
    return Refuse(DpopError::kBadJti, fmt::format("jti must be 1 to {} bytes", kMaxJtiLength));
  }
  if (*htm != check.method) {
    return Refuse(DpopError::kHtmMismatch, "htm is not the request method");
  }
  const std::optional<std::string> proof_url = NormalizeHtu(*htu);
  if (!proof_url || *proof_url != *request_url) {
    return Refuse(DpopError::kHtuMismatch, "htu is not the request URL");
  }

  const absl::Time now = clock_.Now();
  if (*iat < now - options_.max_age) {
    return Refuse(DpopError::kIatTooOld, "iat is too far in the past");
  }
  if (*iat > now + options_.max_clock_skew) {
    return Refuse(DpopError::kIatInFuture, "iat is in the future");
  }

  if (check.access_token) {
    const std::string* ath = StringClaim(*claims, "ath");
    if (ath == nullptr) {
      return Refuse(DpopError::kAthMissing, "an access token was presented and ath is missing");
    }
    const std::string expected = crypto::Base64UrlEncode(crypto::Sha256(*check.access_token));
    if (!crypto::ConstantTimeEquals(*ath, expected)) {
      return Refuse(DpopError::kAthMismatch, "ath is not the hash of the access token");
    }
  }

  DpopResult result{.jkt = Thumbprint(*key), .jti = *jti, .iat = *iat};
  if (check.record) RETURN_IF_ERROR(Record(result));
  return result;
}

absl::Status DpopVerifier::Record(const DpopResult& result) {
  absl::StatusOr<std::optional<DpopError>> refused =
      replay_cache_.Remember(result.jkt, result.jti, result.iat + options_.max_age);
  if (!refused.ok()) {
    // Fail closed: a proof that cannot be checked for replay is not accepted. Unavailable, not a
    // DpopError, so that the client is told to retry rather than that its proof is bad; what
    // failed (the store's error) is for the server log only.
    Log(LogLevel::kError, "the DPoP replay cache cannot answer; the proof is refused",
        {{"error", refused.status().ToString()}});
    return absl::UnavailableError(std::string(kReplayCacheUnavailable));
  }
  if (refused->has_value()) {
    const DpopError error = **refused;
    return Refuse(error, error == DpopError::kReplayed
                             ? "this key already used this jti"
                             : "too many recent proofs to remember another");
  }
  return absl::OkStatus();
}

size_t DpopVerifier::ReplayCacheSize() { return own_cache_ != nullptr ? own_cache_->Size() : 0; }

}  // namespace custos::support
