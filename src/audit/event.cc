#include "audit/event.h"

#include <iterator>
#include <optional>
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

// Writes the event's canonical JSON straight into a string, byte for byte what
// DumpJson(EventJsonTree(...)) gives (keys in std::string order, compact, nlohmann's escaping
// with UTF-8 kept as is), without building the tree of about sixty nodes first: that tree and
// its serialisation were most of an event's cost. A string that is not valid UTF-8 sets `valid`
// to false: nlohmann replaces its bad bytes in ways this writer does not copy, so MakeEvent then
// takes the tree's path. event_test.cc compares the two over many inputs.
class EventWriter {
 public:
  EventWriter() { out_.reserve(1536); }

  bool valid() const { return valid_; }
  std::string Take() { return std::move(out_); }

  void Raw(std::string_view text) { out_.append(text); }
  // `"key":`, the key escaped like a value.
  void Key(std::string_view key) {
    String(key);
    out_ += ':';
  }
  void String(std::string_view s) {
    if (!ValidUtf8(s)) valid_ = false;
    out_ += '"';
    size_t run = 0;  // start of the bytes not yet copied
    for (size_t i = 0; i < s.size(); ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out_.append(s.data() + run, i - run);
      run = i + 1;
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\b':
          out_ += "\\b";
          break;
        case '\f':
          out_ += "\\f";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\r':
          out_ += "\\r";
          break;
        case '\t':
          out_ += "\\t";
          break;
        default: {
          static constexpr char kHex[] = "0123456789abcdef";
          const char escape[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
          out_.append(escape, sizeof escape);
        }
      }
    }
    out_.append(s.data() + run, s.size() - run);
    out_ += '"';
  }
  // Clamp(s), as the tree stores it.
  void Clamped(std::string_view s) { String(ClampView(s)); }
  // StringOrNull(s).
  void ClampedOrNull(std::string_view s) {
    if (s.empty()) {
      Raw("null");
    } else {
      Clamped(s);
    }
  }

 private:
  static std::string_view ClampView(std::string_view s) {
    if (s.size() <= kMaxFieldBytes) return s;
    size_t end = kMaxFieldBytes;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
    return s.substr(0, end);
  }

  // Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF),
  // which is what nlohmann's decoder accepts.
  static bool ValidUtf8(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const unsigned char* end = p + s.size();
    while (p < end) {
      const unsigned char c = *p;
      if (c < 0x80) {
        ++p;
        continue;
      }
      size_t n;
      unsigned char lo = 0x80;
      unsigned char hi = 0xBF;
      if (c >= 0xC2 && c <= 0xDF) {
        n = 1;
      } else if (c >= 0xE0 && c <= 0xEF) {
        n = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
      } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
      } else {
        return false;
      }
      if (static_cast<size_t>(end - p) <= n) return false;
      if (p[1] < lo || p[1] > hi) return false;
      for (size_t k = 2; k <= n; ++k) {
        if ((p[k] & 0xC0) != 0x80) return false;
      }
      p += n + 1;
    }
    return true;
  }

  std::string out_;
  bool valid_ = true;
};

void WritePrincipal(EventWriter& w, const Principal& p) {
  w.Raw("{\"alternateId\":");
  w.ClampedOrNull(p.alternate_id);
  w.Raw(",\"detailEntry\":null,\"displayName\":");
  w.ClampedOrNull(p.display_name);
  w.Raw(",\"id\":");
  w.Clamped(p.id);
  w.Raw(",\"type\":");
  w.Clamped(p.type);
  w.Raw("}");
}

