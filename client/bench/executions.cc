// The execute mode: approvals of an external type approved at --concurrency while --workers
// claim (long-polling, as real workers do) and complete their executions.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "client/bench/modes.h"

namespace approvald::bench {
namespace {

// A worker's long-poll, long enough to idle; its call's deadline is --deadline on top.
constexpr int kClaimWaitSeconds = 5;

// When each approval's Approve answer arrived, and how long its execution took to be claimed.
class ClaimClock {
 public:
  void Approved(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    const Clock::time_point now = Clock::now();
    if (auto it = claimed_.find(id); it != claimed_.end()) {
      latencies_.push_back(0);  // claimed before the approval's answer reached us
      claimed_.erase(it);
    } else {
      approved_[id] = now;
    }
  }
  void Claimed(const std::string& id, bool measured) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = approved_.find(id);
    if (it == approved_.end()) {
      if (measured) claimed_.emplace(id, Clock::now());
      return;
    }
    if (measured) latencies_.push_back(MicrosSince(it->second));
    approved_.erase(it);
  }
  std::vector<int64_t> Sorted() {
    std::lock_guard<std::mutex> lock(mu_);
    std::sort(latencies_.begin(), latencies_.end());
    return latencies_;
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, Clock::time_point> approved_;
  std::unordered_map<std::string, Clock::time_point> claimed_;
  std::vector<int64_t> latencies_;
};

}  // namespace

absl::StatusOr<ModeResult> RunExecute(Stubs& stubs, const Options& options) {
  const int count =
      options.approvals > 0
          ? options.approvals
          : static_cast<int>((options.warmup_s + options.duration_s) *
                             std::min(4000.0, 1000.0 * std::max(1, options.concurrency)));
  absl::StatusOr<std::vector<std::string>> ids = PrepareApprovals(stubs, options, count);
  if (!ids.ok()) return ids.status();

  ClaimClock clock;
  std::atomic<bool> measuring{false};
  std::atomic<bool> approvals_done{false};
  LoopResult workers;
  // Workers: claim one (long-polling), complete it at once; a loop's call is the pair.
  std::thread worker_thread([&] {
    workers = RunClosedLoop(
        options.workers, options.warmup_s, options.duration_s, /*quiet=*/true, "execute",
        [&](int, DoneFn done) {
          if (approvals_done.load()) return false;
          v1::ClaimExecutionsRequest claim;
          claim.add_action_types(options.action_type);
          claim.mutable_wait()->set_seconds(kClaimWaitSeconds);
          Launch<v1::ClaimExecutionsRequest, v1::ClaimExecutionsResponse>(
              stubs, options.worker_token, std::move(claim),
              [&](grpc::ClientContext* ctx, const v1::ClaimExecutionsRequest& req,
                  grpc::CompletionQueue* cq) {
                return stubs.NextExecution().PrepareAsyncClaimExecutions(ctx, req, cq);
              },
              [&, done](const grpc::Status& st, v1::ClaimExecutionsResponse& resp) {
                if (!st.ok() || resp.executions_size() == 0) {
                  done(st.ok() ? "EMPTY" : AnswerOf(st));
                  return;
                }
                const v1::Execution& x = resp.executions(0);
                clock.Claimed(x.approval().id(), measuring.load());
                v1::CompleteExecutionRequest complete;
                complete.set_execution_id(x.execution_id());
                complete.set_lease_token(x.lease_token());
                (*complete.mutable_result()->mutable_fields())["ok"].set_bool_value(true);
                Launch<v1::CompleteExecutionRequest, v1::Execution>(
                    stubs, options.worker_token, std::move(complete),
                    [&](grpc::ClientContext* ctx, const v1::CompleteExecutionRequest& req,
                        grpc::CompletionQueue* cq) {
                      return stubs.NextExecution().PrepareAsyncCompleteExecution(ctx, req, cq);
                    },
                    [done](const grpc::Status& st2, v1::Execution&) { done(AnswerOf(st2)); });
              },
              std::chrono::seconds(kClaimWaitSeconds));
          return true;
        });
  });
  std::atomic<size_t> next{0};
  const Clock::time_point begin = Clock::now();
  ModeResult result;
  result.loop = RunClosedLoop(
      options.concurrency, options.warmup_s, options.duration_s, options.quiet, "approve",
      [&](int, DoneFn done) {
        const size_t i = next.fetch_add(1);
        if (i >= ids->size()) return false;
        measuring = MicrosSince(begin) >= static_cast<int64_t>(options.warmup_s * 1e6);
        const std::string id = (*ids)[i];
        DecideAsync(stubs, options.token, /*approve=*/true, id,
                    [&, done, id](const grpc::Status& st, v1::Approval&) {
                      if (st.ok()) clock.Approved(id);
                      done(AnswerOf(st));
                    });
        return true;
      },
      options.mark_phases);
  approvals_done = true;
  worker_thread.join();

  const double approve_rate =
      static_cast<double>(result.loop.summary.calls) / std::max(result.loop.window_s, 1e-9);
  const auto completed = workers.summary.answers.count("OK") ? workers.summary.answers.at("OK") : 0;
  const double execute_rate = static_cast<double>(completed) / std::max(workers.window_s, 1e-9);
  const std::vector<int64_t> latency = clock.Sorted();
  result.extra.push_back({"executions_completed_per_s", execute_rate});
  result.extra.push_back({"executions_per_approval", execute_rate / std::max(approve_rate, 1e-9)});
  result.extra.push_back({"claim_after_approve_p50_ms", Quantile(latency, 0.50) / 1000.0});
  result.extra.push_back({"claim_after_approve_p99_ms", Quantile(latency, 0.99) / 1000.0});
  result.extra.push_back({"claims_timed", static_cast<double>(latency.size())});
  result.extra.push_back({"workers", static_cast<double>(options.workers)});
  for (const auto& [answer, n] : workers.summary.answers) {
    if (answer != "OK") {
      result.notes.push_back(absl::StrCat("workers: ", n, " claims answered ", answer));
    }
  }
  if (result.loop.ran_out) {
    result.notes.push_back("the prepared approvals ran out before the end: raise --approvals");
  }
  return result;
}

}  // namespace approvald::bench
