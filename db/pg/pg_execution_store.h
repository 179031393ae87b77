#pragma once

#include "db/execution_store.h"
#include "db/pg/connection_pool.h"

namespace approvald::db::pg {

/// ExecutionStore on PostgreSQL (see db/execution_store.h for the contract and
/// db/migrations/0009_executions.sql for the tables).
class PgExecutionStore final : public ExecutionStore {
 public:
  explicit PgExecutionStore(ConnectionPool& pool) : pool_(pool) {}

  absl::StatusOr<ClaimResult> Claim(const ClaimInput& input) override;
  absl::StatusOr<ExecutionRecord> Extend(const LeaseCall& call, absl::Duration lease,
                                         const MayExecute& may) override;
  absl::StatusOr<ExecutionRecord> Complete(const LeaseCall& call, const std::string& result_json,
                                           const MayExecute& may) override;
  absl::StatusOr<ExecutionRecord> Fail(const LeaseCall& call, const std::string& error,
                                       const RetryDelay& retry, const MayExecute& may) override;

 private:
  ConnectionPool& pool_;
};

}  // namespace approvald::db::pg
