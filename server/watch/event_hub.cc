#include "server/watch/event_hub.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "db/status_macros.h"
#include "server/ops/log_format.h"
#include "server/watch/event_convert.h"

namespace approvald::server {
namespace {
constexpr int kBatch = 500;
}  // namespace

EventHub::EventHub(db::EventLogConnector connect, std::shared_ptr<spdlog::logger> logger,
                   absl::Duration poll_interval)
    : connect_(std::move(connect)), logger_(std::move(logger)), poll_interval_(poll_interval) {}

EventHub::~EventHub() { Stop(); }

absl::Status EventHub::Start() {
  ASSIGN_OR_RETURN(std::unique_ptr<db::EventLogReader> log, connect_());
  ASSIGN_OR_RETURN(int64_t head, log->Head());
  {
    std::lock_guard<std::mutex> lock(mu_);
    head_ = head;
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void EventHub::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  Wake();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return;
  stopped_ = true;
  for (EventSink* sink : sinks_) sink->OnHubStopped(head_);
  sinks_.clear();
}

bool EventHub::AttachIfCaughtUp(EventSink* sink, int64_t cursor, int64_t* head) {
  std::lock_guard<std::mutex> lock(mu_);
  *head = head_;
  if (stopped_) return false;
  if (cursor < head_) return false;
  sinks_.push_back(sink);
  watched_.store(sinks_.size());
  Wake();
  return true;
}

bool EventHub::AttachAtHead(EventSink* sink) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return false;
  sink->OnAttached(head_);
  sinks_.push_back(sink);
  watched_.store(sinks_.size());
  Wake();
  return true;
}

void EventHub::Detach(EventSink* sink) {
  std::lock_guard<std::mutex> lock(mu_);
  sinks_.erase(std::remove(sinks_.begin(), sinks_.end(), sink), sinks_.end());
  watched_.store(sinks_.size());
}

void EventHub::Poke() {
  if (watched_.load() == 0 || poked_.exchange(true)) return;
  Wake();
}

void EventHub::Wake() {
  { std::lock_guard<std::mutex> lock(wake_mu_); }  // orders the change before a waiter's check
  wake_.notify_all();
}

int64_t EventHub::head() const {
  std::lock_guard<std::mutex> lock(mu_);
  return head_;
}

size_t EventHub::sinks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sinks_.size();
}

bool EventHub::stopped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopped_;
}

void EventHub::Publish(std::vector<Sized> events, int64_t last_id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Sized& e : events) {
    for (EventSink* sink : sinks_) sink->OnEvent(e.event, e.bytes);
  }
  head_ = std::max(head_, last_id);
}

bool EventHub::AdvanceIfUnwatched(int64_t newest) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!sinks_.empty()) return false;  // one attached meanwhile: it needs the events themselves
  head_ = std::max(head_, newest);
  return true;
}

namespace {
// How often the head moves while nobody watches: a watcher that starts "from now on" then may
// get events up to this old.
constexpr absl::Duration kIdlePoll = absl::Milliseconds(100);
// The least time between two reads of the log when pokes come faster (a busy daemon with
// watchers), so that the listener reads at most 500 times a second.
constexpr absl::Duration kMinReadGap = absl::Milliseconds(2);
constexpr absl::Duration kFirstBackoff = absl::Milliseconds(100);
// The longest wait between two reads while chasing a poked event that is held back.
constexpr absl::Duration kMaxChase = absl::Milliseconds(100);
}  // namespace

void EventHub::Pause(absl::Duration timeout, bool until_sink, bool until_poke) {
  std::unique_lock<std::mutex> lock(wake_mu_);
  wake_.wait_for(lock, absl::ToChronoMicroseconds(timeout), [this, until_sink, until_poke] {
    return stopping_.load() || (until_sink && watched_.load() > 0) || (until_poke && poked_.load());
  });
}

