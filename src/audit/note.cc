#include "audit/note.h"

#include <fmt/format.h>

#include <optional>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"

namespace custos::audit::note {
namespace {

constexpr char kAlgEd25519 = 0x01;
constexpr std::string_view kSigPrefix = "\xe2\x80\x94 ";  // U+2014 EM DASH, space
constexpr std::string_view kSignerPrefix = "PRIVATE+KEY+";
// The cap Go's golang.org/x/mod/sumdb/note applies; bounds the work an untrusted note can cause.
constexpr size_t kMaxSignatures = 100;

absl::Status Malformed(std::string_view why) {
  return absl::InvalidArgumentError(fmt::format("malformed signed note: {}", why));
}

// Decodes one UTF-8 code point at `pos`, advancing it; nullopt for invalid or overlong
// sequences and surrogates.
std::optional<uint32_t> NextCodePoint(std::string_view s, size_t& pos) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char c = byte(pos);
  size_t len;
  uint32_t cp;
  if (c < 0x80) {
    ++pos;
    return c;
  } else if ((c & 0xe0) == 0xc0) {
    len = 2;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return std::nullopt;
  }
  if (pos + len > s.size()) return std::nullopt;
  for (size_t i = 1; i < len; ++i) {
    if ((byte(pos + i) & 0xc0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (byte(pos + i) & 0x3f);
  }
  static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinForLength[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    return std::nullopt;
  }
  pos += len;
  return cp;
}

// Unicode White_Space, plus the C0/C1 controls and DEL.
bool IsSpaceOrControl(uint32_t cp) {
  if (cp <= 0x20 || (cp >= 0x7f && cp <= 0xa0)) return true;
  return cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

std::string KeyIdBytes(uint32_t id) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((id >> (24 - 8 * i)) & 0xff);
  return out;
}

uint32_t KeyIdFromBytes(std::string_view b) {
  uint32_t id = 0;
  for (int i = 0; i < 4; ++i) id = (id << 8) | static_cast<unsigned char>(b[i]);
  return id;
}

struct ParsedKey {
  std::string name;
  uint32_t key_id;
  std::string key;  // public key or seed, without the algorithm byte
};

// Parses "<name>+<hex id>+<base64(0x01 || 32 bytes)>"; the caller checks the id.
absl::StatusOr<ParsedKey> ParseKeyText(std::string_view text, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(fmt::format("malformed {}: {}", what, why));
  };
  size_t first = text.find('+');
  if (first == std::string_view::npos) return bad("expected <name>+<key id>+<key>");
  size_t second = text.find('+', first + 1);
  if (second == std::string_view::npos) return bad("expected <name>+<key id>+<key>");
  std::string_view name = text.substr(0, first);
  std::string_view hex_id = text.substr(first + 1, second - first - 1);
  std::string_view b64 = text.substr(second + 1);
  if (!IsValidKeyName(name)) return bad("invalid key name");
  std::optional<std::string> id = crypto::HexDecode(hex_id);
  if (hex_id.size() != 8 || !id) return bad("the key id must be 8 hex digits");
  std::optional<std::string> key = crypto::Base64Decode(b64);
  if (!key) return bad("the key is not valid base64");
  if (key->empty() || (*key)[0] != kAlgEd25519) return bad("unsupported key algorithm");
  if (key->size() != 1 + 32) return bad("an Ed25519 key must be 32 bytes");
  return ParsedKey{std::string(name), KeyIdFromBytes(*id), key->substr(1)};
}

}  // namespace

uint32_t KeyId(std::string_view name, std::string_view public_key) {
  std::string input(name);
  input.push_back('\n');
  input.push_back(kAlgEd25519);
  input.append(public_key);
  return KeyIdFromBytes(crypto::Sha256(input));
}

bool IsValidKeyName(std::string_view name) {
  if (name.empty()) return false;
  size_t pos = 0;
  while (pos < name.size()) {
    std::optional<uint32_t> cp = NextCodePoint(name, pos);
    if (!cp || *cp == '+' || IsSpaceOrControl(*cp)) return false;
  }
  return true;
}

absl::StatusOr<std::string> FormatVerifierKey(std::string_view name, std::string_view public_key) {
  if (!IsValidKeyName(name)) return absl::InvalidArgumentError("invalid key name");
  if (public_key.size() != crypto::ed25519::kPublicKeySize) {
    return absl::InvalidArgumentError("an Ed25519 public key must be 32 bytes");
  }
  return fmt::format("{}+{:08x}+{}", name, KeyId(name, public_key),
                     crypto::Base64Encode(std::string(1, kAlgEd25519) + std::string(public_key)));
}

absl::StatusOr<VerifierKey> ParseVerifierKey(std::string_view vkey) {
  absl::StatusOr<ParsedKey> parsed = ParseKeyText(vkey, "verifier key");
  if (!parsed.ok()) return parsed.status();
  if (parsed->key_id != KeyId(parsed->name, parsed->key)) {
    return absl::InvalidArgumentError("malformed verifier key: key id does not match the key");
  }
  return VerifierKey{std::move(parsed->name), parsed->key_id, std::move(parsed->key)};
}

absl::StatusOr<std::string> FormatSignerKey(std::string_view name, std::string_view seed) {
  if (!IsValidKeyName(name)) return absl::InvalidArgumentError("invalid key name");
  absl::StatusOr<std::string> public_key = crypto::ed25519::PublicKeyFromSeed(seed);
  if (!public_key.ok()) return public_key.status();
  // Built by appending: GCC 12 at -O3 reports a false -Wrestrict for `string(1, c) + string`.
  std::string keyed;
  keyed.reserve(1 + seed.size());
  keyed.push_back(kAlgEd25519);
  keyed.append(seed);
  return fmt::format("{}{}+{:08x}+{}", kSignerPrefix, name, KeyId(name, *public_key),
                     crypto::Base64Encode(keyed));
}

absl::StatusOr<SignerKey> ParseSignerKey(std::string_view skey) {
  if (skey.substr(0, kSignerPrefix.size()) != kSignerPrefix) {
    return absl::InvalidArgumentError("malformed signer key: missing PRIVATE+KEY+ prefix");
  }
  absl::StatusOr<ParsedKey> parsed = ParseKeyText(skey.substr(kSignerPrefix.size()), "signer key");
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<std::string> public_key = crypto::ed25519::PublicKeyFromSeed(parsed->key);
  if (!public_key.ok()) return public_key.status();
  if (parsed->key_id != KeyId(parsed->name, *public_key)) {
    return absl::InvalidArgumentError("malformed signer key: key id does not match the key");
  }
  return SignerKey{std::move(parsed->name), parsed->key_id, std::move(parsed->key)};
}

absl::StatusOr<std::string> Sign(std::string_view body, std::string_view name,
                                 std::string_view seed) {
  if (body.empty() || body.back() != '\n') {
    return absl::InvalidArgumentError("note body must end with a newline");
  }
  if (!IsValidKeyName(name)) return absl::InvalidArgumentError("invalid key name");
  absl::StatusOr<std::string> public_key = crypto::ed25519::PublicKeyFromSeed(seed);
  if (!public_key.ok()) return public_key.status();
  absl::StatusOr<std::string> signature = crypto::ed25519::Sign(seed, body);
  if (!signature.ok()) return signature.status();
  std::string blob = KeyIdBytes(KeyId(name, *public_key)) + *signature;
  return fmt::format("{}\n{}{} {}\n", body, kSigPrefix, name, crypto::Base64Encode(blob));
}

absl::StatusOr<OpenedNote> Open(std::string_view note, const std::vector<VerifierKey>& keys) {
  // The body may itself hold blank lines; signature lines never do, so the last blank line is
  // the separator.
  size_t split = note.rfind("\n\n");
  if (split == std::string_view::npos) return Malformed("no blank line before the signatures");
  OpenedNote opened;
  opened.body = std::string(note.substr(0, split + 1));
  std::string_view sigs = note.substr(split + 2);
  if (sigs.empty()) return Malformed("no signature lines");
  if (sigs.back() != '\n') return Malformed("the last signature line does not end in a newline");

  std::set<std::pair<std::string, uint32_t>> seen;
  size_t count = 0;
  while (!sigs.empty()) {
    size_t eol = sigs.find('\n');
    std::string_view line = sigs.substr(0, eol);
    sigs.remove_prefix(eol + 1);
    if (++count > kMaxSignatures) return Malformed("more than 100 signatures");
    if (line.substr(0, kSigPrefix.size()) != kSigPrefix) {
      return Malformed("a signature line does not start with an em dash and a space");
    }
    line.remove_prefix(kSigPrefix.size());
    size_t space = line.find(' ');
    if (space == std::string_view::npos) return Malformed("a signature line has no signature");
    std::string name(line.substr(0, space));
    if (!IsValidKeyName(name)) return Malformed("a signature line has an invalid key name");
    std::optional<std::string> blob = crypto::Base64Decode(line.substr(space + 1));
    if (!blob) return Malformed(fmt::format("signature by {} is not valid base64", name));
    if (blob->size() <= 4) return Malformed(fmt::format("signature by {} is too short", name));
    uint32_t key_id = KeyIdFromBytes(*blob);

    const VerifierKey* key = nullptr;
    for (const VerifierKey& k : keys) {
      if (k.name == name && k.key_id == key_id) key = &k;
    }
    if (key == nullptr) continue;  // unknown signers are allowed and ignored
    if (!seen.emplace(name, key_id).second) {
      return Malformed(fmt::format("two signatures by key {}+{:08x}", name, key_id));
    }
    if (!crypto::ed25519::Verify(key->public_key, opened.body, std::string_view(*blob).substr(4))) {
      return absl::UnauthenticatedError(
          fmt::format("signature by key {}+{:08x} does not verify", name, key_id));
    }
    opened.signed_by.push_back(std::move(name));
  }
  if (opened.signed_by.empty()) {
    return absl::UnauthenticatedError("note has no signature by a known key");
  }
  return opened;
}

}  // namespace custos::audit::note
