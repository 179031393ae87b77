// Settling a COMMIT lost with its connection: the outcome is read back, never guessed and never
// re-run (see PgApprovalStore in pg_approval_store.h).

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "db/errors.h"
#include "db/pg/approval_row.h"
#include "db/pg/decision_ids.h"
#include "db/pg/pg_approval_store.h"
#include "db/pg/pg_error.h"
#include "db/queries.h"
#include "db/status_macros.h"

namespace approvald::db::pg {
namespace {

// How long a call may spend learning the outcome of a commit lost with its connection.
absl::Time ResolveDeadline(absl::Time deadline) {
  return std::min(deadline, absl::Now() + absl::Seconds(30));
}

}  // namespace

absl::StatusOr<ApprovalRecord> PgApprovalStore::ResolveLostDecision(const DecideInput& input,
                                                                    const CommitIntent& intent,
                                                                    const std::string& call,
                                                                    const absl::Status& lost) {
  const absl::Time deadline = ResolveDeadline(input.deadline);
  RETURN_IF_ERROR(SettleLostCommit(pool_, lost, deadline));
  ApprovalRecord current;
  std::optional<absl::Status> replayed;
  bool ours = false;
  RETURN_IF_ERROR(RunInTransaction(pool_, deadline, [&](PgTx& tx) -> absl::Status {
    // The row lock also waits for the lost transaction, should it still be finishing.
    ASSIGN_OR_RETURN(Rows rows, tx.Exec(queries::kLockApproval, {input.id}));
    if (rows.empty()) return absl::NotFoundError(absl::StrCat("approval ", input.id, " not found"));
    ASSIGN_OR_RETURN(current, ParseApprovalRow(rows, 0));
    if (input.request_id) {
      ASSIGN_OR_RETURN(Rows found,
                       tx.Exec(queries::kFindDecisionRequest, {input.actor, *input.request_id}));
      if (!found.empty()) replayed = ReplayOutcome(found);
    } else {
      ASSIGN_OR_RETURN(Rows found, tx.Exec(queries::kFindCallEvent, {input.id, call}));
      ours = found.GetBool(0, "found");
    }
    return absl::OkStatus();
  }));
  const absl::Status not_recorded = MarkTransient(
      absl::UnavailableError("the decision was not recorded (the database connection was lost "
                             "during COMMIT); nothing changed, retry"));
  if (input.request_id) {  // the call's own record says whether it committed, and its answer
    if (!replayed) return not_recorded;
    if (!replayed->ok()) return *replayed;
    return current;
  }
  if (ours) {  // this call's own event: its decision (or vote, failure, expiry) committed
    if (!intent.answer.ok()) return intent.answer;
    return current;
  }
  if (current.status == kPending) return not_recorded;
  return ReasonError(
      absl::StatusCode::kFailedPrecondition,
      current.status == kExpired ? approvals::v1::EXPIRED : approvals::v1::ALREADY_PROCESSED,
      absl::StrCat("approval ", current.id, " is already ", current.status),
      StateMetadata(current));
}

absl::StatusOr<CreateResult> PgApprovalStore::ResolveLostCreate(const CreateInput& input,
                                                                const std::string& id,
                                                                const absl::Status& lost) {
  const absl::Time deadline = ResolveDeadline(input.deadline);
  RETURN_IF_ERROR(SettleLostCommit(pool_, lost, deadline));
  absl::StatusOr<ApprovalRecord> row = Get(id, deadline);
  if (row.ok()) return CreateResult{*std::move(row), /*created=*/true};
  if (row.status().code() == absl::StatusCode::kNotFound) {
    return MarkTransient(
        absl::UnavailableError("the approval was not created (the database connection was lost "
                               "during COMMIT); nothing changed, retry"));
  }
  return row.status();
}

}  // namespace approvald::db::pg
