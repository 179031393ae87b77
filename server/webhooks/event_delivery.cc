#include "server/webhooks/event_delivery.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "db/status_macros.h"
#include "server/webhooks/http_post.h"
#include "server/webhooks/signing.h"
#include "server/webhooks/webhook_messages.h"

namespace approvald::server {
namespace {

// How long Stop lets a post in flight finish before abandoning it.
constexpr absl::Duration kStopGrace = absl::Seconds(2);
constexpr int kBatch = 100;
constexpr absl::Duration kIdle = absl::Seconds(1);  // longest wait without a wake-up
// How often a replica that does not hold a subscription reads its state (for the metrics).
constexpr absl::Duration kStateRefresh = absl::Seconds(5);

// Time kept in hand at the end of a lease: clocks of the replica and the database differ in
// how they measure it.
absl::Duration Margin(absl::Duration lease) { return std::min(absl::Seconds(1), lease / 4); }

}  // namespace

EventDelivery::EventDelivery(db::WebhookStore& store, std::string holder, EventHub* hub,
                             std::shared_ptr<spdlog::logger> logger)
    : store_(store), holder_(std::move(holder)), hub_(hub), logger_(std::move(logger)) {}

EventDelivery::~EventDelivery() { Stop(); }

void EventDelivery::Start(std::vector<handlers::WebhookSubscription> subscriptions) {
  Stop();
  subscriptions_ = std::move(subscriptions);
  if (subscriptions_.empty()) return;
  abandon_at_ = 0;
  wakeup_ = std::make_unique<LogWakeup>(hub_);
  for (const handlers::WebhookSubscription& s : subscriptions_) {
    threads_.emplace_back([this, &s] { Run(s); });
  }
}

void EventDelivery::Stop() {
  abandon_at_ = absl::ToUnixNanos(absl::Now() + kStopGrace);
  if (wakeup_) wakeup_->Stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  wakeup_.reset();
}

void EventDelivery::Poke() {
  if (wakeup_) wakeup_->Poke();
}

void EventDelivery::Note(const std::string& name, const std::function<void(Stats&)>& change) {
  std::lock_guard<std::mutex> lock(stats_mu_);
  change(stats_[name]);
}

absl::Status EventDelivery::Send(HttpClient& http, const handlers::WebhookSubscription& s,
                                 const db::EventRecord& e) {
  ASSIGN_OR_RETURN(std::string body, EventBody(e, s.format));
  const std::string id = EventWebhookId(s.name, e.id);
  const int64_t timestamp = absl::ToUnixSeconds(absl::Now());
  PostRequest post;
  post.url = s.target.url;
  post.headers = {{"webhook-id", id},
                  {"webhook-timestamp", absl::StrCat(timestamp)},
                  {"webhook-signature", WebhookSignature(s.target.keys, id, timestamp, body)}};
  post.body = std::move(body);
  post.timeout = s.target.timeout;
  post.ca_file = s.target.ca_file;
  post.abandon_at = &abandon_at_;
  ASSIGN_OR_RETURN(PostAnswer answer, http.Post(post));
  if (answer.status >= 200 && answer.status < 300) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("HTTP ", answer.status, ": ", BodyExcerpt(answer.body, 200)));
}

