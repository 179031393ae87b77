#pragma once

#include <string>

#include "absl/status/statusor.h"

struct MHD_Connection;

namespace approvald::server {

/// The identity of the client certificate that a TLS connection presented and that its CA
/// bundle verified: its first SAN URI, else its first SAN DNS name, else its subject CN (as the
/// gRPC port names it). UNAUTHENTICATED when no certificate came or it does not verify.
absl::StatusOr<std::string> VerifiedClientIdentity(MHD_Connection* connection);

}  // namespace approvald::server
