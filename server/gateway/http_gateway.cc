#include "server/gateway/http_gateway.h"

#include <grpcpp/client_context.h>

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/api/call_metadata.h"
#include "server/gateway/sse_stream.h"
#include "server/gateway/transcoding.h"

namespace approvald::server {
namespace {

namespace pb = google::protobuf;

std::string MethodPath(const pb::MethodDescriptor& method) {
  return absl::StrCat("/", method.service()->full_name(), "/", method.name());
}

// One unary call in flight, shared by its completion and the exchange's OnGone.
struct UnaryCall {
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
};

}  // namespace

HttpGateway::HttpGateway(GatewayOptions options, HttpRoutes routes,
                         std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)), routes_(std::move(routes)), stub_(std::move(channel)) {}

absl::StatusOr<std::unique_ptr<HttpGateway>> HttpGateway::Start(
    GatewayOptions options, const std::vector<const pb::ServiceDescriptor*>& services,
    std::shared_ptr<grpc::Channel> channel) {
  absl::StatusOr<HttpRoutes> routes = HttpRoutes::ForServices(services);
  if (!routes.ok()) return routes.status();
  std::unique_ptr<HttpGateway> g(
      new HttpGateway(std::move(options), std::move(*routes), std::move(channel)));
  HttpOptions http;
  http.flag = "--http-listen";
  http.addr = g->options_.addr;
  http.max_body = g->options_.max_body;
  http.budget = g->options_.budget;
  http.cert_pem = g->options_.cert_pem;
  http.key_pem = g->options_.key_pem;
  http.client_ca_pem = g->options_.client_ca_pem;
  http.refusal = [](int code, const std::string& message) {
    HttpAnswer answer =
        ErrorAnswer(absl::Status(code == 401   ? absl::StatusCode::kUnauthenticated
                                 : code == 413 ? absl::StatusCode::kResourceExhausted
                                               : absl::StatusCode::kUnavailable,
                                 message));
    answer.code = code;
    return answer;
  };
  HttpGateway* self = g.get();
  absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Start(
      std::move(http), [self](const std::shared_ptr<HttpExchange>& e) { self->Handle(e); });
  if (!server.ok()) return server.status();
  g->http_ = std::move(*server);
  g->keepalive_ = std::thread([self] { self->KeepAlive(); });
  return g;
}

HttpGateway::~HttpGateway() { Stop(absl::ZeroDuration()); }

void HttpGateway::Stop(absl::Duration grace) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !keepalive_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (keepalive_.joinable()) keepalive_.join();
  if (http_) http_->Stop(grace);  // cancels what is left; each call's completion follows
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return in_flight_ == 0; });
}

void HttpGateway::Handle(const std::shared_ptr<HttpExchange>& exchange) {
  const HttpRequest& request = exchange->request();
  absl::StatusOr<RouteMatch> match = routes_.Match(request.method, request.path);
  if (!match.ok()) {
    if (match.status().code() == absl::StatusCode::kUnimplemented) {
      HttpAnswer answer = ErrorAnswer(
          absl::UnimplementedError(absl::StrCat(request.method, " is not served on ", request.path,
                                                "; it takes ", match.status().message())));
      answer.code = 405;
      answer.headers.emplace_back("Allow", std::string(match.status().message()));
      exchange->Answer(std::move(answer));
    } else {
      exchange->Answer(ErrorAnswer(
          absl::NotFoundError(absl::StrCat("no API resource at ", request.path,
                                           " (see the README's HTTP section: /v1/approvals, "
                                           "/v1/actionTypes, /v1/events)"))));
    }
    return;
  }
  std::vector<std::pair<std::string, std::string>> aliases;
  std::vector<std::pair<std::string, std::string>> query = request.query;
  const bool streaming = match->route->method->server_streaming();
  if (streaming) {
    aliases.emplace_back("after", "after_event_id");
    // An EventSource reconnecting names the last event it got; it wins over the URL's `after`.
    if (const std::string* last = request.Header("Last-Event-ID"); last != nullptr) {
      int64_t id = 0;
      if (!absl::SimpleAtoi(*last, &id) || id < 0) {
        exchange->Answer(ErrorAnswer(
            absl::InvalidArgumentError("Last-Event-ID must be an event id (a number)")));
        return;
      }
      std::erase_if(query, [](const auto& kv) {
        return kv.first == "after" || kv.first == "after_event_id" || kv.first == "afterEventId";
      });
      query.emplace_back("after_event_id", *last);
    }
  }
  absl::StatusOr<std::unique_ptr<pb::Message>> message =
      BuildRequest(*match, request.body, query, aliases);
  if (!message.ok()) {
    exchange->Answer(ErrorAnswer(message.status()));
    return;
  }
  const std::string serialized = (*message)->SerializeAsString();
  if (streaming) {
    OpenStream(exchange, *match, serialized);
  } else {
    CallUnary(exchange, *match, serialized);
  }
}

