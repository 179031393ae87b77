#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

#include "absl/time/time.h"
#include "server/watch/event_hub.h"

namespace approvald::server {

/// Wakes the webhook threads when the event log moves (any replica's commit, through the hub)
/// and when they stop, so that they neither poll fast nor lag.
class LogWakeup final : public EventSink {
 public:
  /// Which events wake the waiters (all if null). Called on the hub's thread under its lock:
  /// quick, and never blocking.
  using Filter = std::function<bool(const approvals::v1::ApprovalEvent&)>;

  /// `hub` may be null (then only the timeouts and Stop wake).
  explicit LogWakeup(EventHub* hub, Filter filter = nullptr);
  ~LogWakeup() override;

  /// The number of wake-ups so far: Wait for one after this.
  uint64_t generation() const;
  /// Returns at a wake-up after `seen`, at Stop, or after `timeout`. False once stopped.
  bool Wait(uint64_t seen, absl::Duration timeout);
  /// Returns after `timeout`, or at Stop (false then); wake-ups do not end it.
  bool Sleep(absl::Duration timeout);
  /// Wakes every waiter for good; detaches from the hub. Idempotent.
  void Stop();
  bool stopped() const;
  /// Wakes every waiter once (e.g. a redelivery asked for through this replica).
  void Poke();

  void OnEvent(const std::shared_ptr<const approvals::v1::ApprovalEvent>& event,
               size_t bytes) override;
  void OnHubStopped(int64_t head) override;

 private:
  EventHub* const hub_;
  const Filter filter_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t generation_ = 0;
  bool stopped_ = false;
  bool attached_ = false;
};

}  // namespace approvald::server
