#pragma once

#include <atomic>
#include <cstddef>

#include "absl/status/status.h"

namespace approvald::server {

/// The bytes that clients can make approvald hold on their behalf, beyond what one call needs
/// in flight: events converted for replaying watch streams and pages of ListApprovals, both
/// measured as the protobuf objects take in memory (stored JSON grows about tenfold and more
/// as protobuf Structs). When a take does not fit, the stream or call ends with
/// RESOURCE_EXHAUSTED instead of growing the process. Thread-safe, lock-free.
class MemoryBudget {
 public:
  explicit MemoryBudget(size_t limit) : limit_(limit) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  /// Takes `bytes` if they fit under the limit; false (and nothing taken) if not.
  [[nodiscard]] bool TryTake(size_t bytes) {
    size_t used = used_.load(std::memory_order_relaxed);
    do {
      if (bytes > limit_ || used > limit_ - bytes) return false;
    } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
    return true;
  }
  /// Gives back bytes taken before.
  void Give(size_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }

  size_t used() const { return used_.load(std::memory_order_relaxed); }
  size_t limit() const { return limit_; }

 private:
  const size_t limit_;
  std::atomic<size_t> used_{0};
};

/// What a stream or call gets when the budget cannot take what it needs (retryable later).
inline absl::Status OverBudgetError() {
  return absl::ResourceExhaustedError(
      "approvald holds as much for watch streams and list pages as its --memory-budget-mib "
      "allows; retry later");
}

}  // namespace approvald::server
