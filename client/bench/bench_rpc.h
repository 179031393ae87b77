#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "approvals/v1/approvals.grpc.pb.h"
#include "client/bench/bench_options.h"

namespace approvald::bench {

namespace v1 = approvals::v1;
using Clock = std::chrono::steady_clock;

inline int64_t MicrosSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
}

/// A unary call in flight: the completion queue's tag. Made on one thread, completed on the
/// queue's: Publish (before the call starts) and Receive (before Complete) order the two in a
/// way ThreadSanitizer sees (gRPC's own libraries are not instrumented, so it cannot see the
/// queue's own ordering).
class CallTag {
 public:
  virtual ~CallTag() = default;
  virtual void Complete() = 0;
  void Publish() { published_.store(true, std::memory_order_release); }
  void Receive() const { (void)published_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> published_{false};
};

/// One stub per HTTP/2 connection; calls are spread over them. Unary calls complete on one
/// completion queue, drained by one thread of the bench's own: a call's callback runs there and
/// starts the next call from there, with no hand-off between threads (gRPC's callback API
/// wakes one of its threads per completion, which cost the bench a third more CPU per call).
class Stubs {
 public:
  explicit Stubs(const Options& options);
  /// Shuts the queue down after the calls (WaitForCalls first).
  ~Stubs();
  v1::ApprovalService::Stub& Next();
  v1::ExecutionService::Stub& NextExecution();
  grpc::CompletionQueue* cq() { return &cq_; }
  /// Every call's deadline (--deadline), as clients set one.
  std::chrono::milliseconds call_deadline() const { return deadline_; }

 private:
  std::chrono::milliseconds deadline_;
  std::vector<std::unique_ptr<v1::ApprovalService::Stub>> stubs_;
  std::vector<std::unique_ptr<v1::ExecutionService::Stub>> execution_stubs_;
  std::atomic<size_t> next_{0};
  grpc::CompletionQueue cq_;
  std::thread driver_;
};

/// "OK", the gRPC code name, or "CODE/REASON" from the google.rpc.ErrorInfo detail.
std::string AnswerOf(const grpc::Status& status);

/// Calls whose state still exists (their callback may still be running).
inline std::atomic<int64_t> g_calls_alive{0};
/// Waits until every call's state is freed: before the stubs and channels go away.
void WaitForCalls();

/// Starts one unary call on `stubs`' completion queue; `done` runs on the queue's thread with
/// the status and response, then the call's state is freed. `start(ctx, req, cq)` names the
/// RPC: it returns the stub's PrepareAsync reader. The deadline is --deadline, plus `wait` for a
/// call that long-polls that long.
template <class Req, class Resp, class Start>
void Launch(Stubs& stubs, const std::string& token, Req request, Start start,
            std::function<void(const grpc::Status&, Resp&)> done,
            std::chrono::milliseconds wait = std::chrono::milliseconds(0)) {
  struct Pending final : CallTag {
    grpc::ClientContext ctx;
    Req req;
    Resp resp;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>> reader;
    std::function<void(const grpc::Status&, Resp&)> done;
    void Complete() override {
      done(status, resp);
      Release();
    }
    // Launch and the completion each hold the call; the last to let go frees it.
    void Release() {
      if (holders.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      delete this;
      g_calls_alive.fetch_sub(1);
    }
    std::atomic<int> holders{2};
  };
  g_calls_alive.fetch_add(1);
  auto* call = new Pending;
  call->req = std::move(request);
  call->done = std::move(done);
  call->ctx.AddMetadata("authorization", "Bearer " + token);
  call->ctx.set_deadline(std::chrono::system_clock::now() + stubs.call_deadline() + wait);
  call->reader = start(&call->ctx, call->req, stubs.cq());
  call->Publish();
  call->reader->StartCall();
  call->reader->Finish(&call->resp, &call->status, static_cast<CallTag*>(call));
  call->Release();
}

/// The CreateApprovalRequest of the bench: --action-type, a --payload-bytes string field.
v1::CreateApprovalRequest MakeCreate(const Options& options, const std::string& summary);

void CreateAsync(Stubs& stubs, const Options& options, const std::string& summary,
                 std::function<void(const grpc::Status&, v1::Approval&)> done);
void DecideAsync(Stubs& stubs, const std::string& token, bool approve, const std::string& id,
                 std::function<void(const grpc::Status&, v1::Approval&)> done);

}  // namespace approvald::bench
