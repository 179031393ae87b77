#include "server/watch/watch_reactor.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "db/errors.h"
#include "db/status_macros.h"
#include "server/status_conversion.h"
#include "server/watch/event_convert.h"

namespace approvald::server {
namespace {
constexpr int kReplayBatch = 500;
}  // namespace

WatchReactor::WatchReactor(EventHub& hub, db::ApprovalStore& store, Executor& executor,
                           approvals::v1::WatchApprovalsRequest filter, WatchLimits limits,
                           std::shared_ptr<spdlog::logger> logger)
    : hub_(hub),
      store_(store),
      executor_(executor),
      filter_(std::move(filter)),
      limits_(limits),
      logger_(std::move(logger)) {}

WatchReactor::~WatchReactor() {
  std::lock_guard<std::mutex> lock(mu_);
  ClearQueue();
  if (limits_.budget != nullptr) limits_.budget->Give(pending_charge_);
}

void WatchReactor::Begin() {
  const int64_t start = filter_.after_event_id();
  if (start == 0 && filter_.approval_ids_size() == 0) {
    // From now on: live at once at the hub's head, with no replay task, so that a thousand
    // watchers starting together cost no database work (the hub's lock is never taken under
    // ours; OnAttached sets the cursor under the hub's).
    if (hub_.AttachAtHead(this)) return;
    std::lock_guard<std::mutex> lock(mu_);
    FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "approvald is shutting down"));
    return;
  }
  // With approval ids and no resume point: replayed from their first event (read by approval,
  // so from 0 costs nothing), so that "create, then watch it" misses nothing.
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

absl::Status WatchReactor::ReadMore(int64_t from) {
  // Sized by what the last records weighed, so that a batch holds about kReplayBytes of them
  // as read (a few at first), and never more events than the stream may buffer.
  size_t rows = bytes_per_event_ == 0 ? 16 : kReplayBytes / std::max<size_t>(bytes_per_event_, 1);
  rows = std::clamp<size_t>(rows, 1, std::min<size_t>(kReplayBatch, limits_.max_events));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  std::vector<db::EventRecord> batch;
  if (filter_.approval_ids_size() > 0) {
    const std::vector<std::string> ids(filter_.approval_ids().begin(),
                                       filter_.approval_ids().end());
    ASSIGN_OR_RETURN(db::EventsOf of,
                     store_.ReadEventsOf(ids, from, static_cast<int>(rows), deadline));
    batch = std::move(of.events);
    read_to_ = of.read_to;
  } else {
    ASSIGN_OR_RETURN(batch, store_.ReadEvents(from, static_cast<int>(rows), deadline));
  }
  // A resume point beyond every event ever committed was never given to anyone (a typo, or a
  // database restored from an older backup): refused, rather than waiting for events that may
  // never come.
  if (batch.empty() && from == filter_.after_event_id()) {
    ASSIGN_OR_RETURN(int64_t newest, store_.NewestEventId(deadline));
    if (from > std::max<int64_t>(newest, 1)) {  // 1: "from the start", even if empty
      return db::FieldError("after_event_id",
                            absl::StrCat("is beyond the newest event (", newest,
                                         "); resume from an event id this stream has sent, or 0 "
                                         "for new events only"));
    }
  }
  log_exhausted_ = batch.size() < rows;
  size_t bytes = 0;
  for (const db::EventRecord& e : batch) bytes += db::HeldBytes(e);
  if (!batch.empty()) bytes_per_event_ = bytes / batch.size();
  if (limits_.budget != nullptr && !limits_.budget->TryTake(bytes)) {
    return OverBudgetError();
  }
  pending_charge_ += bytes;
  for (db::EventRecord& e : batch) pending_.push_back(std::move(e));
  return absl::OkStatus();
}

