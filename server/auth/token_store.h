#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "handlers/policy.h"

namespace approvald::server {

/// The authenticated caller: its name and roles (the policy's Caller).
using Principal = handlers::Caller;

/// Bearer tokens, stored only as SHA-256 hashes. The file has one line per token:
/// `<sha256-hex-of-token> <principal> [<role>[,<role>...]]`; blank lines and `#` comments are
/// ignored. A line `cert <identity> [<role>,...]` maps a client certificate identity (mTLS with
/// --principal-from-cert) to the principal <identity> with those roles. Immutable once built, so
/// safe to share between threads.
class TokenStore {
 public:
  /// INVALID_ARGUMENT naming `source` and the line for a malformed line or a repeated hash.
  static absl::StatusOr<TokenStore> Parse(absl::string_view contents, absl::string_view source);
  /// NOT_FOUND if the file cannot be read; else as Parse.
  static absl::StatusOr<TokenStore> Load(const std::string& path);

  /// The principal of an `authorization` header value ("Bearer <token>").
  /// UNAUTHENTICATED if it is missing, malformed or unknown.
  absl::StatusOr<Principal> Authenticate(absl::string_view authorization) const;

  /// The principal for a verified client certificate identity (SAN URI or DNS name, else CN),
  /// mapped by a `cert <identity> [<role>,...]` line. UNAUTHENTICATED if it has no line.
  absl::StatusOr<Principal> AuthenticateCertificate(const std::string& identity) const;

  size_t size() const { return by_hash_.size(); }

 private:
  absl::flat_hash_map<std::string, Principal> by_hash_;
  absl::flat_hash_map<std::string, Principal> by_certificate_;
};

/// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(absl::string_view data);

}  // namespace approvald::server
