#include "server/watch_reactor.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "db/errors.h"
#include "server/event_convert.h"
#include "server/status_conversion.h"

namespace approvald::server {
namespace {
constexpr int kReplayBatch = 500;
}  // namespace

WatchReactor::WatchReactor(EventHub& hub, db::ApprovalStore& store, Executor& executor,
                           approvals::v1::WatchApprovalsRequest filter, size_t max_buffer,
                           std::shared_ptr<spdlog::logger> logger)
    : hub_(hub),
      store_(store),
      executor_(executor),
      filter_(std::move(filter)),
      max_buffer_(max_buffer),
      logger_(std::move(logger)) {}

void WatchReactor::Begin() {
  int64_t start = filter_.after_event_id();
  if (start == 0) {
    // From now on: live at once at the hub's head, with no replay task, so that a thousand
    // watchers starting together cost no database work (the hub's lock is never taken under
    // ours; OnAttached sets the cursor under the hub's).
    if (hub_.AttachAtHead(this)) return;
    std::lock_guard<std::mutex> lock(mu_);
    FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "approvald is shutting down"));
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  cursor_ = last_sent_ = start;
  ScheduleReplay();
}

void WatchReactor::ScheduleReplay() {
  if (replay_scheduled_ || finished_ || live_) return;
  replay_scheduled_ = true;
  if (!executor_.TrySubmit([this] { ReplayBatch(); })) {
    replay_scheduled_ = false;
    FinishOnce(ToGrpcStatus(absl::ResourceExhaustedError(
        absl::StrCat("approvald is overloaded; resume with after_event_id=", last_sent_))));
  }
}

void WatchReactor::ReplayBatch() {
  int64_t from = 0;
  bool finished = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    from = cursor_;
    finished = finished_;
  }
  absl::StatusOr<std::vector<db::EventRecord>> batch;
  // A batch never exceeds the buffer: replay is paced by the client, so it never overflows.
  const int limit = static_cast<int>(std::min<size_t>(kReplayBatch, max_buffer_));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  if (!finished) batch = store_.ReadEvents(from, limit, deadline);
  // A resume point beyond every event ever committed was never given to anyone (a typo, or a
  // database restored from an older backup): refused, rather than waiting for events that may
  // never come.
  if (!finished && batch.ok() && batch->empty() && from == filter_.after_event_id()) {
    absl::StatusOr<int64_t> newest = store_.NewestEventId(deadline);
    if (!newest.ok()) {
      batch = newest.status();
    } else if (from > std::max<int64_t>(*newest, 1)) {  // 1: "from the start", even if empty
      batch = db::FieldError("after_event_id",
                             absl::StrCat("is beyond the newest event (", *newest,
                                          "); resume from an event id this stream has sent, or 0 "
                                          "for new events only"));
    }
  }

  // Only this task moves the cursor until the reactor is attached, so attaching with the cursor
  // read under the lock is exact. The hub's lock is never taken while holding ours.
  bool try_attach = false;
  int64_t cursor = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!finished_ && !batch.ok() && batch.status().code() == absl::StatusCode::kInvalidArgument) {
      FinishOnce(ToGrpcStatus(batch.status()));
    } else if (!finished_ && !batch.ok()) {
      FinishOnce(ToGrpcStatus(absl::Status(
          batch.status().code(),
          absl::StrCat(batch.status().message(), "; resume with after_event_id=", last_sent_))));
    } else if (!finished_) {
      for (const db::EventRecord& e : *batch) {
        auto proto = std::make_shared<approvals::v1::ApprovalEvent>();
        (void)EventToProto(e, proto.get());
        Enqueue(proto);
      }
      try_attach = !finished_ && batch->size() < static_cast<size_t>(limit);
    }
    cursor = cursor_;
  }
  int64_t head = 0;
  const bool attached = try_attach && hub_.AttachIfCaughtUp(this, cursor, &head);
  // Shutting down: a stream still replaying ends at this batch's edge, with where to resume,
  // rather than replaying on until gRPC's own shutdown cancels it.
  const bool hub_stopped = !attached && hub_.stopped();

  bool detach = false;
  bool delete_self = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (attached) live_ = true;
    if (hub_stopped) {
      FinishOnce(grpc::Status(
          grpc::StatusCode::UNAVAILABLE,
          absl::StrCat("approvald is shutting down; resume with after_event_id=", last_sent_)));
    }
    detach = attached && finished_;
    if (!detach) {
      replay_scheduled_ = false;
      // Paced by the client: the next batch is read once this one is written.
      if (!finished_ && !live_ && queue_.empty()) ScheduleReplay();
      delete_self = done_ && !replay_scheduled_;
    }
  }
  if (detach) {
    // replay_scheduled_ is still set, so OnDone cannot delete this reactor during the call.
    hub_.Detach(this);
    std::lock_guard<std::mutex> lock(mu_);
    replay_scheduled_ = false;
    delete_self = done_;
  }
  // Once the lock is released with replay_scheduled_ clear, OnDone may delete this reactor:
  // no member is touched after it.
  if (delete_self) delete this;
}

