#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "server/watch/event_hub.h"

namespace approvald::server {

/// ClaimExecutions calls that wait for an execution to become due (`wait`): each is tried again
/// when the event stream shows an approval of one of its types approved or an execution due
/// again, and at the time the store named (a retry's backoff or a lease running out), or when
/// its wait ends. Tries run on the caller's `try_again`, never on the hub's thread.
class ClaimWaiters final : public EventSink {
 public:
  /// Called on the waiters' own thread with the waiter's id: `last` when the wait is over
  /// (answer what you have).
  using TryAgain = std::function<void(uint64_t id, bool last)>;

  explicit ClaimWaiters(EventHub* hub);
  ~ClaimWaiters() override;

  /// Parks a call until `wake` (or an event of its types); its wait ends at `end`. Returns
  /// its id, or 0 once stopped (the caller answers at once).
  uint64_t Park(std::vector<std::string> types, absl::Time wake, absl::Time end, TryAgain retry);
  /// After a try that found nothing: parks it again until `wake`, or at once if an event came
  /// during the try.
  void Rearm(uint64_t id, absl::Time wake);
  void Remove(uint64_t id);
  /// Ends every wait (each gets its last try) and stops the thread. Idempotent.
  void Stop();

  void OnEvent(const std::shared_ptr<const approvals::v1::ApprovalEvent>& event,
               size_t bytes) override;
  void OnHubStopped(int64_t head) override;

 private:
  struct Waiter {
    std::vector<std::string> types;
    absl::Time wake;
    absl::Time end;
    bool trying = false;  ///< handed to TryAgain; Rearm parks it again
    bool woken = false;   ///< an event came while trying
    TryAgain retry;
  };
  void Run();

  EventHub* const hub_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Waiter> waiters_;
  uint64_t next_id_ = 1;
  bool attached_ = false;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace approvald::server
