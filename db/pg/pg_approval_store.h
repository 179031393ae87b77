#pragma once

#include "db/approval_store.h"
#include "db/pg/commit_pipeline.h"
#include "db/pg/connection_pool.h"
#include "db/pg/pg_tx.h"

namespace approvald::db::pg {

/// ApprovalStore on PostgreSQL (see db/approval_store.h for the contract).
class PgApprovalStore final : public ApprovalStore {
 public:
  explicit PgApprovalStore(ConnectionPool& pool) : pool_(pool) {}
  /// StartCreate and StartDecideAtOnce send through `pipeline` (null: they return false). Set
  /// before use; the pipeline outlives the store's calls.
  void SetPipeline(CommitPipeline* pipeline) { pipeline_ = pipeline; }

  absl::StatusOr<CreateResult> Create(const CreateInput& input) override;
  absl::StatusOr<ApprovalRecord> Get(const std::string& id, absl::Time deadline) override;
  absl::StatusOr<std::vector<ApprovalRecord>> List(const ListInput& input) override;
  absl::StatusOr<ApprovalRecord> Decide(const DecideInput& input,
                                        const DecisionRules& rules) override;
  bool StartCreate(const CreateInput& input, AsyncDone<CreateResult> done) override;
  bool StartDecideAtOnce(const DecideInput& input, const db::DecideAtOnce& once,
                         AsyncDone<ApprovalRecord> done) override;
  absl::StatusOr<std::string> GetSetting(const std::string& name) override;
  absl::StatusOr<std::vector<EventRecord>> ReadEvents(int64_t after_id, int limit,
                                                      absl::Time deadline) override;
  absl::StatusOr<std::map<std::string, int>> ExpireDue(int batch) override;
  absl::StatusOr<int64_t> NewestEventId(absl::Time deadline) override;
  absl::StatusOr<EventsOf> ReadEventsOf(const std::vector<std::string>& approval_ids,
                                        int64_t after_id, int limit, absl::Time deadline) override;

 private:
  // What a decision answers if its COMMIT, lost with the connection, turns out to have
  // committed (the call's token is in an event): OK with the row as it is then, or this error
  // (the action failed, or the approval expired, by this call).
  struct CommitIntent {
    absl::Status answer;
  };

  // Decide in one statement: the decided row, or nullopt if the statement did not apply and
  // the full path must decide.
  absl::StatusOr<std::optional<ApprovalRecord>> DecideAtOnce(const DecideInput& input,
                                                             const db::DecideAtOnce& once,
                                                             const std::string& call);
  // One attempt of Decide inside `tx`; sets `out` on success, and `replayed` when the answer
  // repeats an earlier call's (same request id).
  absl::Status DecideInTx(PgTx& tx, const DecideInput& input, const DecisionRules& rules,
                          const std::string& call, ApprovalRecord& out, CommitIntent& intent,
                          bool& replayed);
  // After a decision's commit whose outcome is unknown: settles it, then learns the outcome
  // from the request id's record, else from whether an event carries the call's token, and
  // reads the row back under its lock. Never by the actor's name: a principal that raced
  // itself is told ALREADY_PROCESSED, or UNAVAILABLE if nothing changed.
  absl::StatusOr<ApprovalRecord> ResolveLostDecision(const DecideInput& input,
                                                     const CommitIntent& intent,
                                                     const std::string& call,
                                                     const absl::Status& lost);
  // The same for a create: the inserted id exists or not.
  absl::StatusOr<CreateResult> ResolveLostCreate(const CreateInput& input, const std::string& id,
                                                 const absl::Status& lost);

  // The parameters of decide_at_once.sql and of insert_approval.sql.
  static Params AtOnceParams(const DecideInput& in, const db::DecideAtOnce& once,
                             const std::string& call);
  static Params InsertParams(const CreateInput& in, const std::string& id, Param expire_micros);

  ConnectionPool& pool_;
  CommitPipeline* pipeline_ = nullptr;
};

}  // namespace approvald::db::pg
