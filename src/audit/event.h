#pragma once

// System Log events in the shape of the widely used System Log format (docs/system-log.md):
// uuid, published, eventType, version, severity, displayMessage, actor, client, device,
// authenticationContext, outcome, target[], transaction, debugContext, securityContext.
// Domain modules build one with MakeEvent and append it in the same store transaction as the
// change it records.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/ids.h"
#include "common/json.h"
#include "crypto/random.h"
#include "store/records.h"

namespace custos::audit {

// Who did it. type: "User", "SystemPrincipal", "PublicClientApp", "ApiToken".
struct Principal {
  std::string id;
  std::string type;
  std::string alternate_id;  // login or name
  std::string display_name;
};

// Where the request came from; built once per request by api/ and passed down.
struct RequestContext {
  Principal actor;
  std::string request_id;
  std::string ip_address;
  std::string user_agent;
  std::string url;                  // request path, without the query (no tokens)
  std::string external_session_id;  // session id when the actor acts through a session
};

// Outcome results.
inline constexpr std::string_view kSuccess = "SUCCESS";
inline constexpr std::string_view kFailure = "FAILURE";
inline constexpr std::string_view kDeny = "DENY";

struct EventSpec {
  std::string event_type;  // "user.lifecycle.create"
  std::string display_message;
  std::string severity = "INFO";  // DEBUG, INFO, WARN, ERROR
  std::string outcome = std::string(kSuccess);
  std::string reason;  // outcome.reason; empty shows as null
  std::vector<Principal> targets;
  std::map<std::string, std::string> debug_data;  // debugContext.debugData (never secrets)
  std::string credential_type;  // authenticationContext.credentialType, e.g. "PASSWORD"
};

// Builds the event JSON and its record for `tenant`. The uuid comes from `random`, published
// from `clock`. `seq` stays 0 until the store appends it.
store::EventRecord MakeEvent(const TenantId& tenant, const RequestContext& context,
                             const EventSpec& spec, const Clock& clock, crypto::Random& random);

namespace internal {
// For tests: the event JSON as a nlohmann tree (MakeEvent stores DumpJson of it, the canonical
// form), and the same text as MakeEvent's direct writer produces it (nullopt when a string in it
// is not valid UTF-8, where MakeEvent uses the tree). `record` supplies uuid and published.
Json EventJsonTree(const store::EventRecord& record, const RequestContext& context,
                   const EventSpec& spec);
std::optional<std::string> EventJsonDirect(const store::EventRecord& record,
                                           const RequestContext& context, const EventSpec& spec);
}  // namespace internal

// The principal for the custos command-line tool and other internal work.
Principal SystemPrincipal();

}  // namespace custos::audit
