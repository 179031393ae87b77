#include "server/ops/log_sink.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

namespace approvald::server {

BatchingFdSink::BatchingFdSink(int fd, absl::Duration interval, size_t max_buffer)
    : fd_(fd), interval_(interval), max_buffer_(max_buffer) {
  if (interval_ > absl::ZeroDuration()) {
    pending_.reserve(max_buffer_);
    // The flusher takes no signals: approvald waits for SIGTERM and SIGHUP with sigwait in its
    // main thread, and a thread that left them unblocked would die of them instead.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    flusher_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "log-flusher");
      FlushEvery();
    });
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  }
}

BatchingFdSink::~BatchingFdSink() {
  if (flusher_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(stop_mu_);
      stopping_ = true;
    }
    stop_cv_.notify_one();
    flusher_.join();
  }
  flush();
}

void BatchingFdSink::sink_it_(const spdlog::details::log_msg& msg) {
  spdlog::memory_buf_t line;
  formatter_->format(msg, line);
  pending_.append(line.data(), line.size());
  if (interval_ <= absl::ZeroDuration() || msg.level >= spdlog::level::warn ||
      pending_.size() >= max_buffer_) {
    flush_();
  }
}

void BatchingFdSink::flush_() {
  size_t done = 0;
  while (done < pending_.size()) {
    const ssize_t n = ::write(fd_, pending_.data() + done, pending_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // nowhere to write: the lines are dropped
    done += static_cast<size_t>(n);
  }
  pending_.clear();
}

void BatchingFdSink::FlushEvery() {
  std::unique_lock<std::mutex> lock(stop_mu_);
  // (The predicate keeps a spurious wake-up from writing early.)
  while (!stop_cv_.wait_for(lock, absl::ToChronoNanoseconds(interval_),
                            [this] { return stopping_; })) {
    lock.unlock();
    flush();
    lock.lock();
  }
}

}  // namespace approvald::server
