#include "client/event_stream.h"

#include <grpcpp/client_context.h>

#include <algorithm>
#include <chrono>
#include <iostream>

#include "client/approval_client.h"

namespace approvald::client {

namespace v1 = approvals::v1;

absl::Status FollowEvents(v1::ApprovalService::Stub& stub, const std::string& token,
                          v1::WatchApprovalsRequest req, absl::Time deadline,
                          const std::function<bool(const v1::ApprovalEvent&)>& on_event) {
  absl::Duration backoff = absl::Milliseconds(200);
  for (;;) {
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    if (deadline != absl::InfiniteFuture()) ctx.set_deadline(absl::ToChronoTime(deadline));
    auto reader = stub.WatchApprovals(&ctx, req);
    v1::ApprovalEvent event;
    while (reader->Read(&event)) {
      req.set_after_event_id(event.event_id());
      backoff = absl::Milliseconds(200);
      if (!on_event(event)) {
        ctx.TryCancel();
        (void)reader->Finish();
        return absl::OkStatus();
      }
    }
    const grpc::Status st = reader->Finish();
    const grpc::StatusCode code = st.error_code();
    if (code == grpc::StatusCode::DEADLINE_EXCEEDED || absl::Now() >= deadline) {
      return absl::DeadlineExceededError("timed out");
    }
    if (code == grpc::StatusCode::UNAUTHENTICATED || code == grpc::StatusCode::INVALID_ARGUMENT ||
        code == grpc::StatusCode::PERMISSION_DENIED || code == grpc::StatusCode::UNIMPLEMENTED) {
      return ToAbslStatus(st);
    }
    std::cerr << "approvalctl: stream ended ("
              << absl::StatusCodeToString(static_cast<absl::StatusCode>(code))
              << (st.error_message().empty() ? "" : ": " + st.error_message())
              << "); resuming after event " << req.after_event_id() << "\n";
    absl::SleepFor(std::min(backoff, deadline - absl::Now()));
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
}

bool IsFinal(const v1::Approval& a) {
  if (a.status() == v1::APPROVAL_STATUS_PENDING || a.status() == v1::APPROVAL_STATUS_UNSPECIFIED) {
    return false;
  }
  // Approved, but its external execution still under way: not done yet.
  const v1::ExecutionState x = a.execution().state();
  return x != v1::EXECUTION_STATE_QUEUED && x != v1::EXECUTION_STATE_RUNNING;
}

}  // namespace approvald::client
