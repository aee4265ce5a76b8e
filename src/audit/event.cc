#include "audit/event.h"

#include <string_view>

#include "absl/time/time.h"
#include "audit/merkle.h"
#include "common/json.h"
#include "common/time_format.h"

namespace custos::audit {
namespace {

// Every string an event takes from outside (user agents, URLs, names, debug values) is cut to
// this many bytes, so that an event always fits a log entry (at most 65,535 bytes, the C2SP
// entry-bundle limit) however large the request or profile was.
constexpr size_t kMaxFieldBytes = 1024;

// Cuts at a UTF-8 character boundary.
std::string Clamp(std::string_view s) {
  if (s.size() <= kMaxFieldBytes) return std::string(s);
  size_t end = kMaxFieldBytes;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return std::string(s.substr(0, end));
}

// The format says "null" where a value is unknown; an empty string would read as a known,
// empty value to a SIEM.
Json StringOrNull(std::string_view s) {
  if (s.empty()) return nullptr;
  return Clamp(s);
}

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// A coarse reading of the User-Agent header in the format's vocabulary (browser names upper
// case, "UNKNOWN" / "Unknown" when the header is present but not recognised). Order matters:
// Edge and Chrome also claim to be Safari, Edge also claims to be Chrome.
std::string_view BrowserOf(std::string_view ua) {
  if (Contains(ua, "Edg/") || Contains(ua, "Edge/")) return "EDGE";
  if (Contains(ua, "Firefox/")) return "FIREFOX";
  if (Contains(ua, "Chrome/") || Contains(ua, "Chromium/")) return "CHROME";
  if (Contains(ua, "Safari/")) return "SAFARI";
  return "UNKNOWN";
}

std::string_view OsOf(std::string_view ua) {
  if (Contains(ua, "Windows NT 10.0")) return "Windows 10";
  if (Contains(ua, "Windows")) return "Windows";
  if (Contains(ua, "iPhone") || Contains(ua, "iPad")) return "iOS";
  if (Contains(ua, "Mac OS X")) return "Mac OS X";
  if (Contains(ua, "Android")) return "Android";
  if (Contains(ua, "CrOS")) return "Chrome OS";
  if (Contains(ua, "Linux")) return "Linux";
  return "Unknown";
}

std::string_view DeviceOf(std::string_view ua) {
  if (Contains(ua, "iPad") || Contains(ua, "Tablet")) return "Tablet";
  if (Contains(ua, "Mobile") || Contains(ua, "iPhone") || Contains(ua, "Android")) {
    return "Mobile";
  }
  if (Contains(ua, "Windows") || Contains(ua, "Macintosh") || Contains(ua, "X11") ||
      Contains(ua, "CrOS")) {
    return "Computer";
  }
  return "Unknown";
}

Json PrincipalJson(const Principal& p) {
  Json j = Json::object();
  j["id"] = Clamp(p.id);
  j["type"] = Clamp(p.type);
  j["alternateId"] = StringOrNull(p.alternate_id);
  j["displayName"] = StringOrNull(p.display_name);
  j["detailEntry"] = nullptr;
  return j;
}

Json ClientJson(const RequestContext& context) {
  const std::string& ua = context.user_agent;
  Json user_agent = Json::object();
  user_agent["rawUserAgent"] = StringOrNull(ua);
  user_agent["os"] = ua.empty() ? Json(nullptr) : Json(OsOf(ua));
  user_agent["browser"] = ua.empty() ? Json(nullptr) : Json(BrowserOf(ua));

  Json client = Json::object();
  client["userAgent"] = std::move(user_agent);
  // Network zones do not exist yet; the reference format writes the string "null" here.
  client["zone"] = "null";
  client["device"] = ua.empty() ? Json(nullptr) : Json(DeviceOf(ua));
  client["id"] = nullptr;
  client["ipAddress"] = StringOrNull(context.ip_address);
  client["geographicalContext"] = nullptr;
  return client;
}

Json RequestJson(const RequestContext& context) {
  Json chain = Json::array();
  if (!context.ip_address.empty()) {
    Json ip = Json::object();
    ip["ip"] = Clamp(context.ip_address);
    ip["geographicalContext"] = nullptr;
    ip["version"] = Contains(context.ip_address, ":") ? "V6" : "V4";
    ip["source"] = nullptr;
    chain.push_back(std::move(ip));
  }
  Json request = Json::object();
  request["ipChain"] = std::move(chain);
  return request;
}

Json AuthenticationContextJson(const RequestContext& context, const EventSpec& spec) {
  Json j = Json::object();
  j["authenticationProvider"] = nullptr;
  j["credentialProvider"] = nullptr;
  j["credentialType"] = StringOrNull(spec.credential_type);
  j["issuer"] = nullptr;
  j["interface"] = nullptr;
  j["authenticationStep"] = 0;
  j["externalSessionId"] = StringOrNull(context.external_session_id);
  return j;
}

Json DebugContextJson(const RequestContext& context, const EventSpec& spec) {
  std::string_view url = context.url;
  std::string_view path = url.substr(0, url.find('?'));
  Json data = Json::object();
  data["requestId"] = StringOrNull(context.request_id);
  data["requestUri"] = StringOrNull(path);
  data["url"] = StringOrNull(url);
  // The request facts above come from the server, not from the module that logs the event, so
  // a module cannot overwrite them.
  for (const auto& [key, value] : spec.debug_data) {
    if (!data.contains(key)) data[key] = Clamp(value);
  }
  Json j = Json::object();
  j["debugData"] = std::move(data);
  return j;
}

Json SecurityContextJson() {
  Json j = Json::object();
  j["asNumber"] = nullptr;
  j["asOrg"] = nullptr;
  j["isp"] = nullptr;
  j["domain"] = nullptr;
  j["isProxy"] = nullptr;
  return j;
}

}  // namespace

store::EventRecord MakeEvent(const TenantId& tenant, const RequestContext& context,
                             const EventSpec& spec, const Clock& clock, crypto::Random& random) {
  // The JSON shows milliseconds; the record keeps the same instant so that since/until select
  // exactly the events whose published text falls in the range.
  absl::Time published = absl::FromUnixMillis(absl::ToUnixMillis(clock.Now()));

  store::EventRecord record;
  record.tenant_id = tenant;
  // Time-ordered (UUIDv7): the store's uniqueness index on uuids then grows at its end instead of
  // dirtying a random page per event, which made it the most expensive part of an append.
  record.uuid = random.UuidV7(published);
  record.published = published;
  record.event_type = spec.event_type;

  Json event = Json::object();
  event["uuid"] = record.uuid;
  event["published"] = FormatRfc3339(published);
  event["eventType"] = spec.event_type;
  event["version"] = "0";
  event["severity"] = spec.severity;
  event["legacyEventType"] = nullptr;
  event["displayMessage"] = StringOrNull(spec.display_message);
  event["actor"] = PrincipalJson(context.actor);
  event["client"] = ClientJson(context);
  event["request"] = RequestJson(context);
  event["device"] = nullptr;
  event["authenticationContext"] = AuthenticationContextJson(context, spec);

  Json outcome = Json::object();
  outcome["result"] = spec.outcome;
  outcome["reason"] = StringOrNull(spec.reason);
  event["outcome"] = std::move(outcome);

  Json targets = Json::array();
  for (const Principal& target : spec.targets) targets.push_back(PrincipalJson(target));
  event["target"] = std::move(targets);

  Json transaction = Json::object();
  // WEB: the event was caused by a request; JOB: by internal work (CLI, sequencer, timers).
  transaction["type"] = context.request_id.empty() ? "JOB" : "WEB";
  transaction["id"] = StringOrNull(context.request_id);
  transaction["detail"] = Json::object();
  event["transaction"] = std::move(transaction);

  event["debugContext"] = DebugContextJson(context, spec);
  event["securityContext"] = SecurityContextJson();

  record.json = DumpJson(event);
  // Hashed here, on the request's thread, rather than by the single sequencer.
  record.leaf_hash = merkle::LeafHash(record.json);
  return record;
}

Principal SystemPrincipal() {
  return Principal{.id = "system",
                   .type = "SystemPrincipal",
                   .alternate_id = "system@custos",
                   .display_name = "Custos System"};
}

}  // namespace custos::audit
