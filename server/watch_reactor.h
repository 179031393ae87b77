#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "approvals/v1/approvals.pb.h"
#include "db/approval_store.h"
#include "server/event_hub.h"
#include "server/executor.h"

namespace spdlog {
class logger;
}

namespace approvald::server {

/// One WatchApprovals stream. With after_event_id = K it replays events after K from the log in
/// bounded batches (on the executor, paced by the client's reads), then attaches to the hub
/// with no gap and no duplicate (events are deduplicated by id). Its buffer is bounded: a
/// watcher that falls `max_buffer` events behind ends with RESOURCE_EXHAUSTED, telling it where
/// to resume; nothing is lost and nobody else waits. Deletes itself when done.
class WatchReactor final : public grpc::ServerWriteReactor<approvals::v1::ApprovalEvent>,
                           public EventSink {
 public:
  WatchReactor(EventHub& hub, db::ApprovalStore& store, Executor& executor,
               approvals::v1::WatchApprovalsRequest filter, size_t max_buffer,
               std::shared_ptr<spdlog::logger> logger);

  /// Called once, when the stream is over, with its final status and how many events it sent.
  using DoneFn = std::function<void(const grpc::Status& status, int64_t sent)>;
  void SetOnDone(DoneFn on_done) { on_done_ = std::move(on_done); }

  /// Starts replaying (or attaches at once for after_event_id = 0).
  void Begin();

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;
  void OnEvent(const std::shared_ptr<const approvals::v1::ApprovalEvent>& event) override;
  void OnHubStopped(int64_t head) override;
  void OnAttached(int64_t head) override;

 private:
  using EventPtr = std::shared_ptr<const approvals::v1::ApprovalEvent>;

  void ScheduleReplay() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReplayBatch();
  void Enqueue(const EventPtr& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishOnce(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  EventHub& hub_;
  db::ApprovalStore& store_;
  Executor& executor_;
  const approvals::v1::WatchApprovalsRequest filter_;
  const size_t max_buffer_;
  std::shared_ptr<spdlog::logger> logger_;
  DoneFn on_done_;

  std::mutex mu_;
  int64_t cursor_ ABSL_GUARDED_BY(mu_) = 0;     ///< newest event id seen (sent or filtered)
  int64_t last_sent_ ABSL_GUARDED_BY(mu_) = 0;  ///< newest event id written to the client
  int64_t sent_ ABSL_GUARDED_BY(mu_) = 0;       ///< events written to the client
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
  std::deque<EventPtr> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool live_ ABSL_GUARDED_BY(mu_) = false;  ///< attached to the hub
  bool replay_scheduled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;  ///< OnDone ran; the last replay task deletes us
};

}  // namespace approvald::server