void WatchReactor::Enqueue(const EventPtr& event) {
  if (finished_ || event->event_id() <= cursor_) return;  // already seen: no duplicates
  cursor_ = event->event_id();
  if (!EventMatches(*event, filter_)) return;
  if (queue_.size() >= max_buffer_) {
    FinishOnce(
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                     absl::StrCat("watcher too slow: more than ", max_buffer_,
                                  " events buffered; resume with after_event_id=", last_sent_)));
    return;
  }
  queue_.push_back(event);
  WriteNext();
}

void WatchReactor::WriteNext() {
  if (writing_ || finished_ || queue_.empty()) return;
  writing_ = true;
  StartWrite(queue_.front().get());
}

void WatchReactor::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  writing_ = false;
  if (ok && !queue_.empty()) {
    // Sent, also when the stream ended meanwhile (a client that cancels right after reading
    // it): the log line's count includes it.
    last_sent_ = queue_.front()->event_id();
    ++sent_;
    queue_.pop_front();
  }
  if (finished_) {
    queue_.clear();
    return;
  }
  if (!ok) {
    // The client is gone (it cancelled or its connection broke): nobody reads this status, the
    // log line does.
    FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away during a write"));
    return;
  }
  WriteNext();
  if (queue_.empty() && !live_) ScheduleReplay();
}

void WatchReactor::OnAttached(int64_t head) {
  std::lock_guard<std::mutex> lock(mu_);
  cursor_ = last_sent_ = head;
  live_ = true;
}

void WatchReactor::OnEvent(const EventPtr& event) {
  std::lock_guard<std::mutex> lock(mu_);
  Enqueue(event);
}

void WatchReactor::OnHubStopped(int64_t) {
  std::lock_guard<std::mutex> lock(mu_);
  live_ = false;
  FinishOnce(grpc::Status(
      grpc::StatusCode::UNAVAILABLE,
      absl::StrCat("approvald is shutting down; resume with after_event_id=", last_sent_)));
}

void WatchReactor::OnCancel() {
  std::lock_guard<std::mutex> lock(mu_);
  FinishOnce(grpc::Status::CANCELLED);
}

void WatchReactor::FinishOnce(const grpc::Status& status) {
  if (finished_) return;
  finished_ = true;
  final_status_ = status;
  if (!writing_) queue_.clear();  // an event being written stays alive until OnWriteDone
  Finish(status);
}

void WatchReactor::OnDone() {
  hub_.Detach(this);  // after this the hub never calls us again
  grpc::Status status;
  int64_t sent = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    status = final_status_;
    sent = sent_;
  }
  // Before done_ is set: from then on a replay task still running may delete this reactor, so
  // nothing after that lock may touch a member (on_done_ included).
  if (on_done_) on_done_(status, sent);
  bool delete_now;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    delete_now = !replay_scheduled_;
  }
  if (delete_now) delete this;
}

}  // namespace approvald::server
