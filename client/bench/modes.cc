// The closed-loop modes: create, approve, reject, mixed.
#include "client/bench/modes.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <random>

#include "absl/strings/str_cat.h"

namespace approvald::bench {

absl::StatusOr<std::vector<std::string>> PrepareApprovals(Stubs& stubs, const Options& options,
                                                          int count) {
  std::vector<std::string> ids;
  ids.reserve(static_cast<size_t>(count));
  std::mutex mu;
  std::atomic<int> issued{0};
  std::string first_error;
  if (!options.quiet) std::fprintf(stderr, "preparing %d approvals...\n", count);
  RunClosedLoop(std::min(32, std::max(options.concurrency, 8)), 0, 3600, /*quiet=*/true, "prepare",
                [&](int, DoneFn done) {
                  if (issued.fetch_add(1) >= count) return false;
                  CreateAsync(stubs, options, "approval-bench",
                              [&, done](const grpc::Status& st, v1::Approval& a) {
                                {
                                  std::lock_guard<std::mutex> lock(mu);
                                  if (st.ok()) {
                                    ids.push_back(a.id());
                                  } else if (first_error.empty()) {
                                    first_error = st.error_message();
                                    issued = count;  // stop early
                                  }
                                }
                                done(AnswerOf(st));
                              });
                  return true;
                });
  if (!first_error.empty()) {
    return absl::FailedPreconditionError("cannot create approvals to decide: " + first_error);
  }
  return ids;
}

absl::StatusOr<ModeResult> RunCreate(Stubs& stubs, const Options& options) {
  ModeResult result;
  result.loop = RunClosedLoop(
      options.concurrency, options.warmup_s, options.duration_s, options.quiet, "create",
      [&](int, DoneFn done) {
        CreateAsync(stubs, options, "approval-bench",
                    [done](const grpc::Status& st, v1::Approval&) { done(AnswerOf(st)); });
        return true;
      },
      options.mark_phases);
  return result;
}

absl::StatusOr<ModeResult> RunDecide(Stubs& stubs, const Options& options, bool approve) {
  // Enough for the whole run at a rate well above what one machine sustains, unless given.
  const int count =
      options.approvals > 0
          ? options.approvals
          : static_cast<int>((options.warmup_s + options.duration_s) *
                             std::min(6000.0, 1500.0 * std::max(1, options.concurrency)));
  absl::StatusOr<std::vector<std::string>> ids = PrepareApprovals(stubs, options, count);
  if (!ids.ok()) return ids.status();
  std::atomic<size_t> next{0};
  ModeResult result;
  result.loop = RunClosedLoop(
      options.concurrency, options.warmup_s, options.duration_s, options.quiet,
      approve ? "approve" : "reject",
      [&](int, DoneFn done) {
        const size_t i = next.fetch_add(1);
        if (i >= ids->size()) return false;
        DecideAsync(stubs, options.token, approve, (*ids)[i],
                    [done](const grpc::Status& st, v1::Approval&) { done(AnswerOf(st)); });
        return true;
      },
      options.mark_phases);
  if (result.loop.ran_out) {
    result.notes.push_back(absl::StrCat("the ", ids->size(),
                                        " prepared approvals ran out before the end: raise "
                                        "--approvals (the window was shortened)"));
  }
  result.extra.push_back({"prepared", static_cast<double>(ids->size())});
  return result;
}

absl::StatusOr<ModeResult> RunMixed(Stubs& stubs, const Options& options) {
  std::vector<std::string> ops;
  std::vector<int> weights;
  for (const auto& [op, weight] : options.mix) {
    ops.push_back(op);
    weights.push_back(weight);
  }
  // Pending approvals (to approve) and recent ones (to get); seeded so every op has work.
  absl::StatusOr<std::vector<std::string>> seed =
      PrepareApprovals(stubs, options, std::max(100, options.concurrency * 4));
  if (!seed.ok()) return seed.status();
  std::mutex mu;
  std::vector<std::string> pending = *seed;
  std::vector<std::string> recent = *seed;
  size_t recent_next = 0;
  std::mutex rng_mu;
  std::mt19937_64 rng(42);
  std::discrete_distribution<int> pick(weights.begin(), weights.end());
  ModeResult result;
  result.loop = RunClosedLoop(
      options.concurrency, options.warmup_s, options.duration_s, options.quiet, "mixed",
      [&](int, DoneFn done) {
        std::string op;
        size_t r = 0;
        {
          std::lock_guard<std::mutex> lock(rng_mu);
          op = ops[static_cast<size_t>(pick(rng))];
          r = rng();
        }
        std::string id;
        {
          std::lock_guard<std::mutex> lock(mu);
          if (op == "approve" && pending.empty()) op = "create";
          if (op == "approve") {
            id = pending.back();
            pending.pop_back();
          } else if (op == "get") {
            id = recent[r % recent.size()];
          }
        }
        auto finish = [done, op](const grpc::Status& st) { done(op + " " + AnswerOf(st)); };
        if (op == "create") {
          CreateAsync(stubs, options, "approval-bench mixed",
                      [&, finish](const grpc::Status& st, v1::Approval& a) {
                        if (st.ok()) {
                          std::lock_guard<std::mutex> lock(mu);
                          pending.push_back(a.id());
                          if (recent.size() < 10000) {
                            recent.push_back(a.id());
                          } else {
                            recent[recent_next++ % recent.size()] = a.id();
                          }
                        }
                        finish(st);
                      });
        } else if (op == "approve") {
          DecideAsync(stubs, options.token, true, id,
                      [finish](const grpc::Status& st, v1::Approval&) { finish(st); });
        } else if (op == "get") {
          auto& stub = stubs.Next();
          v1::GetApprovalRequest req;
          req.set_id(id);
          Launch<v1::GetApprovalRequest, v1::Approval>(
              stubs, options.token, std::move(req),
              [&stub](auto* c, const auto& q, auto* cq) {
                return stub.PrepareAsyncGetApproval(c, q, cq);
              },
              [finish](const grpc::Status& st, v1::Approval&) { finish(st); });
        } else {
          auto& stub = stubs.Next();
          v1::ListApprovalsRequest req;
          req.add_statuses(v1::APPROVAL_STATUS_PENDING);
          req.set_page_size(20);
          Launch<v1::ListApprovalsRequest, v1::ListApprovalsResponse>(
              stubs, options.token, std::move(req),
              [&stub](auto* c, const auto& q, auto* cq) {
                return stub.PrepareAsyncListApprovals(c, q, cq);
              },
              [finish](const grpc::Status& st, v1::ListApprovalsResponse&) { finish(st); });
        }
        return true;
      },
      options.mark_phases);
  return result;
}

}  // namespace approvald::bench
