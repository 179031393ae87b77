// WatchApprovals: the event stream, replayed from the log and then live from the event hub.

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/api/approval_service.h"
#include "server/api/call_metadata.h"
#include "server/status_conversion.h"
#include "server/watch/watch_reactor.h"

namespace approvald::server {

namespace v1 = approvals::v1;

namespace {

// Ends a stream at once (authentication or validation failed).
class FailedStream final : public grpc::ServerWriteReactor<v1::ApprovalEvent> {
 public:
  explicit FailedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerWriteReactor<v1::ApprovalEvent>* ApprovalServiceImpl::WatchApprovals(
    grpc::CallbackServerContext* ctx, const v1::WatchApprovalsRequest* req) {
  absl::StatusOr<Principal> principal = Authenticate(ctx);
  CallInfo call = StartCall(ctx, "WatchApprovals", principal);
  absl::Status st = principal.ok() ? ValidateWatch(*req) : principal.status();
  if (st.ok() && options_.hub == nullptr) st = absl::UnavailableError("no event stream");
  if (st.ok() && draining_) st = ShuttingDown();
  const std::string after = absl::StrCat(" after_event_id=", req->after_event_id());
  if (!st.ok()) {
    RecordRpc(call, st, absl::StrCat(after, " sent=0"));
    return new FailedStream(ToGrpcStatus(st));
  }
  // Ids compared as stored (lower case), each once.
  v1::WatchApprovalsRequest filter = *req;
  for (std::string& id : *filter.mutable_approval_ids()) absl::AsciiStrToLower(&id);
  std::sort(filter.mutable_approval_ids()->begin(), filter.mutable_approval_ids()->end());
  filter.mutable_approval_ids()->erase(
      std::unique(filter.mutable_approval_ids()->begin(), filter.mutable_approval_ids()->end()),
      filter.mutable_approval_ids()->end());
  auto* reactor = new WatchReactor(
      *options_.hub, store_, executor_, std::move(filter),
      WatchLimits{options_.watch_buffer, options_.watch_buffer_bytes, options_.budget},
      options_.logger);
  // Logged and counted when the stream ends, like a unary call when it answers.
  reactor->SetOnDone([this, call, after](const grpc::Status& status, int64_t sent) {
    RecordRpc(
        call,
        absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message()),
        absl::StrCat(after, " sent=", sent));
  });
  // Live now: said at once, so that a client (the HTTP gateway) tells a stream that started
  // from a call that failed.
  ctx->AddInitialMetadata(kStreamStartedKey, "1");
  reactor->StartSendInitialMetadata();
  reactor->Begin();
  return reactor;
}

}  // namespace approvald::server
