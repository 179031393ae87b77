#pragma once

// Metadata keys by which the HTTP gateway and the service speak to each other over the
// in-process channel.

namespace approvald::server {

/// A verified client certificate's identity, sent by the gateway as `<secret> <identity>` and
/// trusted only with the service's own secret (ServiceOptions::gateway_cert_secret).
inline constexpr char kGatewayCertKey[] = "approvald-gateway-cert";

/// Initial metadata that a server-streaming method sends once its stream is live (before any
/// message), so that the gateway answers 200 then, and an HTTP error status when the call
/// fails before it.
inline constexpr char kStreamStartedKey[] = "approvald-stream";

}  // namespace approvald::server
