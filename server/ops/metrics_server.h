#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "server/ops/metrics.h"

namespace approvald::server {

/// Serves `GET /metrics` (and HEAD) over HTTP/1.x on one thread of its own, for Prometheus.
///
/// Deliberately small: one request per connection (`Connection: close`), a request head of at
/// most 8 KiB, and 10 s for a connection to send its request and take its answer. At most 1024
/// connections are open; when full, a new one closes the one that has been sending its request
/// head the longest. A slow or hostile client therefore cannot hold the thread, and slow
/// clients, however many, cannot keep a scrape out. Thread-safe to Stop from any thread.
class MetricsServer {
 public:
  static constexpr size_t kMaxRequestHead = 8 * 1024;
  static constexpr size_t kMaxConnections = 1024;
  static constexpr int kConnectionTimeoutMs = 10'000;

  /// Binds `addr` (`host:port`, `[v6]:port`; port 0 picks a free one) and starts serving.
  /// INVALID_ARGUMENT if the address cannot be parsed, resolved or bound.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& addr,
                                                              const Metrics& metrics);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return port_; }
  /// Closes the listening socket and every open connection, then joins the thread. Idempotent.
  void Stop();

 private:
  MetricsServer(const Metrics& metrics, int listen_fd, int wake_read, int wake_write, int port);
  void Serve();

  const Metrics& metrics_;
  const int listen_fd_;
  const int wake_read_;
  const int wake_write_;
  const int port_;
  std::once_flag stop_once_;
  std::thread thread_;
};

}  // namespace approvald::server