void EventHub::Run() {
  std::unique_ptr<db::EventLogReader> log;
  absl::Duration backoff = kFirstBackoff;
  // After a poke, while the log has a newer committed event than the head
  // (the poking transaction's event, held back behind an older transaction that is still
  // running somewhere in the cluster): read again after this delay, doubling up to kMaxChase,
  // so that it is delivered soon after that transaction ends, whatever poll_interval_ is.
  absl::Duration chase = absl::ZeroDuration();
  while (!stopping_) {
    absl::Status st;
    if (!log) {
      absl::StatusOr<std::unique_ptr<db::EventLogReader>> connected = connect_();
      st = connected.status();
      if (st.ok()) {
        log = std::move(*connected);
        if (backoff > kFirstBackoff) {
          if (logger_) logger_->info("database reachable again; event listener reconnected");
          if (on_state_) on_state_(true);
        }
        backoff = kFirstBackoff;
      }
    }
    // Catch up: everything deliverable after the head, in bounded batches. A poke from now on
    // asks for another read.
    const bool poked = poked_.exchange(false);
    const absl::Time read_at = absl::Now();
    bool watched = false;
    while (st.ok() && !stopping_) {
      watched = sinks() > 0;
      if (!watched) {
        // Nobody is watching: move the head without reading (and converting) the events.
        absl::StatusOr<int64_t> newest = log->Head();
        if (!newest.ok()) {
          st = newest.status();
          break;
        }
        if (AdvanceIfUnwatched(*newest)) break;
        watched = true;  // a sink attached meanwhile: it needs the events themselves
      }
      auto batch = log->Read(head(), kBatch);
      if (!batch.ok()) {
        st = batch.status();
        break;
      }
      if (batch->empty()) break;
      std::vector<Sized> events;
      for (const db::EventRecord& e : *batch) {
        auto proto = std::make_shared<approvals::v1::ApprovalEvent>();
        if (absl::Status converted = EventToProto(e, proto.get()); !converted.ok()) {
          if (logger_) logger_->error("event {}: {}", e.id, EscapeForLog(converted.message()));
        }
        const size_t bytes = proto->SpaceUsedLong();
        events.push_back({std::move(proto), bytes});
      }
      Publish(std::move(events), batch->back().id);
      if (static_cast<int>(batch->size()) < kBatch) break;  // all there was: poll again later
    }
    if (!watched || !st.ok()) {
      chase = absl::ZeroDuration();
    } else if (poked || chase > absl::ZeroDuration()) {
      // Even after delivering: an older event may have become deliverable while the poked one
      // is still held back.
      absl::StatusOr<int64_t> newest = log->Newest();
      if (!newest.ok()) {
        st = newest.status();
      } else if (*newest > head()) {
        chase = std::clamp(chase * 2, kMinReadGap, kMaxChase);
      } else {
        chase = absl::ZeroDuration();  // nothing held back
      }
    }
    if (st.ok() && !stopping_ && watched) {
      // Read the log again after poll_interval_ (events other replicas committed, and those an
      // older transaction held back, which become deliverable when it ends), or sooner when
      // this process commits events (Poke) or chases a poked event held back, but not within
      // kMinReadGap of this read.
      Pause(chase > absl::ZeroDuration() ? std::min(chase, poll_interval_) : poll_interval_,
            /*until_sink=*/false, /*until_poke=*/true);
      const absl::Duration since = absl::Now() - read_at;
      if (since < kMinReadGap)
        Pause(kMinReadGap - since, /*until_sink=*/false, /*until_poke=*/false);
    } else if (st.ok() && !stopping_) {
      // Unwatched: look at the head every kIdlePoll; a sink that attaches wakes the thread.
      Pause(kIdlePoll, /*until_sink=*/true, /*until_poke=*/false);
    }
    if (!st.ok() && !stopping_) {
      if (logger_) logger_->warn("event listener: {}; reconnecting", EscapeForLog(st.message()));
      if (on_state_ && backoff == kFirstBackoff) on_state_(false);
      log.reset();
      const absl::Time until = absl::Now() + backoff;
      while (!stopping_ && absl::Now() < until) absl::SleepFor(absl::Milliseconds(20));
      backoff = std::min(backoff * 2, absl::Seconds(5));
    }
  }
}

}  // namespace approvald::server
