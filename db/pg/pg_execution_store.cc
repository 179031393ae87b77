#include "db/pg/pg_execution_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "db/errors.h"
#include "db/pg/approval_row.h"
#include "db/pg/pg_time.h"
#include "db/pg/pg_tx.h"
#include "db/queries.h"
#include "db/status_macros.h"

namespace approvald::db::pg {
namespace {

// Reaped per claim: enough to keep up, bounded so that one claim stays quick.
constexpr int kReapBatch = 100;
// Transient failures (serialization, a lost connection before COMMIT) tried again.
constexpr int kAttempts = 3;

// A row of execution_columns.sql (x_...) beside its approval's columns.
absl::StatusOr<ExecutionRecord> ParseExecutionRow(const Rows& rows, size_t row) {
  ExecutionRecord x;
  x.id = rows.GetString(row, "x_id");
  x.state = rows.GetString(row, "x_state");
  ASSIGN_OR_RETURN(int64_t attempt, rows.GetInt(row, "x_attempt"));
  ASSIGN_OR_RETURN(int64_t max_attempts, rows.GetInt(row, "x_max_attempts"));
  x.attempt = static_cast<int>(attempt);
  x.max_attempts = static_cast<int>(max_attempts);
  x.lease_token = rows.Get(row, "x_lease_token");
  x.lease_holder = rows.Get(row, "x_lease_holder");
  ASSIGN_OR_RETURN(x.lease_expire_time, OptionalPgTimestamp(rows, row, "x_lease_expires_at"));
  ASSIGN_OR_RETURN(x.due_time, OptionalPgTimestamp(rows, row, "x_due_at"));
  x.last_error = rows.Get(row, "x_last_error");
  x.result_json = rows.Get(row, "x_result");
  ASSIGN_OR_RETURN(x.approval, ParseApprovalRow(rows, row));
  return x;
}

absl::Status LeaseLost(const ExecutionRecord& x, absl::string_view why) {
  return ReasonError(absl::StatusCode::kFailedPrecondition, approvals::v1::LEASE_LOST,
                     absl::StrCat("execution ", x.id, ": ", why),
                     {{"execution_id", x.id},
                      {"state", x.state},
                      {"attempt", absl::StrCat(x.attempt)},
                      {"approval_id", x.approval.id}});
}

// What a worker's call on one execution does once the row is locked and the call may go on:
// its statement's rows, or an answer without a change (`replay`).
struct Step {
  const Query* query = nullptr;  ///< null: answer the locked row as it is
  Params params;
};

// Locks the execution, checks the caller's rights and the token, then runs what `decide` says.
absl::StatusOr<ExecutionRecord> OnLocked(
    ConnectionPool& pool, const LeaseCall& call, const MayExecute& may,
    const std::function<absl::StatusOr<Step>(const ExecutionRecord&)>& decide) {
  ExecutionRecord out;
  RETURN_IF_ERROR(RunInTransaction(pool, call.deadline, [&](PgTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(Rows locked, tx.Exec(queries::kLockExecution, {call.execution_id}));
    if (locked.empty()) {
      return absl::NotFoundError(absl::StrCat("no execution ", call.execution_id));
    }
    ASSIGN_OR_RETURN(ExecutionRecord x, ParseExecutionRow(locked, 0));
    RETURN_IF_ERROR(may(x.approval.action_type));
    if (!x.lease_token || *x.lease_token != call.lease_token) {
      return LeaseLost(x,
                       "this lease token is not the execution's current one (its lease "
                       "expired and another worker claimed it)");
    }
    ASSIGN_OR_RETURN(Step step, decide(x));
    if (step.query == nullptr) {
      out = std::move(x);
      return tx.Rollback();
    }
    ASSIGN_OR_RETURN(Rows rows, tx.ExecAndCommit(*step.query, step.params));
    if (rows.empty()) return absl::InternalError("execution vanished under its row lock");
    ASSIGN_OR_RETURN(out, ParseExecutionRow(rows, 0));
    return absl::OkStatus();
  }));
  return out;
}

// The usual call, in order (its token current, its type allowed), in one statement that is its
// own transaction; nullopt when the statement changed nothing and the call needs judging.
absl::StatusOr<std::optional<ExecutionRecord>> InOneStatement(ConnectionPool& pool,
                                                              absl::Time deadline,
                                                              const Query& query, Params params) {
  std::optional<ExecutionRecord> out;
  RETURN_IF_ERROR(RunInTransaction(
      pool, deadline,
      [&](PgTx& tx) -> absl::Status {
        out.reset();
        ASSIGN_OR_RETURN(Rows rows, tx.ExecAndCommit(query, params));
        if (rows.empty()) return absl::OkStatus();
        ASSIGN_OR_RETURN(ExecutionRecord x, ParseExecutionRow(rows, 0));
        out = std::move(x);
        return absl::OkStatus();
      },
      kAttempts));
  return out;
}

}  // namespace

absl::StatusOr<ClaimResult> PgExecutionStore::Claim(const ClaimInput& in) {
  ClaimResult result;
  const std::string types = TextArray(in.action_types);
  // One statement, its own transaction: one round trip (see claim_executions.sql).
  RETURN_IF_ERROR(RunInTransaction(
      pool_, in.deadline,
      [&](PgTx& tx) -> absl::Status {
        result = ClaimResult();
        ASSIGN_OR_RETURN(Rows rows,
                         tx.ExecAndCommit(queries::kClaimExecutions,
                                          {types, absl::StrCat(in.max), in.worker,
                                           MillisParam(in.lease), absl::StrCat(kReapBatch)}));
        for (size_t i = 0; i < rows.size(); ++i) {
          ASSIGN_OR_RETURN(ExecutionRecord x, ParseExecutionRow(rows, i));
          result.claimed.push_back(std::move(x));
        }
        return absl::OkStatus();
      },
      kAttempts));
  if (!result.claimed.empty()) return result;
  ASSIGN_OR_RETURN(PoolLease lease, pool_.Acquire(in.deadline));
  ASSIGN_OR_RETURN(Rows due, lease->Exec(queries::kNextDueExecution, {types}));
  if (due.Get(0, "due_in_ms")) {
    ASSIGN_OR_RETURN(int64_t ms, due.GetInt(0, "due_in_ms"));
    result.next_due = absl::Milliseconds(std::max<int64_t>(ms, 0));
  }
  return result;
}

absl::StatusOr<ExecutionRecord> PgExecutionStore::Extend(const LeaseCall& call,
                                                         absl::Duration lease,
                                                         const MayExecute& may) {
  const std::string types = TextArray(call.types);
  if (!call.types.empty()) {
    ASSIGN_OR_RETURN(
        std::optional<ExecutionRecord> done,
        InOneStatement(pool_, call.deadline, queries::kExtendLease,
                       {call.execution_id, MillisParam(lease), call.lease_token, types}));
    if (done) return *done;
  }
  return OnLocked(pool_, call, may, [&](const ExecutionRecord& x) -> absl::StatusOr<Step> {
    if (x.state != kRunning) return LeaseLost(x, absl::StrCat("it is ", x.state));
    return Step{&queries::kExtendLease,
                {x.id, MillisParam(lease), call.lease_token, TextArray({x.approval.action_type})}};
  });
}

absl::StatusOr<ExecutionRecord> PgExecutionStore::Complete(const LeaseCall& call,
                                                           const std::string& result_json,
                                                           const MayExecute& may) {
  if (!call.types.empty()) {
    ASSIGN_OR_RETURN(std::optional<ExecutionRecord> done,
                     InOneStatement(pool_, call.deadline, queries::kCompleteExecution,
                                    {call.execution_id, result_json, call.worker, call.lease_token,
                                     TextArray(call.types)}));
    if (done) return *done;
  }
  return OnLocked(pool_, call, may, [&](const ExecutionRecord& x) -> absl::StatusOr<Step> {
    if (x.state == kSucceeded) return Step{};  // a repeat: the stored outcome
    // Queued with this token: its lease ran out, but nobody claimed it since; the work is done.
    if (x.state != kRunning && x.state != kQueued) {
      return LeaseLost(x, absl::StrCat("it is ", x.state));
    }
    return Step{
        &queries::kCompleteExecution,
        {x.id, result_json, call.worker, call.lease_token, TextArray({x.approval.action_type})}};
  });
}

absl::StatusOr<ExecutionRecord> PgExecutionStore::Fail(const LeaseCall& call,
                                                       const std::string& error,
                                                       const RetryDelay& retry,
                                                       const MayExecute& may) {
  return OnLocked(pool_, call, may, [&](const ExecutionRecord& x) -> absl::StatusOr<Step> {
    if (x.state == kSucceeded) return LeaseLost(x, "it has succeeded");
    // Already failed, or due again, under this token: a repeat (or a lease that ran out first).
    if (x.state != kRunning) return Step{};
    const bool again = retry != nullptr && x.attempt < x.max_attempts;
    return Step{&queries::kFailExecution,
                {x.id, error, again ? "true" : "false",
                 MillisParam(again ? retry(x.attempt) : absl::ZeroDuration()), call.worker}};
  });
}

}  // namespace approvald::db::pg
