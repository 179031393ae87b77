#include "server/expiry_sweeper.h"

#include <spdlog/spdlog.h>

#include "server/ops/log_format.h"

namespace approvald::server {

ExpirySweeper::ExpirySweeper(db::ApprovalStore& store, absl::Duration interval,
                             std::shared_ptr<spdlog::logger> logger, int batch)
    : store_(store), interval_(interval), logger_(std::move(logger)), batch_(batch) {}

ExpirySweeper::~ExpirySweeper() { Stop(); }

void ExpirySweeper::Start() {
  thread_ = std::thread([this] {
    bool was_failing = false;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (stop_cv_.wait_for(lock, absl::ToChronoNanoseconds(interval_),
                              [this] { return stopping_.load(); })) {
          return;
        }
      }
      absl::StatusOr<int> expired = SweepOnce();
      if (!expired.ok() && !was_failing && logger_) {
        logger_->warn("expiry sweep failed: {}", EscapeForLog(expired.status().message()));
      }
      was_failing = !expired.ok();
      if (expired.ok() && *expired > 0 && logger_) logger_->info("expired {} approvals", *expired);
    }
  });
}

void ExpirySweeper::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<int> ExpirySweeper::SweepOnce() {
  int total = 0;
  for (;;) {
    absl::StatusOr<std::map<std::string, int>> expired = store_.ExpireDue(batch_);
    if (!expired.ok()) return expired.status();
    int n = 0;
    for (const auto& [type, count] : *expired) {
      n += count;
      if (on_expired_) on_expired_(type, count);
    }
    total += n;
    if (n < batch_ || stopping_.load()) return total;
  }
}

}  // namespace approvald::server
