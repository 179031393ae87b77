#include "server/event_hub.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "db/pg/pg_connection.h"
#include "db/pg/pg_events.h"
#include "db/status_macros.h"
#include "server/event_convert.h"
#include "server/log_format.h"

namespace approvald::server {
namespace {
constexpr int kBatch = 500;
}  // namespace

EventHub::EventHub(std::string dsn, std::shared_ptr<spdlog::logger> logger,
                   absl::Duration poll_interval)
    : dsn_(std::move(dsn)), logger_(std::move(logger)), poll_interval_(poll_interval) {}

EventHub::~EventHub() { Stop(); }

absl::Status EventHub::Start() {
  ASSIGN_OR_RETURN(auto conn, db::pg::PgConnection::Connect(dsn_));
  ASSIGN_OR_RETURN(int64_t head, db::pg::EventsHead(*conn));
  {
    std::lock_guard<std::mutex> lock(mu_);
    head_ = head;
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void EventHub::Stop() {
  stopping_ = true;
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
  return true;
}

bool EventHub::AttachAtHead(EventSink* sink) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return false;
  sink->OnAttached(head_);
  sinks_.push_back(sink);
  return true;
}

void EventHub::Detach(EventSink* sink) {
  std::lock_guard<std::mutex> lock(mu_);
  sinks_.erase(std::remove(sinks_.begin(), sinks_.end(), sink), sinks_.end());
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

void EventHub::Publish(std::vector<std::shared_ptr<const approvals::v1::ApprovalEvent>> events,
                       int64_t last_id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& e : events) {
    for (EventSink* sink : sinks_) sink->OnEvent(e);
  }
  head_ = std::max(head_, last_id);
}

namespace {
constexpr absl::Duration kIdleBatching = absl::Milliseconds(100);
}  // namespace

void EventHub::Run() {
  std::unique_ptr<db::pg::PgConnection> conn;
  absl::Duration backoff = absl::Milliseconds(100);
  while (!stopping_) {
    absl::Status st;
    if (!conn) {
      auto connected = db::pg::PgConnection::Connect(dsn_);
      st = connected.ok() ? db::pg::ListenForEvents(**connected) : connected.status();
      if (st.ok()) {
        conn = std::move(*connected);
        if (backoff > absl::Milliseconds(100)) {
          if (logger_) logger_->info("database reachable again; event listener reconnected");
          if (on_state_) on_state_(true);
        }
        backoff = absl::Milliseconds(100);
      }
    }
    // Catch up: everything deliverable after the head, in bounded batches.
    bool held_back = false;
    while (st.ok() && !stopping_) {
      const int64_t from = head();
      auto batch = db::pg::ReadEventBatch(*conn, from, kBatch);
      if (!batch.ok()) {
        st = batch.status();
        break;
      }
      if (batch->empty()) {
        auto held = db::pg::EventsHeldBack(*conn, from);
        st = held.status();
        held_back = held.ok() && *held;
        break;
      }
      std::vector<std::shared_ptr<const approvals::v1::ApprovalEvent>> events;
      for (const db::EventRecord& e : *batch) {
        auto proto = std::make_shared<approvals::v1::ApprovalEvent>();
        if (absl::Status converted = EventToProto(e, proto.get()); !converted.ok()) {
          if (logger_) logger_->error("event {}: {}", e.id, EscapeForLog(converted.message()));
        }
        events.push_back(std::move(proto));
      }
      Publish(std::move(events), batch->back().id);
      if (static_cast<int>(batch->size()) < kBatch) continue;  // re-check: more may be ready
    }
    if (st.ok() && !stopping_) {
      // Held-back events become deliverable when an older transaction ends, which may send
      // no notification: look again soon.
      auto woke = conn->WaitForNotification(held_back ? absl::Milliseconds(20) : poll_interval_);
      st = woke.status();
      // Nobody is watching: let the commits of the next moment pile up and read them in one
      // batch, instead of two queries per commit (the database's CPU is the daemon's limit).
      // The head then trails by at most this much; a watcher that attaches meanwhile replays.
      if (st.ok() && *woke && sinks() == 0) {
        const absl::Time until = absl::Now() + kIdleBatching;
        while (!stopping_ && absl::Now() < until && sinks() == 0) {
          absl::SleepFor(absl::Milliseconds(5));
        }
      }
    }
    if (!st.ok() && !stopping_) {
      if (logger_) logger_->warn("event listener: {}; reconnecting", EscapeForLog(st.message()));
      if (on_state_ && backoff == absl::Milliseconds(100)) on_state_(false);
      conn.reset();
      const absl::Time until = absl::Now() + backoff;
      while (!stopping_ && absl::Now() < until) absl::SleepFor(absl::Milliseconds(20));
      backoff = std::min(backoff * 2, absl::Seconds(5));
    }
  }
}

}  // namespace approvald::server