// The same JSON as DumpJson(EventJsonTree(record, context, spec)) when every string in it is
// valid UTF-8; nullopt otherwise.
std::optional<std::string> WriteEventJson(const store::EventRecord& record,
                                          const RequestContext& context, const EventSpec& spec) {
  EventWriter w;
  const std::string& ua = context.user_agent;

  w.Raw("{\"actor\":");
  WritePrincipal(w, context.actor);

  w.Raw(
      ",\"authenticationContext\":{\"authenticationProvider\":null,\"authenticationStep\":0,"
      "\"credentialProvider\":null,\"credentialType\":");
  w.ClampedOrNull(spec.credential_type);
  w.Raw(",\"externalSessionId\":");
  w.ClampedOrNull(context.external_session_id);
  w.Raw(",\"interface\":null,\"issuer\":null}");

  w.Raw(",\"client\":{\"device\":");
  if (ua.empty()) {
    w.Raw("null");
  } else {
    w.String(DeviceOf(ua));
  }
  w.Raw(",\"geographicalContext\":null,\"id\":null,\"ipAddress\":");
  w.ClampedOrNull(context.ip_address);
  w.Raw(",\"userAgent\":{\"browser\":");
  if (ua.empty()) {
    w.Raw("null,\"os\":null,\"rawUserAgent\":null}");
  } else {
    w.String(BrowserOf(ua));
    w.Raw(",\"os\":");
    w.String(OsOf(ua));
    w.Raw(",\"rawUserAgent\":");
    w.Clamped(ua);
    w.Raw("}");
  }
  w.Raw(",\"zone\":\"null\"}");

  // debugData: the three request facts merged, in key order, with the spec's entries (which
  // cannot replace them).
  const std::string_view url = context.url;
  const std::string_view path = url.substr(0, url.find('?'));
  struct Fact {
    std::string_view key;
    std::string_view value;
  };
  const Fact facts[] = {{"requestId", context.request_id}, {"requestUri", path}, {"url", url}};
  w.Raw(",\"debugContext\":{\"debugData\":{");
  bool first = true;
  auto comma = [&] {
    if (!first) w.Raw(",");
    first = false;
  };
  size_t next_fact = 0;
  auto write_facts_before = [&](const std::string* key) {
    // std::string's order, as the tree's std::map keys.
    while (next_fact < std::size(facts) &&
           (key == nullptr || facts[next_fact].key < std::string_view(*key))) {
      comma();
      w.Key(facts[next_fact].key);
      w.ClampedOrNull(facts[next_fact].value);
      ++next_fact;
    }
  };
  for (const auto& [key, value] : spec.debug_data) {
    write_facts_before(&key);
    if (key == "requestId" || key == "requestUri" || key == "url") continue;
    comma();
    w.Key(key);
    w.Clamped(value);
  }
  write_facts_before(nullptr);
  w.Raw("}}");

  w.Raw(",\"device\":null,\"displayMessage\":");
  w.ClampedOrNull(spec.display_message);
  w.Raw(",\"eventType\":");
  w.String(spec.event_type);
  w.Raw(",\"legacyEventType\":null,\"outcome\":{\"reason\":");
  w.ClampedOrNull(spec.reason);
  w.Raw(",\"result\":");
  w.String(spec.outcome);
  w.Raw("},\"published\":");
  w.String(FormatRfc3339(record.published));

  w.Raw(",\"request\":{\"ipChain\":[");
  if (!context.ip_address.empty()) {
    w.Raw("{\"geographicalContext\":null,\"ip\":");
    w.Clamped(context.ip_address);
    w.Raw(Contains(context.ip_address, ":") ? ",\"source\":null,\"version\":\"V6\"}"
                                            : ",\"source\":null,\"version\":\"V4\"}");
  }
  w.Raw("]}");

  w.Raw(
      ",\"securityContext\":{\"asNumber\":null,\"asOrg\":null,\"domain\":null,\"isProxy\":null,"
      "\"isp\":null},\"severity\":");
  w.String(spec.severity);

  w.Raw(",\"target\":[");
  for (size_t i = 0; i < spec.targets.size(); ++i) {
    if (i > 0) w.Raw(",");
    WritePrincipal(w, spec.targets[i]);
  }
  w.Raw("],\"transaction\":{\"detail\":{},\"id\":");
  w.ClampedOrNull(context.request_id);
  w.Raw(context.request_id.empty() ? ",\"type\":\"JOB\"}" : ",\"type\":\"WEB\"}");

  w.Raw(",\"uuid\":");
  w.String(record.uuid);
  w.Raw(",\"version\":\"0\"}");
  if (!w.valid()) return std::nullopt;
  return w.Take();
}

}  // namespace

namespace internal {

Json EventJsonTree(const store::EventRecord& record, const RequestContext& context,
                   const EventSpec& spec) {
  Json event = Json::object();
  event["uuid"] = record.uuid;
  event["published"] = FormatRfc3339(record.published);
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
  return event;
}

std::optional<std::string> EventJsonDirect(const store::EventRecord& record,
                                           const RequestContext& context, const EventSpec& spec) {
  return WriteEventJson(record, context, spec);
}

}  // namespace internal

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

  std::optional<std::string> json = WriteEventJson(record, context, spec);
  record.json = json.has_value() ? *std::move(json)
                                 : DumpJson(internal::EventJsonTree(record, context, spec));
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
