#include "db/pg/connection_pool.h"

namespace approvald::db::pg {

PoolLease::~PoolLease() {
  if (pool_ != nullptr && conn_ != nullptr) pool_->Release(std::move(conn_));
}

absl::StatusOr<PoolLease> ConnectionPool::Acquire(absl::Time deadline) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto can_take = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < max_size_;
    };
    waiting_.fetch_add(1);
    bool available = true;
    if (deadline == absl::InfiniteFuture()) {
      slot_free_.wait(lock, can_take);
    } else {
      available = slot_free_.wait_until(lock, absl::ToChronoTime(deadline), can_take);
    }
    waiting_.fetch_sub(1);
    if (!available) {
      return absl::DeadlineExceededError("no database connection became free before the deadline");
    }
    if (!idle_.empty()) {
      std::unique_ptr<PgConnection> conn = std::move(idle_.back());
      idle_.pop_back();
      return PoolLease(this, std::move(conn));
    }
    ++open_;  // reserve a slot; connect outside the lock
  }
  absl::StatusOr<std::unique_ptr<PgConnection>> conn = Connect();
  if (!conn.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    --open_;
    slot_free_.notify_one();
    return conn.status();
  }
  return PoolLease(this, std::move(*conn));
}

absl::StatusOr<std::unique_ptr<PgConnection>> ConnectionPool::Connect() const {
  absl::StatusOr<std::unique_ptr<PgConnection>> conn = PgConnection::Connect(dsn_, schema_);
  if (conn.ok() && on_connect_) {
    if (absl::Status st = on_connect_(**conn); !st.ok()) return st;
  }
  return conn;
}

void ConnectionPool::Release(std::unique_ptr<PgConnection> conn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!conn->reusable()) {
    --open_;  // dropped; the next Acquire reconnects
  } else {
    idle_.push_back(std::move(conn));
  }
  slot_free_.notify_one();
}

int ConnectionPool::open() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_;
}

int ConnectionPool::idle() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(idle_.size());
}

}  // namespace approvald::db::pg
