// PgApprovalStore: decisions (the full path under the row lock, and the one-statement path).

#include "db/pg/pg_approval_store.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <optional>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "db/errors.h"
#include "db/pg/approval_row.h"
#include "db/pg/decision_ids.h"
#include "db/pg/pg_error.h"
#include "db/pg/pg_events.h"
#include "db/pg/pg_time.h"
#include "db/queries.h"
#include "db/status_macros.h"

namespace approvald::db::pg {
namespace {

using approvals::v1::ErrorReason;

constexpr absl::string_view kHandlerSavepoint = "approvald_handler";

Param Opt(const std::string& s) { return s.empty() ? Param() : Param(s); }

absl::string_view TargetStatus(Decision d) {
  switch (d) {
    case Decision::kApprove:
      return kApproved;
    case Decision::kReject:
      return kRejected;
    case Decision::kCancel:
      return kCancelled;
  }
  return kApproved;
}

absl::string_view MethodName(Decision d) {
  switch (d) {
    case Decision::kApprove:
      return "approve";
    case Decision::kReject:
      return "reject";
    case Decision::kCancel:
      return "cancel";
  }
  return "approve";
}

// The handler error contract (handlers/action_handler.h): these codes say "not now" and leave
// the approval pending; any other is the action failing for good.
bool IsTransientCode(absl::StatusCode code) {
  return code == absl::StatusCode::kAborted || code == absl::StatusCode::kUnavailable ||
         code == absl::StatusCode::kDeadlineExceeded || code == absl::StatusCode::kCancelled;
}

// The Tx a handler sees: opens a savepoint before its first statement (so a handler that writes
// nothing costs no round trip) and remembers whether any statement failed.
class HandlerTx final : public Tx {
 public:
  explicit HandlerTx(PgTx& tx) : tx_(tx) {}
  absl::StatusOr<Rows> Exec(const Query& query, const Params& params) override {
    if (!savepoint_) {
      RETURN_IF_ERROR(tx_.Savepoint(kHandlerSavepoint));
      savepoint_ = true;
    }
    absl::StatusOr<Rows> rows = tx_.Exec(query, params);
    if (!rows.ok() && first_error_.ok()) first_error_ = rows.status();
    return rows;
  }
  bool savepoint() const { return savepoint_; }
  const absl::Status& first_error() const { return first_error_; }

