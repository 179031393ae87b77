#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "approvals/v1/approvals.pb.h"
#include "google/rpc/error_details.pb.h"

namespace approvald::db {

inline constexpr absl::string_view kErrorDomain = "approvald";
inline constexpr absl::string_view kErrorInfoUrl = "type.googleapis.com/google.rpc.ErrorInfo";
inline constexpr absl::string_view kBadRequestUrl = "type.googleapis.com/google.rpc.BadRequest";

using ErrorMetadata = std::map<std::string, std::string>;

/// A status of `code` that carries a machine-readable reason (a google.rpc.ErrorInfo payload with
/// domain "approvald"). The gRPC edge turns the payloads into the response's status details.
absl::Status ReasonError(absl::StatusCode code, approvals::v1::ErrorReason reason,
                         absl::string_view message, const ErrorMetadata& metadata = {});

/// INVALID_ARGUMENT naming the bad field (a google.rpc.BadRequest payload), optionally with a
/// reason.
absl::Status FieldError(
    absl::string_view field, absl::string_view description,
    approvals::v1::ErrorReason reason = approvals::v1::ERROR_REASON_UNSPECIFIED);

/// INVALID_ARGUMENT with one violation per entry (field, description).
absl::Status FieldErrors(const std::vector<std::pair<std::string, std::string>>& violations,
                         approvals::v1::ErrorReason reason, absl::string_view message);

/// The ErrorInfo attached to a status, if any.
[[nodiscard]] std::optional<google::rpc::ErrorInfo> GetErrorInfo(const absl::Status& status);
/// The reason of a status (ERROR_REASON_UNSPECIFIED when none).
approvals::v1::ErrorReason GetReason(const absl::Status& status);
/// The BadRequest attached to a status, if any.
[[nodiscard]] std::optional<google::rpc::BadRequest> GetBadRequest(const absl::Status& status);

}  // namespace approvald::db