void WatchReactor::ReplayBatch() {
  absl::Status st;
  int64_t from = 0;
  bool finished = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    from = cursor_;
    finished = finished_;
  }
  if (st.ok() && !finished && pending_.empty()) st = ReadMore(from);
  // Converted a few at a time, as the client reads: at most about kReplayBytes (at least one
  // event, however large), charged to the budget while they wait to be sent.
  std::vector<Queued> converted;
  size_t converted_bytes = 0;
  while (st.ok() && !finished && !pending_.empty() && converted_bytes < kReplayBytes) {
    auto proto = std::make_shared<approvals::v1::ApprovalEvent>();
    (void)EventToProto(pending_.front(), proto.get());
    const size_t bytes = proto->SpaceUsedLong();
    if (limits_.budget != nullptr && !limits_.budget->TryTake(bytes)) {
      st = OverBudgetError();
      break;
    }
    const size_t held = db::HeldBytes(pending_.front());
    pending_.pop_front();
    pending_charge_ -= held;
    if (limits_.budget != nullptr) limits_.budget->Give(held);
    converted_bytes += bytes;
    converted.push_back({std::move(proto), bytes, limits_.budget != nullptr});
  }

  // Only this task moves the cursor until the reactor is attached, so attaching with the cursor
  // read under the lock is exact. The hub's lock is never taken while holding ours.
  bool try_attach = false;
  int64_t cursor = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Queued& item : converted) Enqueue(std::move(item));
    // Read by approval: the log up to read_to_ holds nothing more for this stream.
    if (!finished_ && pending_.empty()) cursor_ = std::max(cursor_, read_to_);
    if (!finished_ && !st.ok() && st.code() == absl::StatusCode::kInvalidArgument) {
      FinishOnce(ToGrpcStatus(st));
    } else if (!finished_ && !st.ok()) {
      FinishOnce(ToGrpcStatus(absl::Status(
          st.code(), absl::StrCat(st.message(), "; resume with after_event_id=", last_sent_))));
    }
    try_attach = !finished_ && pending_.empty() && log_exhausted_;
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

void WatchReactor::Enqueue(Queued item) {
  const approvals::v1::ApprovalEvent& event = *item.event;
  if (finished_ || event.event_id() <= cursor_ || !EventMatches(event, filter_)) {
    if (!finished_ && event.event_id() > cursor_) cursor_ = event.event_id();  // filtered out
    Release(item);  // already seen (no duplicates), hidden by the filter, or too late
    return;
  }
  cursor_ = event.event_id();
  if (!queue_.empty() && !item.charged &&
      (queue_.size() >= limits_.max_events || queued_bytes_ + item.bytes > limits_.max_bytes)) {
    Release(item);
    FinishOnce(
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                     absl::StrCat("watcher too slow: more than ", limits_.max_events, " events or ",
                                  limits_.max_bytes >> 20,
                                  " MiB buffered; resume with after_event_id=", last_sent_)));
    return;
  }
  queued_bytes_ += item.bytes;
  queue_.push_back(std::move(item));
  WriteNext();
}

void WatchReactor::Release(const Queued& item) {
  if (item.charged && limits_.budget != nullptr) limits_.budget->Give(item.bytes);
}

void WatchReactor::ClearQueue() {
  for (const Queued& item : queue_) Release(item);
  queue_.clear();
  queued_bytes_ = 0;
}

void WatchReactor::WriteNext() {
  if (writing_ || finished_ || queue_.empty()) return;
  writing_ = true;
  StartWrite(queue_.front().event.get());
}

void WatchReactor::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  writing_ = false;
  if (ok && !queue_.empty()) {
    // Sent, also when the stream ended meanwhile (a client that cancels right after reading
    // it): the log line's count includes it.
    last_sent_ = queue_.front().event->event_id();
    ++sent_;
    queued_bytes_ -= queue_.front().bytes;
    Release(queue_.front());
    queue_.pop_front();
  }
  if (finished_) {
    ClearQueue();
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

void WatchReactor::OnEvent(const EventPtr& event, size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  Enqueue({event, bytes, /*charged=*/false});  // shared by every stream: not this one's to charge
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
  if (!writing_) ClearQueue();  // an event being written stays alive until OnWriteDone
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
