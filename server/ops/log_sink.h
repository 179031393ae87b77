#pragma once

#include <spdlog/sinks/base_sink.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace approvald::server {

/// A log sink that writes its lines to a file descriptor in batches, so that a busy daemon makes
/// one write(2) per batch instead of one per call (and its workers do not queue on the sink's
/// lock behind each other's writes). A line is written:
///   - at most `interval` after it was logged (a flusher thread writes what waits);
///   - at once, with every line before it, when it is a warning or worse;
///   - at once when `max_buffer` bytes wait;
///   - by flush(), and when the sink is destroyed.
/// With a zero `interval` every line is written at once (no thread). Lines keep their order.
/// A line that cannot be written (a closed descriptor) is dropped; logging never fails.
class BatchingFdSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  BatchingFdSink(int fd, absl::Duration interval, size_t max_buffer = 64 * 1024);
  ~BatchingFdSink() override;

  BatchingFdSink(const BatchingFdSink&) = delete;
  BatchingFdSink& operator=(const BatchingFdSink&) = delete;

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override;

 private:
  void FlushEvery();

  const int fd_;
  const absl::Duration interval_;
  const size_t max_buffer_;
  std::string pending_;  // guarded by base_sink's mutex_

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::thread flusher_;
};

}  // namespace approvald::server
