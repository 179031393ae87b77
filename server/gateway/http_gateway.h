#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/generic/generic_stub.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/gateway/http_routes.h"
#include "server/ops/http_server.h"

namespace approvald::server {

class SseStream;

struct GatewayOptions {
  std::string addr;  ///< --http-listen
  size_t max_body = 4 * 1024 * 1024;
  MemoryBudget* budget = nullptr;
  std::string cert_pem;  ///< HTTPS with key_pem
  std::string key_pem;
  std::string client_ca_pem;  ///< mTLS
  std::string cert_secret;    ///< see kGatewayCertKey (server/api/call_metadata.h)
  absl::Duration call_timeout = absl::Seconds(30);  ///< deadline of each unary call
  absl::Duration keepalive = absl::Seconds(15);     ///< SSE comment when a stream is quiet
};

/// HTTP/JSON in front of a gRPC service: each method with a `google.api.http` option is served
/// on its path, the request built from the path, query and JSON body, and called through
/// `channel` (the server's in-process channel), so that authentication, validation, metrics
/// and logs are the service's own. Unary answers are the response's JSON or a google.rpc.Status
/// with the HTTP status of its code; server-streaming methods are Server-Sent Events.
class HttpGateway {
 public:
  static absl::StatusOr<std::unique_ptr<HttpGateway>> Start(
      GatewayOptions options,
      const std::vector<const google::protobuf::ServiceDescriptor*>& services,
      std::shared_ptr<grpc::Channel> channel);
  ~HttpGateway();

  int port() const { return http_->port(); }
  /// Stops accepting; ends streams; lets unary calls in flight answer within `grace`.
  void Stop(absl::Duration grace);

 private:
  HttpGateway(GatewayOptions options, HttpRoutes routes, std::shared_ptr<grpc::Channel> channel);
  void Handle(const std::shared_ptr<HttpExchange>& exchange);
  void PrepareContext(grpc::ClientContext& context, const HttpRequest& request) const;
  void CallUnary(const std::shared_ptr<HttpExchange>& exchange, const RouteMatch& match,
                 const std::string& request);
  void OpenStream(const std::shared_ptr<HttpExchange>& exchange, const RouteMatch& match,
                  const std::string& request);
  void CallEnded();
  void KeepAlive();

  const GatewayOptions options_;
  const HttpRoutes routes_;
  grpc::GenericStub stub_;
  std::unique_ptr<HttpServer> http_;
  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;  ///< calls whose completion has not run yet
  std::set<SseStream*> streams_;
  bool stopping_ = false;
  std::thread keepalive_;
};

}  // namespace approvald::server
