#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace approvald::server {

/// The one place where an absl::Status becomes a grpc::Status. The code is kept; the details
/// are a serialized google.rpc.Status whose `details` hold the status' google.rpc.ErrorInfo and
/// google.rpc.BadRequest payloads, so any gRPC client can decode the reason.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace approvald::server
