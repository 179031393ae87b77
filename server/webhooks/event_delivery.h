#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "db/webhook_store.h"
#include "handlers/webhook_subscriptions.h"
#include "server/webhooks/http_post.h"
#include "server/webhooks/log_wakeup.h"

namespace spdlog {
class logger;
}

namespace approvald::server {

/// Delivers the event log to the config's webhook subscriptions: one thread per subscription,
/// which holds the subscription's lease in the database (so one replica sends it at a time),
/// posts each wanted event after its cursor in order, signed (Standard Webhooks), and moves the
/// cursor after each 2xx. A failure is retried with the subscription's backoff; once the first
/// failure of an event is max_age old the subscription is dead-lettered at that event until
/// Redeliver. After a crash the event in flight may be sent again, never skipped.
class EventDelivery {
 public:
  /// `holder`: this replica's name in the leases (stable across its restarts, unique among
  /// running replicas). `hub`: wakes delivery when events commit (may be null: polls).
  EventDelivery(db::WebhookStore& store, std::string holder, EventHub* hub,
                std::shared_ptr<spdlog::logger> logger);
  ~EventDelivery();

  /// Starts one thread per subscription (replacing any earlier set; their leases released).
  void Start(std::vector<handlers::WebhookSubscription> subscriptions);
  /// Ends every thread, releasing its lease. Idempotent.
  void Stop();
  /// Lets a dead-lettered subscription go on at once (after the store's Redeliver).
  void Poke();
  /// Prometheus text of the webhook metrics (this replica's counters, the subscriptions' state).
  std::string RenderMetrics() const;

 private:
  struct Stats {
    uint64_t delivered = 0;
    uint64_t failed = 0;
    bool leased = false;
    db::WebhookSubscriptionRow row;
    bool known = false;  ///< row has been read
  };
  void Run(const handlers::WebhookSubscription& s);
  /// Sends `e` once; OK for a 2xx.
  absl::Status Send(HttpClient& http, const handlers::WebhookSubscription& s,
                    const db::EventRecord& e);
  void Note(const std::string& name, const std::function<void(Stats&)>& change);

  db::WebhookStore& store_;
  const std::string holder_;
  EventHub* const hub_;
  const std::shared_ptr<spdlog::logger> logger_;
  std::unique_ptr<LogWakeup> wakeup_;
  /// When Stop abandons the posts still in flight (0: running); they get a grace first, so
  /// that one the receiver is answering is recorded rather than sent again.
  std::atomic<int64_t> abandon_at_{0};
  std::vector<handlers::WebhookSubscription> subscriptions_;
  std::vector<std::thread> threads_;
  mutable std::mutex stats_mu_;
  std::map<std::string, Stats> stats_ ABSL_GUARDED_BY(stats_mu_);
};

}  // namespace approvald::server
