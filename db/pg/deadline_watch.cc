#include "db/pg/deadline_watch.h"

#include "db/pg/pg_connection.h"

namespace approvald::db::pg {
namespace {
// How much later than a call's deadline the session's statement_timeout may fire.
constexpr absl::Duration kSessionBoundSlack = absl::Seconds(1);
}  // namespace

DeadlineGuard::DeadlineGuard(PgConnection& conn, absl::Time deadline) : id_(0) {
  if (deadline - absl::Now() < absl::Milliseconds(kSessionTimeoutMs) - kSessionBoundSlack) {
    id_ = DeadlineWatch::Instance().Arm(&conn, deadline);
  }
}

DeadlineWatch& DeadlineWatch::Instance() {
  static DeadlineWatch* const watch = new DeadlineWatch();  // lives as long as the process
  return *watch;
}

uint64_t DeadlineWatch::Arm(PgConnection* conn, absl::Time deadline) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!started_) {
    started_ = true;
    std::thread([this] { Run(); }).detach();
  }
  const uint64_t id = next_id_++;
  armed_.emplace(id, std::make_pair(conn, deadline));
  const bool earliest = by_deadline_.empty() || deadline < by_deadline_.begin()->first;
  by_deadline_.emplace(deadline, id);
  if (earliest) cv_.notify_one();
  return id;
}

void DeadlineWatch::Disarm(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = armed_.find(id);
  if (it == armed_.end()) return;  // fired already
  by_deadline_.erase({it->second.second, id});
  armed_.erase(it);
}

void DeadlineWatch::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (by_deadline_.empty()) {
      cv_.wait(lock);
      continue;
    }
    const auto [deadline, id] = *by_deadline_.begin();
    if (absl::Now() < deadline) {
      cv_.wait_until(lock, absl::ToChronoTime(deadline));
      continue;
    }
    by_deadline_.erase(by_deadline_.begin());
    auto it = armed_.find(id);
    PgConnection* conn = it->second.first;
    armed_.erase(it);
    // Under the lock: the connection's owner cannot disarm, finish and hand the connection to
    // another caller while its cancel is on the way.
    conn->CancelRunning();
  }
}

}  // namespace approvald::db::pg