 private:
  PgTx& tx_;
  bool savepoint_ = false;
  absl::Status first_error_;
};

absl::StatusOr<ApprovalRecord> RecordDecision(PgTx& tx, const ApprovalRecord& locked,
                                              absl::string_view status, Param decided_by,
                                              Param reason, Param result, Param error,
                                              absl::string_view actor, const Param& request_id,
                                              const std::string& call, bool commit = false,
                                              std::optional<ExternalExecution> external = {}) {
  Params params = {locked.id,
                   absl::StrCat(locked.version),
                   std::string(status),
                   std::move(decided_by),
                   std::move(reason),
                   std::move(result),
                   std::move(error),
                   std::string(actor),
                   request_id,
                   call,
                   external ? "true" : "false",
                   absl::StrCat(external ? external->max_attempts : 1)};
  ASSIGN_OR_RETURN(Rows rows, commit ? tx.ExecAndCommit(queries::kRecordDecision, params)
                                     : tx.Exec(queries::kRecordDecision, params));
  if (rows.empty()) {
    return absl::InternalError(
        absl::StrCat("approval ", locked.id, " changed version while its row was locked"));
  }
  return ParseApprovalRow(rows, 0);
}

// Stores the first outcome of a call that carries a request id, in the decision's transaction.
absl::Status RecordOutcome(PgTx& tx, const DecideInput& input, const std::string& approval_id,
                           const absl::Status& outcome, bool commit = false) {
  if (!input.request_id) return absl::OkStatus();
  std::string info_json;
  if (auto info = GetErrorInfo(outcome)) {
    (void)google::protobuf::util::MessageToJsonString(*info, &info_json);
  }
  if (info_json.empty()) info_json = "{}";
  const Params params = {input.actor,
                         *input.request_id,
                         approval_id,
                         std::string(MethodName(input.decision)),
                         absl::StrCat(static_cast<int>(outcome.code())),
                         "",
                         std::string(outcome.message()),
                         info_json};
  return (commit ? tx.ExecAndCommit(queries::kInsertDecisionRequest, params)
                 : tx.Exec(queries::kInsertDecisionRequest, params))
      .status();
}

// A domain error that is the call's answer: recorded for request id replay, then committed.
absl::Status AnswerWithError(PgTx& tx, const DecideInput& input, const std::string& approval_id,
                             absl::Status error, bool must_commit) {
  if (input.request_id) {
    RETURN_IF_ERROR(RecordOutcome(tx, input, approval_id, error));
    must_commit = true;
  }
  if (must_commit) RETURN_IF_ERROR(tx.Commit());
  return error;
}

// Tells `rules` what this call changed: the row it decided (or voted on), or the approval it
// failed or found expired, which its error's metadata names.
void ReportChange(const DecisionRules& rules, const absl::StatusOr<ApprovalRecord>& outcome) {
  if (outcome.ok()) {
    rules.Changed(outcome->action_type, outcome->status);
    return;
  }
  const ErrorReason reason = GetReason(outcome.status());
  if (reason != approvals::v1::EXECUTION_FAILED && reason != approvals::v1::EXPIRED) return;
  if (std::optional<google::rpc::ErrorInfo> info = GetErrorInfo(outcome.status())) {
    if (auto it = info->metadata().find("action_type"); it != info->metadata().end()) {
      rules.Changed(it->second, std::string(reason == approvals::v1::EXPIRED ? kExpired : kFailed));
    }
  }
}

}  // namespace

absl::StatusOr<ApprovalRecord> PgApprovalStore::Decide(const DecideInput& input,
                                                       const DecisionRules& rules) {
  // Written with whatever this call commits: after a COMMIT lost with its connection, the
  // token (not the actor's name) tells whether this call's own decision committed.
  const std::string call = NewCallToken();
  if (std::optional<db::DecideAtOnce> once = rules.AtOnce()) {
    absl::StatusOr<std::optional<ApprovalRecord>> decided = DecideAtOnce(input, *once, call);
    if (!decided.ok()) return decided.status();
    if (*decided) {
      rules.Changed((*decided)->action_type, (*decided)->status);
      return **std::move(decided);
    }
    // Not decided at once: the full path decides it, or says why it cannot be decided.
  }
  ApprovalRecord out;
  CommitIntent intent;
  bool repeat = false;
  absl::Status st = RunInTransaction(pool_, input.deadline, [&](PgTx& tx) {
    return DecideInTx(tx, input, rules, call, out, intent, repeat);
  });
  // (A lost commit's outcome read back by its request id below is this call's own.)
  absl::StatusOr<ApprovalRecord> outcome =
      LostCommitBackend(st) ? ResolveLostDecision(input, intent, call, st)
                            : (st.ok() ? absl::StatusOr<ApprovalRecord>(std::move(out)) : st);
  if (!repeat) ReportChange(rules, outcome);
  return outcome;
}

Params PgApprovalStore::AtOnceParams(const DecideInput& in, const db::DecideAtOnce& once,
                                     const std::string& call) {
  return {in.id,
          absl::StrCat(in.expected_version),
          std::string(TargetStatus(in.decision)),
          in.actor,
          Opt(in.reason),
          in.decision == Decision::kApprove ? Param(once.results_json) : Param(),
          TextArray(once.any_requester),
          TextArray(once.not_own),
          once.own_only ? "true" : "false",
          in.request_id ? Param(*in.request_id) : Param(),
          std::string(MethodName(in.decision)),
          call};
}

absl::StatusOr<std::optional<ApprovalRecord>> PgApprovalStore::DecideAtOnce(
    const DecideInput& in, const db::DecideAtOnce& once, const std::string& call) {
  const Params params = AtOnceParams(in, once, call);
  std::optional<ApprovalRecord> out;
  // The statement and COMMIT go out together with BEGIN: one round trip.
  absl::Status st = RunInTransaction(pool_, in.deadline, [&](PgTx& tx) -> absl::Status {
    out.reset();
    ASSIGN_OR_RETURN(Rows rows, tx.ExecAndCommit(queries::kDecideAtOnce, params));
    if (!rows.empty()) {
      ASSIGN_OR_RETURN(out, ParseApprovalRow(rows, 0));
    }
    return absl::OkStatus();
  });
  if (LostCommitBackend(st)) return ResolveLostDecision(in, CommitIntent(), call, st);
  // A request id another call of this actor recorded after this statement's snapshot: the
  // full path answers INVALID_ARGUMENT or the first call's outcome.
  if (in.request_id && st.code() == absl::StatusCode::kAlreadyExists) return std::nullopt;
  if (!st.ok()) return st;
  return out;
}

absl::Status PgApprovalStore::DecideInTx(PgTx& tx, const DecideInput& in,
                                         const DecisionRules& rules, const std::string& call,
                                         ApprovalRecord& out, CommitIntent& intent,
                                         bool& replayed) {
  intent = CommitIntent();
  replayed = false;
  ASSIGN_OR_RETURN(Rows locked_rows, tx.Exec(queries::kLockApproval, {in.id}));
  if (locked_rows.empty())
    return absl::NotFoundError(absl::StrCat("approval ", in.id, " not found"));
  ASSIGN_OR_RETURN(ApprovalRecord locked, ParseApprovalRow(locked_rows, 0));
  const Param request_id = in.request_id ? Param(*in.request_id) : Param();

  if (in.request_id) {
    ASSIGN_OR_RETURN(Rows found, tx.Exec(queries::kFindDecisionRequest, {in.actor, request_id}));
    if (!found.empty()) {
      if (found.GetString(0, "approval_id") != locked.id ||
          found.GetString(0, "method") != MethodName(in.decision)) {
        return FieldError("request_id", "was already used for a different request");
      }
      out = std::move(locked);
      replayed = true;
      return ReplayOutcome(found);
    }
  }

  if (locked.status != kPending) {
    const bool expired = locked.status == kExpired;
    return AnswerWithError(
        tx, in, locked.id,
        ReasonError(absl::StatusCode::kFailedPrecondition,
                    expired ? approvals::v1::EXPIRED : approvals::v1::ALREADY_PROCESSED,
                    absl::StrCat("approval ", locked.id, " is already ", locked.status),
                    StateMetadata(locked)),
        /*must_commit=*/false);
  }
  if (locked_rows.GetBool(0, "is_expired")) {
    ASSIGN_OR_RETURN(ApprovalRecord expired,
                     RecordDecision(tx, locked, kExpired, Param(), Param(), Param(), Param(),
                                    kSystemActor, Param(), call));
    // Expired by this call (not found expired): the metadata names the type, as for a failure.
    ErrorMetadata metadata = StateMetadata(expired);
    metadata["action_type"] = expired.action_type;
    intent.answer = ReasonError(absl::StatusCode::kFailedPrecondition, approvals::v1::EXPIRED,
                                absl::StrCat("approval ", locked.id, " has expired"), metadata);
    return AnswerWithError(tx, in, locked.id, intent.answer, /*must_commit=*/true);
  }
  if (in.expected_version != 0 && in.expected_version != locked.version) {
    return AnswerWithError(
        tx, in, locked.id,
        ReasonError(absl::StatusCode::kAborted, approvals::v1::VERSION_MISMATCH,
                    absl::StrCat("expected version ", in.expected_version, " but approval ",
                                 locked.id, " is at version ", locked.version),
                    StateMetadata(locked)),
        /*must_commit=*/false);
  }
  absl::StatusOr<DecisionPolicy> allowed = rules.Authorize(locked);
  if (!allowed.ok()) return AnswerWithError(tx, in, locked.id, allowed.status(), false);
  const DecisionPolicy policy = *allowed;

  if (in.decision == Decision::kApprove && policy.required_approvals > 1) {
    ASSIGN_OR_RETURN(Rows voted, tx.Exec(queries::kHasVoted, {locked.id, in.actor}));
    if (voted.GetBool(0, "voted")) {
      return AnswerWithError(
          tx, in, locked.id,
          ReasonError(absl::StatusCode::kFailedPrecondition, approvals::v1::ALREADY_VOTED,
                      absl::StrCat(in.actor, " already voted on approval ", locked.id),
                      StateMetadata(locked)),
          /*must_commit=*/false);
    }
    ASSIGN_OR_RETURN(Rows count, tx.Exec(queries::kInsertVote, {locked.id, in.actor, in.reason}));
    ASSIGN_OR_RETURN(int64_t votes, count.GetInt(0, "votes"));
    if (votes < policy.required_approvals) {
      ASSIGN_OR_RETURN(
          Rows bumped,
          tx.Exec(queries::kRecordVote,
                  {locked.id, absl::StrCat(locked.version), in.actor, absl::StrCat(votes),
                   absl::StrCat(policy.required_approvals), request_id, call}));
      if (bumped.empty()) return absl::InternalError("approval version moved under its row lock");
      ASSIGN_OR_RETURN(out, ParseApprovalRow(bumped, 0));
      RETURN_IF_ERROR(RecordOutcome(tx, in, locked.id, absl::OkStatus()));
      return tx.Commit();
    }
    // This vote reaches the quorum: it runs the action and approves, in this transaction.
  }

  Param result;
  std::optional<ExternalExecution> external;
  if (in.decision == Decision::kApprove) external = rules.External(locked);
  if (in.decision == Decision::kApprove && !external) {
    HandlerTx htx(tx);
    absl::StatusOr<std::string> executed = rules.Execute(htx, locked);
    absl::Status failure = executed.ok() ? htx.first_error() : executed.status();
    // A transient database error inside the action wins over what the handler made of it.
    if (IsTransient(htx.first_error())) failure = htx.first_error();
    if (!failure.ok()) {
      if (IsTransientCode(failure.code())) return failure;  // stays pending; maybe retried
      if (htx.savepoint()) RETURN_IF_ERROR(tx.RollbackToSavepoint(kHandlerSavepoint));
      ASSIGN_OR_RETURN(ApprovalRecord failed,
                       RecordDecision(tx, locked, kFailed, in.actor, Opt(in.reason), Param(),
                                      std::string(failure.message().empty() ? "action failed"
                                                                            : failure.message()),
                                      in.actor, request_id, call));
      ErrorMetadata metadata = StateMetadata(failed);
      metadata["action_type"] = failed.action_type;
      intent.answer =
          ReasonError(absl::StatusCode::kFailedPrecondition, approvals::v1::EXECUTION_FAILED,
                      absl::StrCat("action failed: ", failure.message()), metadata);
      return AnswerWithError(tx, in, locked.id, intent.answer, /*must_commit=*/true);
    }
    result = *executed;
  }

  // The decision, its event (and the request id's record) go out with COMMIT: one round trip.
  ASSIGN_OR_RETURN(out, RecordDecision(tx, locked, TargetStatus(in.decision), in.actor,
                                       Opt(in.reason), result, Param(), in.actor, request_id, call,
                                       /*commit=*/!in.request_id, external));
  if (in.request_id) {
    RETURN_IF_ERROR(RecordOutcome(tx, in, locked.id, absl::OkStatus(), /*commit=*/true));
  }
  return absl::OkStatus();
}

}  // namespace approvald::db::pg
