#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "handlers/action_handler.h"

namespace approvald::handlers {

/// How the executions of an external type are worked: who may, under which lease, how often.
struct ExecutorPolicy {
  std::vector<std::string> executor_roles;  ///< who may claim, extend, complete and fail
  absl::Duration lease = absl::Seconds(30);
  int max_attempts = 5;
  absl::Duration backoff_initial = absl::Seconds(1);  ///< before the 2nd attempt; doubles
  absl::Duration backoff_max = absl::Minutes(5);
  double jitter = 0.2;  ///< each delay is randomly up to this fraction shorter or longer

  /// The delay before the attempt after `attempt` (1-based) failed; `unit` in [0, 1) draws the
  /// jitter.
  absl::Duration Backoff(int attempt, double unit) const;
};

/// `handler: external`: the approval's action is run by the caller's own workers through
/// ExecutionService. Approving enqueues one execution in the decision's transaction (the store
/// does, seeing `executor()`); nothing runs inside it.
class ExternalHandler final : public ActionHandler {
 public:
  explicit ExternalHandler(ExecutorPolicy policy) : policy_(std::move(policy)) {}
  absl::Status Validate(const google::protobuf::Struct& action_data) const override;
  absl::StatusOr<google::protobuf::Struct> Execute(db::Tx& tx,
                                                   const db::ApprovalRecord& approval) override;
  const ExecutorPolicy* executor() const override { return &policy_; }

 private:
  const ExecutorPolicy policy_;
};

}  // namespace approvald::handlers
