#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/ops/http_server.h"
#include "server/ops/metrics.h"

namespace approvald::server {

/// Serves `GET /metrics` (and HEAD) for Prometheus, on an HttpServer of its own (see there for
/// its limits against slow and hostile clients). Thread-safe to Stop from any thread.
class MetricsServer {
 public:
  static constexpr size_t kMaxConnections = HttpServer::kMaxConnections;
  static constexpr int kConnectionTimeoutMs = HttpServer::kConnectionTimeoutMs;

  /// Binds `addr` (`host:port`, `[v6]:port`; port 0 picks a free one) and starts serving.
  /// INVALID_ARGUMENT if the address cannot be parsed, resolved or bound.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& addr,
                                                              const Metrics& metrics);

  int port() const { return http_->port(); }
  /// Closes the listening socket and every open connection. Idempotent.
  void Stop() { http_->Stop(); }

 private:
  explicit MetricsServer(std::unique_ptr<HttpServer> http) : http_(std::move(http)) {}
  std::unique_ptr<HttpServer> http_;
};

}  // namespace approvald::server
