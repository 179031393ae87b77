#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "approvals/v1/approvals.grpc.pb.h"
#include "client/bench/bench_options.h"

namespace approvald::bench {

namespace v1 = approvals::v1;
using Clock = std::chrono::steady_clock;

inline int64_t MicrosSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
}

/// One stub per HTTP/2 connection; calls are spread over them.
class Stubs {
 public:
  explicit Stubs(const Options& options);
  v1::ApprovalService::Stub& Next();

 private:
  std::vector<std::unique_ptr<v1::ApprovalService::Stub>> stubs_;
  std::atomic<size_t> next_{0};
};

/// "OK", the gRPC code name, or "CODE/REASON" from the google.rpc.ErrorInfo detail.
std::string AnswerOf(const grpc::Status& status);

/// Calls whose state still exists (their callback may still be running on a gRPC thread).
inline std::atomic<int64_t> g_calls_alive{0};
/// Waits until every call's state is freed: before the stubs and channels go away.
void WaitForCalls();

/// Starts one callback-API call; `done` runs on a gRPC thread with the status and response,
/// then the call's state is freed. `start(ctx, req, resp, callback)` names the RPC.
template <class Req, class Resp, class Start>
void Launch(const std::string& token, Req request, Start start,
            std::function<void(const grpc::Status&, Resp&)> done) {
  struct Pending {
    grpc::ClientContext ctx;
    Req req;
    Resp resp;
    std::function<void(const grpc::Status&, Resp&)> done;
  };
  g_calls_alive.fetch_add(1);
  auto* call = new Pending;
  call->req = std::move(request);
  call->done = std::move(done);
  call->ctx.AddMetadata("authorization", "Bearer " + token);
  call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  start(&call->ctx, &call->req, &call->resp, [call](grpc::Status status) {
    call->done(status, call->resp);
    delete call;
    g_calls_alive.fetch_sub(1);
  });
}

/// The CreateApprovalRequest of the bench: --action-type, a --payload-bytes string field.
v1::CreateApprovalRequest MakeCreate(const Options& options, const std::string& summary);

void CreateAsync(Stubs& stubs, const Options& options, const std::string& summary,
                 std::function<void(const grpc::Status&, v1::Approval&)> done);
void DecideAsync(Stubs& stubs, const std::string& token, bool approve, const std::string& id,
                 std::function<void(const grpc::Status&, v1::Approval&)> done);

}  // namespace approvald::bench
