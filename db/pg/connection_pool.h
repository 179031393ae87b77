#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "db/pg/pg_connection.h"

namespace approvald::db::pg {

class ConnectionPool;

/// A connection taken from the pool; returned on destruction, or discarded if it broke.
class PoolLease {
 public:
  PoolLease(ConnectionPool* pool, std::unique_ptr<PgConnection> conn)
      : pool_(pool), conn_(std::move(conn)) {}
  PoolLease(PoolLease&& other) noexcept = default;
  PoolLease& operator=(PoolLease&&) = delete;
  PoolLease(const PoolLease&) = delete;
  ~PoolLease();

  PgConnection& operator*() { return *conn_; }
  PgConnection* operator->() { return conn_.get(); }

 private:
  ConnectionPool* pool_;
  std::unique_ptr<PgConnection> conn_;
};

/// At most `max_size` connections, opened lazily and reopened after a loss. Thread-safe.
class ConnectionPool {
 public:
  /// `schema`: where approvald's objects live (see PgConnection::Connect).
  ConnectionPool(std::string dsn, int max_size, std::string schema = kDefaultSchema)
      : dsn_(std::move(dsn)), schema_(std::move(schema)), max_size_(max_size) {}

  /// Runs on every new connection before it is handed out (e.g. to prepare statements); a
  /// connection whose hook fails is closed and Acquire returns the error. Set before use.
  void SetOnConnect(std::function<absl::Status(PgConnection&)> hook) {
    on_connect_ = std::move(hook);
  }

  /// A connection, waiting for a free one until `deadline`.
  /// UNAVAILABLE if connecting fails; DEADLINE_EXCEEDED if none frees up in time.
  absl::StatusOr<PoolLease> Acquire(absl::Time deadline);

  /// A connection outside the pool (not counted in max_size), made as the pool makes its own
  /// (the on-connect hook runs on it): for a thread that keeps one for itself.
  absl::StatusOr<std::unique_ptr<PgConnection>> Connect() const;

  int max_size() const { return max_size_; }
  int open() const;
  int idle() const;
  /// Callers waiting for a free connection right now.
  int waiting() const { return waiting_.load(); }
  /// Transactions re-run after a transient error (RunInTransaction).
  uint64_t retries() const { return retries_.load(); }
  void CountRetry() { retries_.fetch_add(1); }

 private:
  friend class PoolLease;
  void Release(std::unique_ptr<PgConnection> conn);

  const std::string dsn_;
  const std::string schema_;
  std::function<absl::Status(PgConnection&)> on_connect_;
  const int max_size_;
  mutable std::mutex mu_;
  std::condition_variable slot_free_;  ///< an idle connection or an open slot appeared
  std::vector<std::unique_ptr<PgConnection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<int> waiting_{0};
  std::atomic<uint64_t> retries_{0};
};

}  // namespace approvald::db::pg
