#pragma once

#include <grpcpp/channel.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "approvals/v1/approvals.grpc.pb.h"
#include "google/rpc/error_details.pb.h"

namespace approvald::client {

/// A typed error from the server: the gRPC code and message plus the google.rpc details.
struct RpcError {
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string message;
  std::optional<google::rpc::ErrorInfo> info;
  std::optional<google::rpc::BadRequest> bad_request;
};

/// Decodes a gRPC status, including its grpc-status-details-bin (google.rpc.Status).
RpcError DecodeError(const grpc::Status& status);

/// The status' google.rpc.ErrorInfo reason, or "" (for statuses from ApprovalClient).
std::string ReasonOf(const absl::Status& status);

/// Wraps the ApprovalService stub: every call carries the bearer token and a deadline.
/// Errors keep the gRPC code; the ErrorInfo travels as a payload (read it with ReasonOf).
/// Thread-safe.
class ApprovalClient {
 public:
  ApprovalClient(std::shared_ptr<grpc::Channel> channel, std::string token,
                 absl::Duration timeout = absl::Seconds(10));

  absl::StatusOr<approvals::v1::Approval> Create(const approvals::v1::CreateApprovalRequest& req);
  absl::StatusOr<approvals::v1::Approval> Get(const std::string& id);
  absl::StatusOr<approvals::v1::ListApprovalsResponse> List(
      const approvals::v1::ListApprovalsRequest& req);
  absl::StatusOr<approvals::v1::Approval> Approve(const approvals::v1::ApproveRequest& req);
  absl::StatusOr<approvals::v1::Approval> Reject(const approvals::v1::RejectRequest& req);
  absl::StatusOr<approvals::v1::Approval> Cancel(const approvals::v1::CancelApprovalRequest& req);
  absl::StatusOr<approvals::v1::ListActionTypesResponse> ListActionTypes();

 private:
  void Prepare(grpc::ClientContext& ctx) const;

  std::unique_ptr<approvals::v1::ApprovalService::Stub> stub_;
  std::string token_;
  absl::Duration timeout_;
};

/// The absl form of a gRPC status (code, message, and the ErrorInfo as a payload).
absl::Status ToAbslStatus(const grpc::Status& status);

}  // namespace approvald::client
