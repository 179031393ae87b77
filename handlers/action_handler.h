#pragma once

#include <google/protobuf/struct.pb.h>

#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "db/approval.h"
#include "db/query.h"
#include "db/tx.h"

namespace approvald::handlers {

/// Runs one kind of action. Implementations are stateless or internally synchronised: one
/// instance serves every worker thread at once.
class ActionHandler {
 public:
  virtual ~ActionHandler() = default;

  /// Checks action_data when the approval is created. INVALID_ARGUMENT (with field violations)
  /// if it cannot be executed as given.
  virtual absl::Status Validate(const google::protobuf::Struct& action_data) const = 0;

  /// Executes the approved action inside the decision's transaction; every write goes through
  /// `tx`, so it commits or rolls back with the decision. Returns the execution result.
  /// `approval.decided_by` is the reviewer whose approval runs the action.
  /// A transient error (ABORTED, UNAVAILABLE, DEADLINE_EXCEEDED) leaves the approval pending;
  /// any other error rolls back the handler's writes and marks the approval FAILED.
  virtual absl::StatusOr<google::protobuf::Struct> Execute(db::Tx& tx,
                                                           const db::ApprovalRecord& approval) = 0;

  /// A handler whose Execute touches nothing and always returns the same result returns that
  /// result here. approvald may then decide its approvals in one statement, without calling
  /// Execute (the default, nullopt: Execute is always called, inside the transaction).
  virtual std::optional<google::protobuf::Struct> FixedResult() const { return std::nullopt; }

  /// Statements the handler runs, prepared at start-up so that a broken one stops the server
  /// (or a config reload) with an error naming the action type.
  virtual std::vector<db::Query> Statements() const { return {}; }
};

}  // namespace approvald::handlers
