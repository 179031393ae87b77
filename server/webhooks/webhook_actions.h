#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "db/execution_store.h"
#include "handlers/handler_registry.h"
#include "server/webhooks/http_post.h"
#include "server/webhooks/log_wakeup.h"

namespace spdlog {
class logger;
}

namespace approvald::server {

/// Runs the executions of `webhook` action types: a few threads claim them from the execution
/// queue (the same leases, fencing and retries as callers' workers), POST the approval to the
/// type's URL signed, with the execution id as Idempotency-Key, and complete or fail them by
/// the answer: 2xx completes (the body as the result), 4xx but 408/429 fails for good, anything
/// else is retried with the type's backoff until max_attempts.
class WebhookActions {
 public:
  WebhookActions(db::ExecutionStore& store, std::string worker, EventHub* hub,
                 std::shared_ptr<spdlog::logger> logger, int threads = 4);
  ~WebhookActions();

  /// The action types (at start and after a config reload); starts the threads once there
  /// are webhook types.
  void SetRegistry(std::shared_ptr<const handlers::HandlerRegistry> registry);
  /// Ends the threads; an attempt in flight finishes first (within its timeout). Idempotent.
  void Stop();
  std::string RenderMetrics() const;

 private:
  void Run();
  /// One attempt at a claimed execution, answered to the store.
  void Attempt(HttpClient& http, const handlers::ActionType& type, const db::ExecutionRecord& x,
               const std::vector<std::string>& types);
  std::shared_ptr<const handlers::HandlerRegistry> registry() const;
  void Count(const std::string& type, const std::string& result);

  db::ExecutionStore& store_;
  const std::string worker_;
  EventHub* const hub_;
  const std::shared_ptr<spdlog::logger> logger_;
  const int threads_count_;
  std::mutex start_mu_;  // threads_, wakeup_, stopped_
  bool stopped_ = false;
  /// When Stop abandons the posts still in flight (0: running); they get a grace first, so
  /// that one the receiver is answering is recorded rather than sent again.
  std::atomic<int64_t> abandon_at_{0};
  std::unique_ptr<LogWakeup> wakeup_;
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;
  std::shared_ptr<const handlers::HandlerRegistry> registry_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, uint64_t> attempts_ ABSL_GUARDED_BY(mu_);
  std::mutex types_mu_;  // never held with mu_: read on the event hub's thread
  std::set<std::string> webhook_types_ ABSL_GUARDED_BY(types_mu_);
};

}  // namespace approvald::server
