#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "db/pg/pg_connection.h"

namespace approvald::db::pg {

/// Group commit for transactions that are one statement each (a create, a decision at once):
/// while `max_batches` such transactions are in flight, the ones that arrive wait, and the
/// caller that starts the next batch sends them all in one transaction (BEGIN, each statement,
/// COMMIT: one round trip, one commit, one WAL flush). Each statement still commits atomically
/// with its own effects; it only shares the commit with others.
///
/// A statement that fails, or waits longer than kBatchLockTimeoutMs for a lock, aborts the batch
/// it is in: the batch is rolled back and each caller then runs its statement alone on its own
/// connection, so a call sees its own statement's outcome, never a neighbour's error or wait.
/// A connection lost while a batch was in flight leaves every statement of the batch with a
/// CommitOutcomeUnknown naming the backend that was committing it. Thread-safe.
class CommitGroup {
 public:
  /// The longest a grouped statement waits for a lock before its batch is rolled back and its
  /// statements run alone (a statement that has to wait must not hold up the others).
  static constexpr int64_t kBatchLockTimeoutMs = 100;

  /// `max_batches` <= 0 disables grouping: every statement runs alone on its caller's connection.
  explicit CommitGroup(int max_batches, size_t max_batch = 64)
      : max_batches_(max_batches), max_batch_(max_batch) {}

  /// Runs `step` and commits it, on `conn` (the caller's connection, which may also carry other
  /// callers' statements). Errors as PgTx::ExecAndCommit.
  absl::StatusOr<Rows> ExecAndCommit(PgConnection& conn, PgConnection::Step step);

  /// Statements sent in a batch of more than one, and batches sent (for metrics and tests).
  uint64_t grouped_statements() const;
  uint64_t batches() const;
  /// Statements waiting for a batch, and batch slots taken, right now.
  size_t queued() const;
  int in_flight() const;

 private:
  struct Item {
    PgConnection::Step step;
    absl::StatusOr<Rows> result;
    bool done = false;
    bool lead = false;   // holds a batch slot (and is in no queue): sends the next batch
    bool alone = false;  // its batch failed and was rolled back: to run again alone
    std::condition_variable cv;
  };

  // Sends `batch` on `conn` and fills in each item's result (or marks it to run alone).
  // Called without the lock.
  void Send(PgConnection& conn, const std::vector<Item*>& batch);

  const int max_batches_;
  const size_t max_batch_;
  mutable std::mutex mu_;
  std::deque<Item*> queue_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t grouped_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t batches_ ABSL_GUARDED_BY(mu_) = 0;
};

/// Runs `step` alone (PostgreSQL's implicit transaction, committed when it succeeds). A
/// connection lost after it was sent gives CommitOutcomeUnknown.
absl::StatusOr<Rows> ExecAlone(PgConnection& conn, PgConnection::Step step);

}  // namespace approvald::db::pg
