#pragma once

// The key of a managed device, on the device side: generated at enrolment, kept in a file
// readable only by its owner, and used to sign DPoP proofs (RFC 9449) and posture reports.
//
// DeviceKey is an interface so that a TPM- or enclave-backed key can replace the file key later
// without touching its callers; FileDeviceKey is the one we have: an ECDSA P-256 key (JWS alg
// ES256) stored as PKCS#8 PEM.
//
// Thread-safe after construction (signing does not change the key).

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/json.h"
#include "crypto/random.h"
#include "support/posture.h"

namespace custos::support {

class DeviceKey {
 public:
  virtual ~DeviceKey() = default;
  // The public JWK ({"kty":"EC","crv":"P-256","x":..,"y":..}); never private members.
  virtual Json PublicJwk() const = 0;
  // "ES256" (or "EdDSA" for an Ed25519 key).
  virtual std::string Algorithm() const = 0;
  // A compact JWS over `header` and `payload` (both serialised compactly here; `header` gets
  // "alg" set to Algorithm()). kInternal when the key cannot sign.
  virtual absl::StatusOr<std::string> SignJws(const Json& header, const Json& payload) const = 0;
};

// A P-256 key in a PEM file (PKCS#8).
class FileDeviceKey : public DeviceKey {
 public:
  // Makes a new key and writes it to `path` with mode 0600 (refusing, kAlreadyExists, to
  // overwrite a file that exists; the directory is created 0700 when missing). The file is
  // written atomically.
  static absl::StatusOr<std::unique_ptr<FileDeviceKey>> Create(const std::string& path);
  // Loads a key written by Create. kFailedPrecondition when the file is readable by group or
  // others (like ssh, a key others can read is not used); kInvalidArgument when not a P-256 key.
  static absl::StatusOr<std::unique_ptr<FileDeviceKey>> Load(const std::string& path);

  ~FileDeviceKey() override;
  Json PublicJwk() const override;
  std::string Algorithm() const override;
  absl::StatusOr<std::string> SignJws(const Json& header, const Json& payload) const override;

 private:
  struct Impl;
  explicit FileDeviceKey(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A DPoP proof for one request: header {"typ":"dpop+jwt","alg":..,"jwk":<public jwk>}, claims
// {"jti":<16 random bytes, base64url>,"htm":method,"htu":url without query and fragment,
// "iat":now} and "ath" (base64url SHA-256 of the token) when `access_token` is given.
absl::StatusOr<std::string> MakeDpopProof(const DeviceKey& key, std::string_view method,
                                          std::string_view url,
                                          std::optional<std::string_view> access_token,
                                          absl::Time now, crypto::Random& random);

// A posture report (support/posture.h) signed by `key`.
absl::StatusOr<std::string> MakePostureReport(const DeviceKey& key, std::string_view device_id,
                                              const Posture& posture, absl::Time now,
                                              crypto::Random& random);

// What this machine says about itself, read from the system: os_name and os_version from
// /etc/os-release (PRETTY_NAME's parts NAME and VERSION_ID), disk_encrypted when the root file
// system sits on a dm-crypt device, screen_lock false (a server has no screen; an agent that
// knows better overrides it), edr_running when a process named in `edr_process_names`
// (comma-separated) runs, last_patch from the newest modification time of /var/lib/dpkg/status
// or /var/log/dpkg.log. `root` prefixes every path read (tests point it at a fake tree).
Posture CollectPosture(std::string_view edr_process_names, const std::string& root = "");

// Overrides fields of `posture` from a JSON object with any of the posture members (an MDM or
// EDR agent's answer). kInvalidArgument for unknown or mistyped members.
absl::Status MergePosture(Posture& posture, const Json& overrides);

}  // namespace custos::support
