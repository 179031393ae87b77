#include "db/pg/pg_tx.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "db/pg/pg_error.h"
#include "db/queries.h"

namespace approvald::db::pg {

absl::StatusOr<std::unique_ptr<PgTx>> PgTx::Begin(PgConnection& conn, absl::Time deadline) {
  const absl::Time now = absl::Now();
  if (deadline <= now) return absl::DeadlineExceededError("deadline passed before the transaction");
  if (absl::Status st = conn.ExecScript("BEGIN"); !st.ok()) return st;
  std::unique_ptr<PgTx> tx(new PgTx(conn));
  if (deadline != absl::InfiniteFuture()) {
    const int64_t ms =
        std::clamp<int64_t>(absl::ToInt64Milliseconds(deadline - now), 1, 3600 * 1000);
    absl::StatusOr<Rows> set = tx->Exec(queries::kSetTxTimeouts, {absl::StrCat(ms)});
    if (!set.ok()) return set.status();
  }
  return tx;
}

PgTx::~PgTx() {
  if (!done_) (void)Rollback();
}

absl::StatusOr<Rows> PgTx::Exec(const Query& query, const Params& params) {
  return conn_.Exec(query, params);
}

absl::Status PgTx::Commit() {
  done_ = true;
  absl::Status st = conn_.ExecScript("COMMIT");
  if (!st.ok() && conn_.broken()) {
    return absl::UnknownError("commit outcome unknown: the database connection was lost");
  }
  return st;
}

absl::Status PgTx::Rollback() {
  done_ = true;
  absl::Status st = conn_.ExecScript("ROLLBACK");
  if (!st.ok()) conn_.MarkBroken();  // state unknown: never hand this connection out again
  return st;
}

absl::Status PgTx::Savepoint(absl::string_view name) {
  return conn_.ExecScript(absl::StrCat("SAVEPOINT ", name));
}

absl::Status PgTx::RollbackToSavepoint(absl::string_view name) {
  return conn_.ExecScript(absl::StrCat("ROLLBACK TO SAVEPOINT ", name));
}

absl::Status RunInTransaction(ConnectionPool& pool, absl::Time deadline,
                              const std::function<absl::Status(PgTx&)>& fn, int max_attempts) {
  absl::Status last;
  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    if (attempt > 1) pool.CountRetry();
    absl::StatusOr<PoolLease> lease = pool.Acquire(deadline);
    if (!lease.ok()) return lease.status();
    absl::StatusOr<std::unique_ptr<PgTx>> tx = PgTx::Begin(**lease, deadline);
    if (tx.ok()) {
      last = fn(**tx);
    } else {
      last = tx.status();
    }
    if (last.ok() || !IsTransient(last) || absl::Now() >= deadline) break;
  }
  return last;
}

}  // namespace approvald::db::pg
