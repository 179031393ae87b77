#include "server/executor.h"

#include <algorithm>
#include <system_error>

namespace approvald::server {

Executor::Executor(int max_threads, size_t max_queue)
    : max_threads_(static_cast<size_t>(std::max(1, max_threads))), max_queue_(max_queue) {}

Executor::~Executor() { Shutdown(); }

bool Executor::TrySubmit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || queue_.size() >= max_queue_) return false;
    queue_.push_back(std::move(task));
    // More tasks waiting than workers free to take them: one more worker, up to the bound.
    if (queue_.size() > idle_ && workers_.size() < max_threads_) {
      try {
        workers_.emplace_back([this] { Work(); });
      } catch (const std::system_error&) {
        // No thread to be had (a process or memory limit): the workers there are take the
        // task in turn; with none, it is refused like a full queue.
        if (workers_.empty()) {
          queue_.pop_back();
          return false;
        }
      }
    }
  }
  // Woken after the unlock: a worker woken under the lock would block on it at once.
  work_or_stop_.notify_one();
  return true;
}

void Executor::Shutdown() {
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;  // no worker starts after this
    workers.swap(workers_);
    work_or_stop_.notify_all();
  }
  for (std::thread& t : workers) t.join();
}

size_t Executor::queue_depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

size_t Executor::threads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return workers_.size();
}

void Executor::Work() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++idle_;
      work_or_stop_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      --idle_;
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace approvald::server
