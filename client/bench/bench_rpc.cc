#include "client/bench/bench_rpc.h"

#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/approval_client.h"

namespace approvald::bench {

Stubs::Stubs(const Options& options) : deadline_(static_cast<int64_t>(options.deadline_s * 1000)) {
  for (int i = 0; i < options.channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("approval_bench.channel", i);  // distinct arguments: a connection of its own
    auto channel =
        grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args);
    stubs_.push_back(v1::ApprovalService::NewStub(channel));
    execution_stubs_.push_back(v1::ExecutionService::NewStub(channel));
  }
  driver_ = std::thread([this] {
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
      auto* call = static_cast<CallTag*>(tag);
      call->Receive();
      call->Complete();
    }
  });
}

Stubs::~Stubs() {
  cq_.Shutdown();
  driver_.join();
}

void WaitForCalls() {
  while (g_calls_alive.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

v1::ApprovalService::Stub& Stubs::Next() { return *stubs_[next_.fetch_add(1) % stubs_.size()]; }

v1::ExecutionService::Stub& Stubs::NextExecution() {
  return *execution_stubs_[next_.fetch_add(1) % execution_stubs_.size()];
}

std::string AnswerOf(const grpc::Status& status) {
  if (status.ok()) return "OK";
  const client::RpcError error = client::DecodeError(status);
  std::string answer = absl::StatusCodeToString(error.code);
  if (error.info && !error.info->reason().empty())
    absl::StrAppend(&answer, "/", error.info->reason());
  return answer;
}

v1::CreateApprovalRequest MakeCreate(const Options& options, const std::string& summary) {
  v1::CreateApprovalRequest req;
  req.set_action_type(options.action_type);
  req.set_summary(summary);
  if (options.payload_bytes > 0) {
    (*req.mutable_action_data()->mutable_fields())["payload"].set_string_value(
        std::string(static_cast<size_t>(options.payload_bytes), 'x'));
  } else {
    req.mutable_action_data();
  }
  return req;
}

void CreateAsync(Stubs& stubs, const Options& options, const std::string& summary,
                 std::function<void(const grpc::Status&, v1::Approval&)> done) {
  auto& stub = stubs.Next();
  Launch<v1::CreateApprovalRequest, v1::Approval>(
      stubs, options.requester_token, MakeCreate(options, summary),
      [&stub](auto* ctx, const auto& req, auto* cq) {
        return stub.PrepareAsyncCreateApproval(ctx, req, cq);
      },
      std::move(done));
}

void DecideAsync(Stubs& stubs, const std::string& token, bool approve, const std::string& id,
                 std::function<void(const grpc::Status&, v1::Approval&)> done) {
  auto& stub = stubs.Next();
  if (approve) {
    v1::ApproveRequest req;
    req.set_id(id);
    Launch<v1::ApproveRequest, v1::Approval>(
        stubs, token, std::move(req),
        [&stub](auto* ctx, const auto& r, auto* cq) {
          return stub.PrepareAsyncApprove(ctx, r, cq);
        },
        std::move(done));
  } else {
    v1::RejectRequest req;
    req.set_id(id);
    req.set_reason("approval-bench");
    Launch<v1::RejectRequest, v1::Approval>(
        stubs, token, std::move(req),
        [&stub](auto* ctx, const auto& r, auto* cq) { return stub.PrepareAsyncReject(ctx, r, cq); },
        std::move(done));
  }
}

}  // namespace approvald::bench
