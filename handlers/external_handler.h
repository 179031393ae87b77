#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "handlers/action_handler.h"
#include "handlers/backoff.h"
#include "handlers/config_reader.h"

namespace approvald::handlers {

/// How the executions of an external type are worked: who may, under which lease, how often.
struct ExecutorPolicy {
  std::vector<std::string> executor_roles;  ///< who may claim, extend, complete and fail
  absl::Duration lease = absl::Seconds(30);
  int max_attempts = 5;
  handlers::Backoff backoff;
};

/// Reads an executor policy's keys (executor_roles, lease, max_attempts, backoff) from an
/// action type's entry; `roles_required`: the type must name executor_roles.
absl::Status ParseExecutorPolicy(const ConfigReader& r, const YAML::Node& entry,
                                 const std::string& path, bool roles_required, ExecutorPolicy* p);

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
