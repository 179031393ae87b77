#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace approvald::db::pg {

class PgConnection;

/// Bounds a transaction by its caller's deadline without a statement of its own: while armed,
/// a connection whose deadline passes gets libpq's cancel request (on a connection of its own),
/// which ends the statement it runs or the lock it waits for with SQLSTATE 57014
/// (DEADLINE_EXCEEDED). The session's statement_timeout stays the bound of calls without a
/// shorter deadline. One thread per process, started on first use. Thread-safe.
class DeadlineWatch {
 public:
  static DeadlineWatch& Instance();

  /// Watches `conn` until Disarm; returns the watch's id.
  uint64_t Arm(PgConnection* conn, absl::Time deadline);
  /// After it returns, `conn` gets no cancel from this watch (one being sent is waited for).
  void Disarm(uint64_t id);

 private:
  DeadlineWatch() = default;
  void Run();

  std::mutex mu_;  // held while a cancel is sent, so that Disarm waits for it
  std::condition_variable cv_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, std::pair<PgConnection*, absl::Time>> armed_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<absl::Time, uint64_t>> by_deadline_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
};

/// Arms the watch for a scope, for a deadline shorter than the session's own bound (its
/// statement_timeout, kSessionTimeoutMs) by more than a second; the session's bound serves the
/// others (a call on a 30 s deadline, or none) at no cost.
class DeadlineGuard {
 public:
  DeadlineGuard(PgConnection& conn, absl::Time deadline);
  ~DeadlineGuard() { Release(); }
  DeadlineGuard(const DeadlineGuard&) = delete;
  DeadlineGuard& operator=(const DeadlineGuard&) = delete;
  /// Disarms now (idempotent).
  void Release() {
    if (id_ != 0) DeadlineWatch::Instance().Disarm(id_);
    id_ = 0;
  }

 private:
  uint64_t id_;
};

}  // namespace approvald::db::pg
