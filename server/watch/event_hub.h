#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "approvals/v1/approvals.pb.h"
#include "db/event_log.h"

namespace spdlog {
class logger;
}

namespace approvald::server {

/// Receives the live stream. Called on the hub's thread with the hub's lock held: must not
/// block and must not call back into the hub.
class EventSink {
 public:
  virtual ~EventSink() = default;
  /// `bytes`: what the event takes in memory (computed once, for every sink's budget).
  virtual void OnEvent(const std::shared_ptr<const approvals::v1::ApprovalEvent>& event,
                       size_t bytes) = 0;
  /// The hub stops (server shutdown): end the stream.
  virtual void OnHubStopped(int64_t head) = 0;
  /// Attached by AttachAtHead: `head` is the last event it will not get.
  virtual void OnAttached(int64_t head) { (void)head; }
};

/// One database listener per daemon: a dedicated log reader (its own connection) that reads newly
/// deliverable events from the log in id order, every `poll_interval` while a sink is attached,
/// and fans them out to every attached sink. Polling, not LISTEN/NOTIFY: a committing
/// transaction that notifies holds a cluster-wide lock through its WAL flush, which made every
/// decision's commit wait for the previous one. While no sink is attached it moves the head
/// every 100 ms with one cheap query, and wakes as soon as a sink attaches. Reconnects with
/// backoff and catches up from the log after a gap. Thread-safe.
class EventHub {
 public:
  EventHub(db::EventLogConnector connect, std::shared_ptr<spdlog::logger> logger,
           absl::Duration poll_interval = absl::Milliseconds(10));
  ~EventHub();

  /// Connects and reads the head of the log; UNAVAILABLE if the database cannot be reached.
  absl::Status Start();
  /// Ends the thread and tells every sink (OnHubStopped). Idempotent.
  void Stop();

  /// Attaches `sink` if it has seen everything up to the hub's head (`cursor >= head`); it then
  /// gets every later event. Otherwise sets `*head` and returns false: replay (cursor, head]
  /// from the log first, then try again.
  [[nodiscard]] bool AttachIfCaughtUp(EventSink* sink, int64_t cursor, int64_t* head);
  /// Attaches `sink` at the hub's head, whatever it is ("from now on"): calls
  /// sink->OnAttached(head) first, under the hub's lock, so no event slips between. False if the
  /// hub has stopped.
  [[nodiscard]] bool AttachAtHead(EventSink* sink);
  /// After it returns, the hub no longer calls `sink`.
  void Detach(EventSink* sink);
  /// This process has committed a transaction that wrote events: if a sink is attached, read
  /// the log now instead of at the next poll. While the log then holds a newer committed event
  /// than the hub has delivered (held back behind an older transaction still running), the hub
  /// reads again every 2 ms, doubling up to 100 ms (at most the poll interval), until it is
  /// delivered. Cheap and non-blocking; call it from any thread.
  void Poke();

  int64_t head() const;
  size_t sinks() const;
  bool stopped() const;

  /// Called on the hub's thread whenever its database connection is lost or comes back: the
  /// daemon's view of whether the database is reachable (drives the health service). Set
  /// before Start.
  void SetOnDatabaseState(std::function<void(bool up)> callback) {
    on_state_ = std::move(callback);
  }

 private:
  void Run();
  /// Moves the head to `newest` if no sink is attached (under the lock, so that a sink attaching
  /// meanwhile replays from the log instead); false if one is.
  [[nodiscard]] bool AdvanceIfUnwatched(int64_t newest);
  /// Returns when the hub stops, after `timeout`, or (if asked) when a sink is attached or on a
  /// Poke.
  void Pause(absl::Duration timeout, bool until_sink, bool until_poke);
  /// Wakes the thread's Pause to look at its conditions again.
  void Wake();
  struct Sized {
    std::shared_ptr<const approvals::v1::ApprovalEvent> event;
    size_t bytes = 0;
  };
  void Publish(std::vector<Sized> events, int64_t last_id);

  const db::EventLogConnector connect_;
  const std::shared_ptr<spdlog::logger> logger_;
  const absl::Duration poll_interval_;
  mutable std::mutex mu_;
  int64_t head_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<EventSink*> sinks_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> watched_{0};  // sinks_.size(), readable without mu_ (held while publishing)
  std::atomic<bool> poked_{false};
  std::mutex wake_mu_;  // only for wake_: never held while reading or publishing
  std::condition_variable wake_;
  std::function<void(bool)> on_state_;
  std::thread thread_;
};

}  // namespace approvald::server
