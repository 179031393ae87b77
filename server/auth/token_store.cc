#include "server/auth/token_store.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "db/approval.h"
#include "db/utf8.h"

namespace approvald::server {
namespace {

bool IsSha256Hex(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Why `text` (a principal, a role or a certificate identity) cannot be one, or "" if it can:
// it must be printable UTF-8, since it is stored with every decision and written into logs.
std::string WhyNotPrintable(absl::string_view text) {
  if (text.size() > 256) return "longer than 256 bytes";
  if (!db::IsValidUtf8(text)) return "not valid UTF-8";
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) return absl::StrFormat("a control character (0x%02x)", c);
    // C1 controls (U+0080-U+009F), and the line separators and bidirectional overrides
    // (U+2028-U+202E, U+2066-U+2069) that can make a log line read as something else.
    if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xa0) {
      return "a control character (U+0080-U+009F)";
    }
    if (c == 0xe2 && i + 2 < text.size()) {
      const unsigned char b1 = static_cast<unsigned char>(text[i + 1]);
      const unsigned char b2 = static_cast<unsigned char>(text[i + 2]);
      if ((b1 == 0x80 && b2 >= 0xa8 && b2 <= 0xae) || (b1 == 0x81 && b2 >= 0xa6 && b2 <= 0xa9)) {
        return "a line separator or bidirectional control character";
      }
    }
  }
  return "";
}

}  // namespace

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * SHA256_DIGEST_LENGTH);
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

absl::StatusOr<TokenStore> TokenStore::Parse(absl::string_view contents, absl::string_view source) {
  TokenStore store;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> cols =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line_no, ": ", what));
    };
    if (cols.size() < 2 || cols.size() > 3) {
      return error("expected `<sha256-hex-of-token> <principal> [<role>,...]`");
    }
    for (size_t i = 1; i < cols.size(); ++i) {
      if (std::string why = WhyNotPrintable(cols[i]); !why.empty()) {
        return error(
            absl::StrCat(i == 1 ? (cols[0] == "cert" ? "the certificate identity" : "the principal")
                                : "the roles",
                         " must be printable UTF-8; it holds ", why));
      }
    }
    if (absl::EqualsIgnoreCase(cols[1], db::kSystemActor)) {
      return error(absl::StrCat("\"", cols[1],
                                "\" is reserved: it is the actor of what approvald does itself "
                                "(expiries)"));
    }
    if (cols[0] == "cert") {
      Principal p;
      p.name = std::string(cols[1]);
      if (cols.size() == 3) {
        for (absl::string_view role : absl::StrSplit(cols[2], ',', absl::SkipEmpty())) {
          p.roles.emplace_back(role);
        }
      }
      if (!store.by_certificate_.emplace(p.name, p).second) {
        return error("this certificate identity is listed twice");
      }
      continue;
    }
    if (!IsSha256Hex(cols[0])) return error("the first column must be 64 hex digits (a SHA-256)");
    Principal p;
    p.name = std::string(cols[1]);
    if (cols.size() == 3) {
      for (absl::string_view role : absl::StrSplit(cols[2], ',', absl::SkipEmpty())) {
        p.roles.emplace_back(role);
      }
    }
    if (!store.by_hash_.emplace(absl::AsciiStrToLower(cols[0]), std::move(p)).second) {
      return error("this token hash is listed twice");
    }
  }
  return store;
}

absl::StatusOr<Principal> TokenStore::AuthenticateCertificate(const std::string& identity) const {
  auto it = by_certificate_.find(identity);
  if (it == by_certificate_.end()) {
    return absl::UnauthenticatedError(
        absl::StrCat("client certificate identity \"", identity, "\" is not in the tokens file"));
  }
  return it->second;
}

absl::StatusOr<TokenStore> TokenStore::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read tokens file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return Parse(buffer.str(), path);
}

absl::StatusOr<Principal> TokenStore::Authenticate(absl::string_view authorization) const {
  absl::string_view value = absl::StripAsciiWhitespace(authorization);
  if (value.empty()) {
    return absl::UnauthenticatedError("missing `authorization: Bearer <token>` metadata");
  }
  if (value.size() < 7 || !absl::EqualsIgnoreCase(value.substr(0, 7), "bearer ")) {
    return absl::UnauthenticatedError("authorization must be `Bearer <token>`");
  }
  absl::string_view token = absl::StripAsciiWhitespace(value.substr(7));
  // Compared by the token's hash, never the secret itself, and in constant time: every
  // configured hash is compared in full with CRYPTO_memcmp, so the time taken tells nothing of
  // how much of any of them the presented token's hash shares.
  const std::string presented = Sha256Hex(token);
  const Principal* found = nullptr;
  for (const auto& [hash, principal] : by_hash_) {
    if (hash.size() == presented.size() &&
        CRYPTO_memcmp(hash.data(), presented.data(), presented.size()) == 0) {
      found = &principal;
    }
  }
  if (token.empty() || found == nullptr) return absl::UnauthenticatedError("unknown token");
  return *found;
}

}  // namespace approvald::server
