#include "server/ops/metrics_server.h"

#include <utility>

namespace approvald::server {

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& addr,
                                                                    const Metrics& metrics) {
  auto http = HttpServer::Start(
      "--metrics-addr", addr, [&metrics](const std::string& method, const std::string& path) {
        if (method != "GET" && method != "HEAD") {
          return HttpAnswer{
              405, "text/plain; charset=utf-8", "only GET and HEAD\n", {{"Allow", "GET, HEAD"}}};
        }
        if (path != "/metrics")
          return HttpAnswer{404, "text/plain; charset=utf-8", "see /metrics\n", {}};
        return HttpAnswer{200, "text/plain; version=0.0.4; charset=utf-8", metrics.Render(), {}};
      });
  if (!http.ok()) return http.status();
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(*http)));
}

}  // namespace approvald::server