void EventDelivery::Run(const handlers::WebhookSubscription& s) {
  LogWakeup& wake = *wakeup_;
  HttpClient http;
  absl::BitGen bits;
  std::string token;  // this replica's lease, while it holds one
  while (!wake.stopped()) {
    const absl::Status registered = store_.Register(s.name);
    if (registered.ok()) break;
    if (logger_) {
      logger_->warn("webhook {}: cannot register: {}", s.name, std::string(registered.message()));
    }
    wake.Sleep(kIdle);
  }
  absl::Time last_refresh = absl::InfinitePast();
  while (!wake.stopped()) {
    const uint64_t seen = wake.generation();
    const absl::Time asked = absl::Now();
    absl::StatusOr<std::optional<db::WebhookSubscriptionRow>> acquired =
        store_.Acquire(s.name, holder_, s.lease);
    if (!acquired.ok() || !acquired->has_value()) {
      token.clear();
      Note(s.name, [](Stats& st) { st.leased = false; });
      if (!acquired.ok() && logger_) {
        logger_->warn("webhook {}: {}", s.name, std::string(acquired.status().message()));
      } else if (absl::Now() - last_refresh > kStateRefresh) {
        // Another replica delivers it; its state still shows in this one's metrics.
        last_refresh = absl::Now();
        if (auto all = store_.List(); all.ok()) {
          for (db::WebhookSubscriptionRow& row : *all) {
            if (row.name != s.name) continue;
            Note(s.name, [&row](Stats& st) {
              st.row = std::move(row);
              st.known = true;
            });
          }
        }
      }
      wake.Sleep(std::min(kIdle, s.lease / 3));
      continue;
    }
    db::WebhookSubscriptionRow row = std::move(**acquired);
    if (token != *row.lease_token && logger_) {
      logger_->info("webhook {}: delivering from event {} (lease taken by {})", s.name, row.cursor,
                    holder_);
    }
    token = *row.lease_token;
    absl::Time lease_end = asked + s.lease - Margin(s.lease);
    Note(s.name, [&row](Stats& st) {
      st.leased = true;
      st.row = row;
      st.known = true;
    });
    if (row.state != "active") {
      wake.Wait(seen, std::min(kIdle, s.lease / 3));  // a Redeliver here pokes
      continue;
    }
    if (row.retry_in > absl::ZeroDuration()) {
      wake.Sleep(std::min(row.retry_in, s.lease / 3));  // events do not cut a backoff short
      continue;
    }
    absl::StatusOr<std::vector<db::EventRecord>> events = store_.ReadEvents(row.cursor, kBatch);
    if (!events.ok()) {
      if (logger_) logger_->warn("webhook {}: {}", s.name, std::string(events.status().message()));
      wake.Sleep(kIdle);
      continue;
    }
    if (events->empty()) {
      wake.Wait(seen, std::min(kIdle, s.lease / 3));
      continue;
    }
    int64_t handled = row.cursor;
    for (const db::EventRecord& e : *events) {
      if (wake.stopped()) break;
      if (!WantsEvent(s, e)) {
        handled = e.id;
        continue;
      }
      if (absl::Now() + s.target.timeout > lease_end) {
        // Renew first: an attempt must never outlive the lease it was started under.
        const absl::Time renewing = absl::Now();
        if (!store_.Advance(s.name, token, handled, 0, s.lease).ok()) break;
        lease_end = renewing + s.lease - Margin(s.lease);
      }
      const absl::Status sent = Send(http, s, e);
      if (absl::IsCancelled(sent)) break;  // stopping: the next holder sends it
      const absl::Time answered = absl::Now();
      if (sent.ok()) {
        handled = e.id;
        Note(s.name, [](Stats& st) { ++st.delivered; });
        if (!store_.Advance(s.name, token, handled, 1, s.lease).ok()) break;
        lease_end = answered + s.lease - Margin(s.lease);
        continue;
      }
      Note(s.name, [](Stats& st) { ++st.failed; });
      if (handled > row.cursor && !store_.Advance(s.name, token, handled, 0, s.lease).ok()) break;
      const int attempt = row.failing_event_id == e.id ? row.attempts + 1 : 1;
      db::WebhookFailure failure;
      failure.event_id = e.id;
      failure.error = std::string(sent.message());
      failure.retry_after = s.backoff.Delay(attempt, absl::Uniform(bits, 0.0, 1.0));
      failure.max_age = s.max_age;
      absl::StatusOr<db::WebhookSubscriptionRow> after =
          store_.RecordFailure(s.name, token, failure);
      if (after.ok()) {
        if (logger_ && after->state == "dead_letter") {
          logger_->error(
              "webhook {}: dead-lettered at event {} after {} attempts: {} (redeliver with "
              "`approvalctl webhooks redeliver {}`)",
              s.name, e.id, after->attempts, failure.error, s.name);
        } else if (logger_) {
          logger_->warn("webhook {}: event {} attempt {} failed: {}", s.name, e.id, attempt,
                        failure.error);
        }
        Note(s.name, [&after](Stats& st) { st.row = *after; });
      }
      handled = row.cursor;  // the cursor was moved above, before the failure
      break;
    }
    if (handled > row.cursor) (void)store_.Advance(s.name, token, handled, 0, s.lease);
  }
  if (!token.empty()) (void)store_.Release(s.name, token);
}

std::string EventDelivery::RenderMetrics() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  if (stats_.empty()) return "";
  std::string out =
      "# HELP approvald_webhook_deliveries_total Event webhook attempts by this replica, by "
      "subscription and result.\n# TYPE approvald_webhook_deliveries_total counter\n";
  for (const auto& [name, st] : stats_) {
    absl::StrAppend(&out, "approvald_webhook_deliveries_total{subscription=\"", name,
                    "\",result=\"delivered\"} ", st.delivered, "\n",
                    "approvald_webhook_deliveries_total{subscription=\"", name,
                    "\",result=\"failed\"} ", st.failed, "\n");
  }
  // One gauge per subscription.
  auto gauge = [&](const char* name, const char* help, int64_t (*value)(const Stats&)) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " gauge\n");
    for (const auto& [subscription, st] : stats_) {
      absl::StrAppend(&out, name, "{subscription=\"", subscription, "\"} ", value(st), "\n");
    }
  };
  gauge("approvald_webhook_dead_letter",
        "1 while the subscription is dead-lettered (nothing is sent until it is redelivered).",
        [](const Stats& st) -> int64_t { return st.known && st.row.state == "dead_letter"; });
  gauge("approvald_webhook_failing_attempts",
        "Failed attempts at the event the subscription is stuck on (0 when it is not).",
        [](const Stats& st) -> int64_t { return st.known ? st.row.attempts : 0; });
  gauge("approvald_webhook_cursor", "The last event id the subscription has handled.",
        [](const Stats& st) -> int64_t { return st.known ? st.row.cursor : 0; });
  gauge("approvald_webhook_leased", "1 if this replica delivers the subscription now.",
        [](const Stats& st) -> int64_t { return st.leased; });
  return out;
}

}  // namespace approvald::server
