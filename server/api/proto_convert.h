#pragma once

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "approvals/v1/approvals.pb.h"
#include "db/approval.h"
#include "db/execution_store.h"

namespace approvald::server {

/// Struct -> compact JSON object text (as stored in jsonb).
absl::StatusOr<std::string> StructToJson(const google::protobuf::Struct& value);
/// JSON object text -> Struct. INTERNAL if it is not a JSON object.
absl::StatusOr<google::protobuf::Struct> JsonToStruct(absl::string_view json);

google::protobuf::Timestamp ToTimestamp(absl::Time t);
absl::Time FromTimestamp(const google::protobuf::Timestamp& ts);
absl::Duration FromDuration(const google::protobuf::Duration& d);
google::protobuf::Duration ToDuration(absl::Duration d);

/// The stored name of a status enum ("pending"), or nullopt for UNSPECIFIED / unknown values.
[[nodiscard]] std::optional<absl::string_view> StatusStorageName(
    approvals::v1::ApprovalStatus status);

/// Fills `out` from a stored approval. INTERNAL if stored JSON does not parse.
absl::Status ToProto(const db::ApprovalRecord& record, approvals::v1::Approval* out);

/// An execution as the API shows it (its idempotency key is its id), with its approval.
absl::Status ExecutionToProto(const db::ExecutionRecord& x, approvals::v1::Execution* out);

}  // namespace approvald::server
