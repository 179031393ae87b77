#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "approvals/v1/approvals.pb.h"
#include "db/approval_store.h"
#include "server/executor.h"
#include "server/ops/memory_budget.h"
#include "server/watch/event_hub.h"

namespace spdlog {
class logger;
}

namespace approvald::server {

/// What one stream may hold: live events it has not sent yet (shared with the other streams),
/// and the events it replays from the log, which are its own and charged to `budget`.
struct WatchLimits {
  size_t max_events = 1024;             ///< live events waiting to be sent
  size_t max_bytes = 16 * 1024 * 1024;  ///< their size in memory
  MemoryBudget* budget = nullptr;       ///< replay buffers of every stream (null: unbounded)
};

/// One WatchApprovals stream. With after_event_id = K (or approval_ids, from K = 0: every event
/// they have, read by approval rather than by scanning the log) it replays events after K in
/// bounded batches (on the executor, paced by the client's reads), then attaches to the hub
/// with no gap and no duplicate (events are deduplicated by id). A replay batch holds at most
/// about kReplayBytes of converted events (records are read from the log in batches sized by
/// what the last ones weighed, and converted a few at a time as the client reads), charged to
/// the daemon's MemoryBudget; when the budget is spent the stream ends with RESOURCE_EXHAUSTED
/// and where to resume. Live, a watcher that falls `max_events` events or `max_bytes` behind
/// ends the same way; nothing is lost and nobody else waits. Deletes itself when done.
class WatchReactor final : public grpc::ServerWriteReactor<approvals::v1::ApprovalEvent>,
                           public EventSink {
 public:
  /// Converted replay events a stream holds at once (at least one, however large).
  static constexpr size_t kReplayBytes = 2 * 1024 * 1024;

  WatchReactor(EventHub& hub, db::ApprovalStore& store, Executor& executor,
               approvals::v1::WatchApprovalsRequest filter, WatchLimits limits,
               std::shared_ptr<spdlog::logger> logger);
  ~WatchReactor() override;

  /// Called once, when the stream is over, with its final status and how many events it sent.
  using DoneFn = std::function<void(const grpc::Status& status, int64_t sent)>;
  void SetOnDone(DoneFn on_done) { on_done_ = std::move(on_done); }

  /// Starts replaying (or attaches at once for after_event_id = 0).
  void Begin();

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;
  void OnEvent(const std::shared_ptr<const approvals::v1::ApprovalEvent>& event,
               size_t bytes) override;
  void OnHubStopped(int64_t head) override;
  void OnAttached(int64_t head) override;

 private:
  using EventPtr = std::shared_ptr<const approvals::v1::ApprovalEvent>;

  struct Queued {
    EventPtr event;
    size_t bytes = 0;
    bool charged = false;  ///< a replayed event, charged to the budget
  };

  void ScheduleReplay() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReplayBatch();
  // Reads the next records after `from` into pending_ (replay task only), sets log_exhausted_
  // when they are all the log holds now, and charges them to the budget. INVALID_ARGUMENT for a
  // resume point beyond the newest event; RESOURCE_EXHAUSTED when the budget is spent.
  absl::Status ReadMore(int64_t from);
  void Enqueue(Queued item) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Release(const Queued& item) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ClearQueue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishOnce(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  EventHub& hub_;
  db::ApprovalStore& store_;
  Executor& executor_;
  const approvals::v1::WatchApprovalsRequest filter_;
  const WatchLimits limits_;
  std::shared_ptr<spdlog::logger> logger_;
  DoneFn on_done_;

  std::mutex mu_;
  int64_t cursor_ ABSL_GUARDED_BY(mu_) = 0;     ///< newest event id seen (sent or filtered)
  int64_t last_sent_ ABSL_GUARDED_BY(mu_) = 0;  ///< newest event id written to the client
  int64_t sent_ ABSL_GUARDED_BY(mu_) = 0;       ///< events written to the client
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Only the replay task (one at a time) touches these, and the destructor after it.
  std::deque<db::EventRecord> pending_;  ///< read from the log, not yet converted
  size_t pending_charge_ = 0;            ///< their HeldBytes, charged to the budget
  bool log_exhausted_ = false;           ///< the last read returned all the log had
  int64_t read_to_ = 0;         ///< approval_ids: the log holds nothing more for us up to here
  size_t bytes_per_event_ = 0;  ///< what the last records read weighed, on average
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool live_ ABSL_GUARDED_BY(mu_) = false;  ///< attached to the hub
  bool replay_scheduled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;  ///< OnDone ran; the last replay task deletes us
};

}  // namespace approvald::server