void HttpGateway::PrepareContext(grpc::ClientContext& context, const HttpRequest& request) const {
  if (const std::string* auth = request.Header("Authorization")) {
    context.AddMetadata("authorization", *auth);
  }
  if (const std::string* id = request.Header("X-Request-Id")) {
    context.AddMetadata("x-request-id", *id);
  }
  if (!request.client_identity.empty()) {
    context.AddMetadata(kGatewayCertKey,
                        absl::StrCat(options_.cert_secret, " ", request.client_identity));
  }
}

void HttpGateway::CallUnary(const std::shared_ptr<HttpExchange>& exchange, const RouteMatch& match,
                            const std::string& request) {
  auto call = std::make_shared<UnaryCall>();
  PrepareContext(call->context, exchange->request());
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + options_.call_timeout));
  grpc::Slice slice(request);
  call->request = grpc::ByteBuffer(&slice, 1);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++in_flight_;
  }
  const pb::Descriptor* output = match.route->method->output_type();
  exchange->OnGone([call] { call->context.TryCancel(); });
  stub_.UnaryCall(&call->context, MethodPath(*match.route->method), grpc::StubOptions(),
                  &call->request, &call->response,
                  [this, call, exchange, output](const grpc::Status& status) {
                    HttpAnswer answer;
                    std::unique_ptr<pb::Message> response(
                        pb::MessageFactory::generated_factory()->GetPrototype(output)->New());
                    if (!status.ok()) {
                      answer = ErrorAnswer(status);
                    } else if (!response->ParseFromString(BufferBytes(call->response))) {
                      answer = ErrorAnswer(absl::InternalError("unreadable response"));
                    } else {
                      answer = HttpAnswer{200, "application/json", ToJson(*response) + "\n", {}};
                    }
                    const auto& md = call->context.GetServerInitialMetadata();
                    if (auto it = md.find("x-request-id"); it != md.end()) {
                      answer.headers.emplace_back(
                          "X-Request-Id", std::string(it->second.data(), it->second.size()));
                    }
                    exchange->Answer(std::move(answer));
                    CallEnded();
                  });
}

void HttpGateway::OpenStream(const std::shared_ptr<HttpExchange>& exchange, const RouteMatch& match,
                             const std::string& request) {
  auto* stream = new SseStream(exchange, *match.route->method, [this](SseStream* s) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      streams_.erase(s);
    }
    CallEnded();
  });
  PrepareContext(stream->context(), exchange->request());
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++in_flight_;
    streams_.insert(stream);
  }
  stream->Start(stub_, request);
}

void HttpGateway::CallEnded() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--in_flight_ == 0) cv_.notify_all();
}

void HttpGateway::KeepAlive() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, absl::ToChronoNanoseconds(options_.keepalive),
                       [this] { return stopping_; })) {
    for (SseStream* s : streams_) s->KeepAlive();
  }
}

}  // namespace approvald::server
