#include "server/ops/metrics_server.h"

#include <utility>

namespace approvald::server {

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& addr,
                                                                    const Metrics& metrics) {
  HttpOptions options;
  options.flag = "--metrics-addr";
  options.addr = addr;
  options.max_body = 64 * 1024;  // read and ignored: a POST gets its 405
  auto http = HttpServer::Start(
      std::move(options), [&metrics](const std::shared_ptr<HttpExchange>& exchange) {
        const HttpRequest& r = exchange->request();
        if (r.method != "GET" && r.method != "HEAD") {
          exchange->Answer(HttpAnswer{
              405, "text/plain; charset=utf-8", "only GET and HEAD\n", {{"Allow", "GET, HEAD"}}});
        } else if (r.path != "/metrics") {
          exchange->Answer(HttpAnswer{404, "text/plain; charset=utf-8", "see /metrics\n", {}});
        } else {
          exchange->Answer(
              HttpAnswer{200, "text/plain; version=0.0.4; charset=utf-8", metrics.Render(), {}});
        }
      });
  if (!http.ok()) return http.status();
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(*http)));
}

}  // namespace approvald::server
