#pragma once

// The user profile schema: the default profile of the management API (login, email, firstName,
// lastName and the optional base properties). Every property is a string or null; unknown
// properties are refused, as that API does for properties not in the schema.

#include <string>

#include "absl/status/status.h"
#include "common/json.h"

namespace custos::directory {

// Checks a complete profile (create, full replace). kInvalidArgument (E0000001) with one cause
// per problem, e.g. "login: Username must be in the form of an email address".
absl::Status ValidateProfile(const Json& profile);

// Merges `partial` into `profile` (partial update: null clears a property), then validates.
absl::Status MergeProfile(Json& profile, const Json& partial);

}  // namespace custos::directory
