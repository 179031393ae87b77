#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "db/pg/connection_pool.h"

namespace approvald::db::pg {

/// Group commit with no thread blocked per call, for transactions that are one statement (a
/// create, a decision at once). A caller queues its statement with a callback and returns;
/// `senders` threads, each on a connection of its own, take everything queued (up to
/// `max_batch`) and send it in one round trip: alone (PostgreSQL's implicit transaction) or as
/// one transaction (BEGIN, each statement, COMMIT: one commit, one WAL flush). Each statement
/// still commits atomically with its own effects. A sender wakes once per batch, not per call,
/// and calls each statement's callback on its own thread.
///
/// A sender's session has a lock_timeout of kLockTimeoutMs: a statement that would wait longer
/// for a lock fails, with the rest of its batch, which is rolled back. Its callers are told that
/// nothing committed and take their blocking path, which waits up to their own deadline; so a
/// lock wait holds up no one else. Thread-safe.
class CommitPipeline {
 public:
  static constexpr int64_t kLockTimeoutMs = 100;

  /// A statement's outcome: its rows (committed); a status with LostCommitBackend() set (sent
  /// with a COMMIT that the lost connection leaves unknown: to be settled); any other status:
  /// nothing of it committed (its batch failed, its deadline passed before it could be sent, no
  /// connection could be had, or the statement itself failed).
  /// (std::function, not absl::AnyInvocable: an instrumented copy of AnyInvocable's inline
  /// manager in approvald would also serve libgrpc's calls, which TSan then reports.)
  using Done = std::function<void(absl::StatusOr<Rows>)>;

  CommitPipeline(ConnectionPool& pool, int senders, size_t max_queue = 4096, size_t max_batch = 64);
  ~CommitPipeline();
  CommitPipeline(const CommitPipeline&) = delete;
  CommitPipeline& operator=(const CommitPipeline&) = delete;

  /// Queues `step`. False (and `done` is dropped, never called) if the queue is full or the
  /// pipeline has stopped: the caller then runs its statement another way.
  [[nodiscard]] bool Submit(PgConnection::Step step, absl::Time deadline, Done done);
  /// Sends what is queued, then stops the senders. Idempotent.
  void Shutdown();

  uint64_t batches() const;
  /// Statements sent in a batch of more than one.
  uint64_t grouped_statements() const;
  size_t queued() const;

 private:
  struct Item {
    PgConnection::Step step;
    absl::Time deadline;
    Done done;
  };

  void Run();
  // Sends `batch` on `conn` (connecting it first if needed) and calls each item's callback.
  void Send(std::unique_ptr<PgConnection>& conn, std::vector<Item>& batch);
  absl::Status EnsureConnected(std::unique_ptr<PgConnection>& conn);

  ConnectionPool& pool_;
  const size_t max_queue_;
  const size_t max_batch_;
  mutable std::mutex mu_;
  std::condition_variable work_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  int idle_senders_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t batches_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t grouped_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> senders_;
};

}  // namespace approvald::db::pg
