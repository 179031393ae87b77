#pragma once

#include "db/approval_store.h"
#include "db/pg/connection_pool.h"
#include "db/pg/pg_tx.h"

namespace approvald::db::pg {

/// ApprovalStore on PostgreSQL (see db/approval_store.h for the contract).
class PgApprovalStore final : public ApprovalStore {
 public:
  explicit PgApprovalStore(ConnectionPool& pool) : pool_(pool) {}

  absl::StatusOr<CreateResult> Create(const CreateInput& input) override;
  absl::StatusOr<ApprovalRecord> Get(const std::string& id, absl::Time deadline) override;
  absl::StatusOr<std::vector<ApprovalRecord>> List(const ListInput& input) override;
  absl::StatusOr<ApprovalRecord> Decide(const DecideInput& input, const AuthorizeFn& authorize,
                                        const ExecuteFn& execute, bool* replayed) override;
  absl::StatusOr<std::string> GetSetting(const std::string& name) override;
  absl::StatusOr<std::vector<EventRecord>> ReadEvents(int64_t after_id, int limit,
                                                      absl::Time deadline) override;
  absl::StatusOr<std::map<std::string, int>> ExpireDue(int batch) override;

 private:
  // What a decision's COMMIT would make true, kept in case its outcome is lost with the
  // connection: the row at version `locked_version + 1` in `status` (or, for a vote below the
  // quorum, still pending with the actor's vote), answered with `answer`.
  struct CommitIntent {
    int64_t locked_version = 0;  ///< 0: this commit changes no row (unless at_once)
    std::string status;
    bool vote = false;
    absl::Status answer;
    /// decide_at_once.sql: the version it applied to is known only from expected_version.
    /// Without one, a decision with this status by the same actor is taken as this call's
    /// (a concurrent duplicate by that actor, without a request id, is indistinguishable).
    bool at_once = false;
  };

  // Decide in one statement (input.at_once): the decided row, or nullopt if the statement did
  // not apply and the full path must decide.
  absl::StatusOr<std::optional<ApprovalRecord>> DecideAtOnce(const DecideInput& input);
  // One attempt of Decide inside `tx`; sets `out` on success, and `replayed` when the answer
  // repeats an earlier call's (same request id).
  absl::Status DecideInTx(PgTx& tx, const DecideInput& input, const AuthorizeFn& authorize,
                          const ExecuteFn& execute, ApprovalRecord& out, CommitIntent& intent,
                          bool& replayed);
  // After a decision's commit whose outcome is unknown: settles it, then learns the outcome
  // from the request id's record or from the row, read back under its lock.
  absl::StatusOr<ApprovalRecord> ResolveLostDecision(const DecideInput& input,
                                                     const CommitIntent& intent,
                                                     const absl::Status& lost);
  // The same for a create: the inserted id exists or not.
  absl::StatusOr<CreateResult> ResolveLostCreate(const CreateInput& input, const std::string& id,
                                                 const absl::Status& lost);

  ConnectionPool& pool_;
};

}  // namespace approvald::db::pg
