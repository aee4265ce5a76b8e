#pragma once

// `custos device ...`: the managed device of a support operator, client side of the support plane
// (docs in /provider/api/v1/devices and /provider/oauth2/v1/token).
//
//   enroll  makes the device key (support/device_key.h) in the device directory and registers it
//           with an enrolment token from a provider admin; writes device.json.
//   report  collects the device's posture, signs it with the key and sends it; prints whether the
//           device complies with the provider's device policy.
//   token   exchanges an operator's provider session token for a DPoP-bound access token and
//           stores it in token.json.
//   call    sends one request to the support API with that token and a fresh DPoP proof.
//   show    prints the enrolled device and its key thumbprint.
//
// The device directory (--dir; default DefaultDeviceDir()) holds device.key, device.json and
// token.json, each mode 0600; a directory the commands create is mode 0700. Secrets (enrolment
// token, session token, access token, private key) are never printed.
//
// Exit codes: 0 success; 1 refused or failed by the server or the network (the message names
// the HTTP status, errorSummary and reason); 2 usage or local problems (bad flags, no device
// enrolled in the directory, a device already there, unreadable files).

#include <cstdio>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "cli/http_fetch.h"
#include "common/clock.h"
#include "crypto/random.h"

namespace custos::cli {

inline constexpr std::string_view kDefaultEdrProcesses =
    "falcon-sensor,mdatp,wdavdaemon,sentinelagent,osqueryd";

struct DeviceEnrollFlags {
  std::string server;  // https://id.example.com (no path)
  std::string token;   // the enrolment token; "-" reads it from the input
  std::string dir;     // empty: DefaultDeviceDir()
};

struct DeviceReportFlags {
  std::string dir;
  // A JSON object with posture members (support/posture.h) that override what was collected:
  // what an MDM or EDR agent knows better. Empty: none.
  std::string posture_file;
  std::string edr_processes = std::string(kDefaultEdrProcesses);  // comma-separated
};

struct DeviceTokenFlags {
  std::string dir;
  // The provider session token; empty reads it from the input (so that it stays out of the
  // process list), without echo on a terminal.
  std::string session_token;
};

struct DeviceCallFlags {
  std::string method;  // GET, POST, PUT, PATCH or DELETE, any case
  std::string path;    // "/provider/api/v1/support/me", query allowed
  std::string data;    // a JSON body; empty sends none
  std::string dir;
};

struct DeviceShowFlags {
  std::string dir;
};

// Sends one request; the default (empty) is a real HttpClient. Tests put a fake server here.
using HttpSender = std::function<absl::StatusOr<HttpResponse>(const HttpRequest&)>;

// Where the commands read and write, their time and randomness; tests replace them.
struct DeviceCommandIo {
  std::FILE* out = stdout;
  std::FILE* err = stderr;
  std::FILE* in = stdin;  // tokens given as "-" or not given
  const Clock* clock = &SystemClock::Get();
  crypto::Random* random = &crypto::SystemRandom();
  HttpSender send;
  // Prefix of the system files read for the posture (support::CollectPosture); "" in real use.
  std::string system_root;
};

// Each returns the process exit code.
int DeviceEnroll(const DeviceEnrollFlags& flags, const DeviceCommandIo& io = {});
int DeviceReport(const DeviceReportFlags& flags, const DeviceCommandIo& io = {});
int DeviceToken(const DeviceTokenFlags& flags, const DeviceCommandIo& io = {});
int DeviceCall(const DeviceCallFlags& flags, const DeviceCommandIo& io = {});
int DeviceShow(const DeviceShowFlags& flags, const DeviceCommandIo& io = {});

// $CUSTOS_DEVICE_DIR, else $XDG_CONFIG_HOME/custos/device, else $HOME/.config/custos/device.
// kFailedPrecondition when none of these variables is set.
absl::StatusOr<std::string> DefaultDeviceDir();

}  // namespace custos::cli
