#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace approvald::server {

/// Up to `max_threads` worker threads with a bounded queue, for the blocking database work that
/// gRPC's callback threads must never do. A worker starts when a task finds none free, and then
/// stays: a daemon whose calls never block holds no workers, a busy one holds as many as it
/// needed at once. Thread-safe.
class Executor {
 public:
  Executor(int max_threads, size_t max_queue);
  ~Executor();

  /// Queues `task`; false (and the task is dropped) if the queue is full, the executor stopped,
  /// or it has no worker and cannot start one.
  [[nodiscard]] bool TrySubmit(std::function<void()> task);
  /// Runs every queued task, then joins the workers. Idempotent.
  void Shutdown();
  size_t queue_depth() const;
  /// Workers started so far.
  size_t threads() const;

 private:
  void Work();

  const size_t max_threads_;
  const size_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable work_or_stop_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  size_t idle_ ABSL_GUARDED_BY(mu_) = 0;  // workers waiting for a task
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace approvald::server
