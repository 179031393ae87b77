#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "db/approval_store.h"

namespace spdlog {
class logger;
}

namespace approvald::server {

/// Every `interval`, turns due pending approvals into EXPIRED (with their events) in small
/// batches. Every replica runs one; SKIP LOCKED shares the work so each expires exactly once.
class ExpirySweeper {
 public:
  ExpirySweeper(db::ApprovalStore& store, absl::Duration interval,
                std::shared_ptr<spdlog::logger> logger, int batch = 100);
  ~ExpirySweeper();

  /// Told how many approvals of a type each batch expired (metrics). Set before Start.
  void SetOnExpired(std::function<void(const std::string& action_type, int n)> on_expired) {
    on_expired_ = std::move(on_expired);
  }

  void Start();
  void Stop();  ///< idempotent
  /// Runs one sweep now (all due approvals, batch by batch); returns how many expired.
  absl::StatusOr<int> SweepOnce();

 private:
  db::ApprovalStore& store_;
  const absl::Duration interval_;
  std::shared_ptr<spdlog::logger> logger_;
  const int batch_;
  std::function<void(const std::string&, int)> on_expired_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace approvald::server
