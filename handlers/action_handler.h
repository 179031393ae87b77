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

struct ExecutorPolicy;  // handlers/external_handler.h
struct WebhookTarget;   // handlers/webhook_target.h

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
  ///
  /// The error contract, the only statement of it (tests/pg/handler_errors_pgtest.cc checks each
  /// code):
  /// - ABORTED, UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED mean "not now": the whole transaction
  ///   rolls back, the approval stays PENDING at its version, and the caller gets that code (it
  ///   may retry). So does a transient database error inside the action (serialization failure,
  ///   deadlock, lost connection), whatever the handler returns after it.
  /// - Any other code (INVALID_ARGUMENT, FAILED_PRECONDITION, NOT_FOUND, INTERNAL, UNKNOWN, ...)
  ///   is the action failing for good: the handler's writes roll back, the approval becomes
  ///   FAILED with the message in execution_error, and the caller gets FAILED_PRECONDITION /
  ///   EXECUTION_FAILED. A statement of the handler that fails (a constraint, a row count) is
  ///   such a failure even if the handler then returns OK.
  virtual absl::StatusOr<google::protobuf::Struct> Execute(db::Tx& tx,
                                                           const db::ApprovalRecord& approval) = 0;

  /// A handler whose Execute touches nothing and always returns the same result returns that
  /// result here. approvald may then decide its approvals in one statement, without calling
  /// Execute (the default, nullopt: Execute is always called, inside the transaction).
  virtual std::optional<google::protobuf::Struct> FixedResult() const { return std::nullopt; }

  /// Statements the handler runs, prepared at start-up so that a broken one stops the server
  /// (or a config reload) with an error naming the action type.
  virtual std::vector<db::Query> Statements() const { return {}; }

  /// An external type's executor policy (handlers/external_handler.h): approving it enqueues
  /// an execution for the caller's workers instead of calling Execute. Null for the others.
  virtual const ExecutorPolicy* executor() const { return nullptr; }

  /// A `webhook` type's target: its executions are run by approvald itself (an HTTP POST), not
  /// claimed by callers' workers. Null for the others.
  virtual const WebhookTarget* webhook() const { return nullptr; }
};

}  // namespace approvald::handlers
