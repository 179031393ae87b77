#include "db/errors.h"

#include "absl/strings/cord.h"

namespace approvald::db {
namespace {

template <typename Message>
std::optional<Message> GetPayload(const absl::Status& status, absl::string_view url) {
  absl::optional<absl::Cord> payload = status.GetPayload(url);
  if (!payload) return std::nullopt;
  Message message;
  if (!message.ParseFromString(std::string(*payload))) return std::nullopt;
  return message;
}

}  // namespace

absl::Status ReasonError(absl::StatusCode code, approvals::v1::ErrorReason reason,
                         absl::string_view message, const ErrorMetadata& metadata) {
  absl::Status status(code, message);
  google::rpc::ErrorInfo info;
  info.set_reason(approvals::v1::ErrorReason_Name(reason));
  info.set_domain(std::string(kErrorDomain));
  for (const auto& [key, value] : metadata) (*info.mutable_metadata())[key] = value;
  status.SetPayload(kErrorInfoUrl, absl::Cord(info.SerializeAsString()));
  return status;
}

absl::Status FieldErrors(const std::vector<std::pair<std::string, std::string>>& violations,
                         approvals::v1::ErrorReason reason, absl::string_view message) {
  absl::Status status = reason == approvals::v1::ERROR_REASON_UNSPECIFIED
                            ? absl::InvalidArgumentError(message)
                            : ReasonError(absl::StatusCode::kInvalidArgument, reason, message);
  google::rpc::BadRequest bad;
  for (const auto& [field, description] : violations) {
    auto* v = bad.add_field_violations();
    v->set_field(field);
    v->set_description(description);
  }
  status.SetPayload(kBadRequestUrl, absl::Cord(bad.SerializeAsString()));
  return status;
}

absl::Status FieldError(absl::string_view field, absl::string_view description,
                        approvals::v1::ErrorReason reason) {
  std::string message = std::string(field) + ": " + std::string(description);
  return FieldErrors({{std::string(field), std::string(description)}}, reason, message);
}

std::optional<google::rpc::ErrorInfo> GetErrorInfo(const absl::Status& status) {
  return GetPayload<google::rpc::ErrorInfo>(status, kErrorInfoUrl);
}

approvals::v1::ErrorReason GetReason(const absl::Status& status) {
  auto info = GetErrorInfo(status);
  approvals::v1::ErrorReason reason = approvals::v1::ERROR_REASON_UNSPECIFIED;
  if (info) approvals::v1::ErrorReason_Parse(info->reason(), &reason);
  return reason;
}

std::optional<google::rpc::BadRequest> GetBadRequest(const absl::Status& status) {
  return GetPayload<google::rpc::BadRequest>(status, kBadRequestUrl);
}

}  // namespace approvald::db
