#pragma once

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "server/gateway/http_routes.h"
#include "server/ops/http_exchange.h"

namespace approvald::server {

/// The request message of a matched route: its JSON body (protobuf's JSON mapping, unknown
/// fields refused), then its query parameters (by proto or JSON field name; repeated fields
/// repeat), then its path bindings. INVALID_ARGUMENT naming the field or parameter otherwise.
/// `aliases` name query parameters by another name (e.g. "after" for "after_event_id").
absl::StatusOr<std::unique_ptr<google::protobuf::Message>> BuildRequest(
    const RouteMatch& match, const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& query,
    const std::vector<std::pair<std::string, std::string>>& aliases = {});

/// The bytes of a gRPC byte buffer (a serialized message).
std::string BufferBytes(const grpc::ByteBuffer& buffer);

/// A message in protobuf's JSON mapping (lowerCamelCase names, enums by name).
std::string ToJson(const google::protobuf::Message& message);

/// The HTTP status of a gRPC code (the mapping of google/rpc/code.proto).
int HttpStatusOf(grpc::StatusCode code);

/// A `google.rpc.Status` JSON body (code, message, details with the ErrorInfo reason) with the
/// HTTP status of its code.
HttpAnswer ErrorAnswer(const grpc::Status& status);
/// The same for an error of the gateway itself.
HttpAnswer ErrorAnswer(const absl::Status& status);

}  // namespace approvald::server
