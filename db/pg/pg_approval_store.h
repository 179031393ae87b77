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
                                        const ExecuteFn& execute) override;
  absl::StatusOr<std::string> GetSetting(const std::string& name) override;
  absl::StatusOr<std::vector<EventRecord>> ReadEvents(int64_t after_id, int limit,
                                                      absl::Time deadline) override;
  absl::StatusOr<int> ExpireDue(int batch) override;

 private:
  // One attempt of Decide inside `tx`; sets `out` on success.
  absl::Status DecideInTx(PgTx& tx, const DecideInput& input, const AuthorizeFn& authorize,
                          const ExecuteFn& execute, ApprovalRecord& out, int64_t& locked_version);
  // After a commit whose outcome is unknown: reads the row back under its lock.
  absl::StatusOr<ApprovalRecord> ResolveUnknownCommit(const DecideInput& input,
                                                      int64_t locked_version);

  ConnectionPool& pool_;
};

}  // namespace approvald::db::pg
