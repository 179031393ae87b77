#include "client/approval_client.h"

#include <grpcpp/client_context.h>

#include "absl/strings/cord.h"
#include "google/rpc/status.pb.h"

namespace approvald::client {

namespace v1 = approvals::v1;

namespace {
constexpr char kErrorInfoUrl[] = "type.googleapis.com/google.rpc.ErrorInfo";
}  // namespace

RpcError DecodeError(const grpc::Status& status) {
  RpcError e;
  e.code = static_cast<absl::StatusCode>(status.error_code());
  e.message = status.error_message();
  google::rpc::Status details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const auto& any : details.details()) {
      google::rpc::ErrorInfo info;
      google::rpc::BadRequest bad;
      if (any.Is<google::rpc::ErrorInfo>() && any.UnpackTo(&info)) e.info = info;
      if (any.Is<google::rpc::BadRequest>() && any.UnpackTo(&bad)) e.bad_request = bad;
    }
  }
  return e;
}

absl::Status ToAbslStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  RpcError e = DecodeError(status);
  absl::Status out(e.code, e.message);
  if (e.info) out.SetPayload(kErrorInfoUrl, absl::Cord(e.info->SerializeAsString()));
  return out;
}

std::string ReasonOf(const absl::Status& status) {
  auto payload = status.GetPayload(kErrorInfoUrl);
  if (!payload) return "";
  google::rpc::ErrorInfo info;
  if (!info.ParseFromString(std::string(*payload))) return "";
  return info.reason();
}

ApprovalClient::ApprovalClient(std::shared_ptr<grpc::Channel> channel, std::string token,
                               absl::Duration timeout)
    : stub_(v1::ApprovalService::NewStub(channel)), token_(std::move(token)), timeout_(timeout) {}

void ApprovalClient::Prepare(grpc::ClientContext& ctx) const {
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  if (!token_.empty()) ctx.AddMetadata("authorization", "Bearer " + token_);
}

#define APPROVALD_UNARY(Name, Rpc, Req, Resp)                 \
  absl::StatusOr<Resp> ApprovalClient::Name(const Req& req) { \
    grpc::ClientContext ctx;                                  \
    Prepare(ctx);                                             \
    Resp resp;                                                \
    grpc::Status st = stub_->Rpc(&ctx, req, &resp);           \
    if (!st.ok()) return ToAbslStatus(st);                    \
    return resp;                                              \
  }

APPROVALD_UNARY(Create, CreateApproval, v1::CreateApprovalRequest, v1::Approval)
APPROVALD_UNARY(List, ListApprovals, v1::ListApprovalsRequest, v1::ListApprovalsResponse)
APPROVALD_UNARY(Approve, Approve, v1::ApproveRequest, v1::Approval)
APPROVALD_UNARY(Reject, Reject, v1::RejectRequest, v1::Approval)
APPROVALD_UNARY(Cancel, CancelApproval, v1::CancelApprovalRequest, v1::Approval)
#undef APPROVALD_UNARY

absl::StatusOr<v1::ListActionTypesResponse> ApprovalClient::ListActionTypes() {
  grpc::ClientContext ctx;
  Prepare(ctx);
  v1::ListActionTypesResponse resp;
  grpc::Status st = stub_->ListActionTypes(&ctx, v1::ListActionTypesRequest(), &resp);
  if (!st.ok()) return ToAbslStatus(st);
  return resp;
}

absl::StatusOr<v1::Approval> ApprovalClient::Get(const std::string& id) {
  grpc::ClientContext ctx;
  Prepare(ctx);
  v1::GetApprovalRequest req;
  req.set_id(id);
  v1::Approval resp;
  grpc::Status st = stub_->GetApproval(&ctx, req, &resp);
  if (!st.ok()) return ToAbslStatus(st);
  return resp;
}

}  // namespace approvald::client
