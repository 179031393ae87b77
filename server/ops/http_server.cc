#include "server/ops/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/ops/http_tls.h"
#include "server/ops/listen_socket.h"
#include "spdlog/spdlog.h"

namespace approvald::server {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// What libmicrohttpd keeps per request: the exchange, and the bytes of body charged for it.
struct RequestState {
  std::shared_ptr<HttpExchange> exchange;
  size_t charged = 0;
  bool refused = false;  ///< answered by the server before the body was read
  bool handed = false;   ///< given to the handler
  int overflow = 0;      ///< the refusal of a body found too large as it came (413, 503)
};

MHD_Result CollectPair(void* out, MHD_ValueKind, const char* key, const char* value) {
  static_cast<std::vector<std::pair<std::string, std::string>>*>(out)->emplace_back(
      key != nullptr ? key : "", value != nullptr ? value : "");
  return MHD_YES;
}

}  // namespace

/// libmicrohttpd's C callbacks, which reach the server's private state.
struct HttpCallbacks {
  static void Notify(void* self, MHD_Connection* connection, void** context,
                     MHD_ConnectionNotificationCode code) {
    auto* s = static_cast<HttpServer*>(self);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
      s->Opened(connection, context);
    } else {
      s->Closed(context);
    }
  }

  static MHD_Result Request(void* self, MHD_Connection* connection, const char* url,
                            const char* method, const char*, const char* upload_data,
                            size_t* upload_data_size, void** request_context) {
    auto* s = static_cast<HttpServer*>(self);
    auto* state = static_cast<RequestState*>(*request_context);
    if (state == nullptr) {
      state = new RequestState{s->Receive(connection, url, method)};
      *request_context = state;
      if (state->exchange->answered()) {  // refused on receipt (client certificate)
        state->refused = true;
        return state->exchange->QueueOrSuspend() ? MHD_YES : MHD_NO;
      }
      // A body announced larger than allowed is refused before it is read.
      const char* length =
          MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
      uint64_t announced = 0;
      if (length != nullptr && absl::SimpleAtoi(length, &announced) &&
          announced > s->options_.max_body) {
        return Refuse(s, *state, 413, "the request body is larger than this server accepts");
      }
      return MHD_YES;
    }
    HttpExchange& exchange = *state->exchange;
    if (*upload_data_size > 0) {
      const size_t n = *upload_data_size;
      *upload_data_size = 0;
      if (state->refused || state->overflow != 0) return MHD_YES;
      std::string& body = exchange.request_.body;
      // libmicrohttpd answers only before or after a body: the rest is discarded, then refused.
      if (body.size() + n > s->options_.max_body) {
        state->overflow = 413;
      } else if (s->options_.budget != nullptr && !s->options_.budget->TryTake(n)) {
        state->overflow = 503;
      } else {
        if (s->options_.budget != nullptr) state->charged += n;
        body.append(upload_data, n);
      }
      return MHD_YES;
    }
    if (state->refused) return MHD_YES;
    if (state->overflow != 0) {
      return Refuse(s, *state, state->overflow,
                    state->overflow == 413 ? "the request body is larger than this server accepts"
                                           : std::string(OverBudgetError().message()));
    }
    if (!state->handed) {  // the request is complete: to the handler, once
      state->handed = true;
      s->Asked(connection);
      if (s->stopping_.load()) {
        exchange.Answer(s->Refuse(503, "approvald is shutting down"));
      } else {
        s->handler_(state->exchange);
      }
    }
    return exchange.QueueOrSuspend() ? MHD_YES : MHD_NO;
  }

  static MHD_Result Refuse(HttpServer* s, RequestState& state, int code,
                           const std::string& message) {
    state.refused = true;
    state.exchange->Answer(s->Refuse(code, message));
    return state.exchange->QueueOrSuspend() ? MHD_YES : MHD_NO;
  }

  static void Completed(void* self, MHD_Connection*, void** request_context,
                        MHD_RequestTerminationCode) {
    auto* state = static_cast<RequestState*>(*request_context);
    if (state == nullptr) return;
    auto* s = static_cast<HttpServer*>(self);
    state->exchange->Detach();
    if (s->options_.budget != nullptr) s->options_.budget->Give(state->charged);
    s->Untrack(state->exchange.get());
    delete state;
    *request_context = nullptr;
  }

  static void Log(void*, const char* format, va_list args) {
    char line[512];
    std::vsnprintf(line, sizeof(line), format, args);
    spdlog::debug("http: {}", line);
  }
};

HttpServer::HttpServer(HttpOptions options, HttpHandler handler, int port)
    : options_(std::move(options)), handler_(std::move(handler)), port_(port) {}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpOptions options,
                                                              HttpHandler handler) {
  if (options.cert_pem.empty() != options.key_pem.empty() ||
      (options.cert_pem.empty() && !options.client_ca_pem.empty())) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.flag, ": a client CA needs a certificate and its key"));
  }
  absl::StatusOr<ListenSocket> listen = ListenOn(options.flag, options.addr);
  if (!listen.ok()) return listen.status();
  std::unique_ptr<HttpServer> s(
      new HttpServer(std::move(options), std::move(handler), listen->port));
  const HttpOptions& o = s->options_;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                   MHD_ALLOW_SUSPEND_RESUME;
  if (!o.cert_pem.empty()) flags |= MHD_USE_TLS;
  // The hard limit is above ours, so that a new connection is accepted and can make room.
  constexpr unsigned kHardLimit = kMaxConnections + 64;
  MHD_OptionItem tls[4] = {{MHD_OPTION_END, 0, nullptr}};
  size_t n = 0;
  if (!o.cert_pem.empty()) {
    tls[n++] = {MHD_OPTION_HTTPS_MEM_CERT, 0, const_cast<char*>(o.cert_pem.c_str())};
    tls[n++] = {MHD_OPTION_HTTPS_MEM_KEY, 0, const_cast<char*>(o.key_pem.c_str())};
    if (!o.client_ca_pem.empty()) {
      tls[n++] = {MHD_OPTION_HTTPS_MEM_TRUST, 0, const_cast<char*>(o.client_ca_pem.c_str())};
    }
  }
  tls[n] = {MHD_OPTION_END, 0, nullptr};
  s->daemon_ = MHD_start_daemon(
      flags, 0, nullptr, nullptr, &HttpCallbacks::Request, s.get(), MHD_OPTION_EXTERNAL_LOGGER,
      &HttpCallbacks::Log, nullptr, MHD_OPTION_LISTEN_SOCKET, listen->fd,
      MHD_OPTION_CONNECTION_LIMIT, kHardLimit, MHD_OPTION_CONNECTION_TIMEOUT,
      static_cast<unsigned>(kConnectionTimeoutMs / 1000), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      kMaxRequestHead, MHD_OPTION_NOTIFY_CONNECTION, &HttpCallbacks::Notify, s.get(),
      MHD_OPTION_NOTIFY_COMPLETED, &HttpCallbacks::Completed, s.get(), MHD_OPTION_ARRAY, tls,
      MHD_OPTION_END);
  if (s->daemon_ == nullptr) {
    close(listen->fd);
    return absl::InvalidArgumentError(
        absl::StrCat(s->options_.flag, ": cannot serve HTTP", o.cert_pem.empty() ? "" : "S", " on ",
                     s->options_.addr,
                     o.cert_pem.empty() ? "" : " (is the certificate, key or CA bundle PEM?)"));
  }
  return s;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Stop(absl::Duration grace) {
  std::call_once(stop_once_, [this, grace] {
    if (daemon_ == nullptr) return;
    stopping_.store(true);
    // New connections are refused from now on. The socket itself is closed only after
    // MHD_stop_daemon: libmicrohttpd's thread may still be using it (its documentation says so),
    // and a closed descriptor's number could meanwhile be another file's.
    const MHD_socket fd = MHD_quiesce_daemon(daemon_);
    if (fd != MHD_INVALID_SOCKET) shutdown(fd, SHUT_RDWR);
    // Streams end at once; answers in flight get the grace, then a 503.
    const absl::Time deadline = absl::Now() + grace;
    for (;;) {
      bool waiting = false;
      for (const auto& exchange : Tracked()) {
        if (exchange->streaming()) {
          exchange->Cancel(Refuse(503, "approvald is shutting down"));
        } else if (!exchange->answered()) {
          waiting = true;
        }
      }
      if (!waiting || absl::Now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (const auto& exchange : Tracked()) {
      exchange->Cancel(Refuse(503, "approvald is shutting down"));
    }
    // The answers go out on the server's thread (a client that does not read them gets a
    // second); libmicrohttpd must not be stopped with a connection still suspended.
    const absl::Time flushed = absl::Now() + absl::Seconds(1);
    std::vector<std::shared_ptr<HttpExchange>> left;
    while (!(left = Tracked()).empty() && absl::Now() < flushed) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (const auto& exchange : left) {
      while (!exchange->idle()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    MHD_stop_daemon(daemon_);  // closes every connection
    daemon_ = nullptr;
    if (fd != MHD_INVALID_SOCKET) close(fd);
  });
}

std::shared_ptr<HttpExchange> HttpServer::Receive(MHD_Connection* connection, const char* url,
                                                  const char* method) {
  HttpRequest request;
  request.method = method != nullptr ? method : "";
  request.path = url != nullptr ? url : "";
  MHD_get_connection_values(connection, MHD_HEADER_KIND, &CollectPair, &request.headers);
  MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, &CollectPair, &request.query);
  if (const MHD_ConnectionInfo* info =
          MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
      info != nullptr && info->client_addr != nullptr) {
    char host[64] = "";
    const sockaddr* sa = info->client_addr;
    if (sa->sa_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
      inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
      request.peer = absl::StrCat("ipv4:", host, ":", ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
      inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
      request.peer = absl::StrCat("ipv6:[", host, "]:", ntohs(in6->sin6_port));
    }
  }
  absl::Status verified;
  if (!options_.client_ca_pem.empty()) {
    absl::StatusOr<std::string> identity = VerifiedClientIdentity(connection);
    if (identity.ok()) {
      request.client_identity = std::move(*identity);
    } else {
      verified = identity.status();
    }
  }
  auto exchange = std::make_shared<HttpExchange>(std::move(request));
  exchange->Attach(connection);
  Track(exchange);
  if (!verified.ok()) exchange->Answer(Refuse(401, std::string(verified.message())));
  return exchange;
}

HttpAnswer HttpServer::Refuse(int code, const std::string& message) const {
  if (options_.refusal) return options_.refusal(code, message);
  return HttpAnswer{code, "text/plain; charset=utf-8", message + "\n", {}};
}

void HttpServer::Track(const std::shared_ptr<HttpExchange>& exchange) {
  std::lock_guard<std::mutex> lock(exchanges_mu_);
  exchanges_.push_back(exchange);
}

void HttpServer::Untrack(HttpExchange* exchange) {
  std::lock_guard<std::mutex> lock(exchanges_mu_);
  exchanges_.remove_if([exchange](const auto& e) { return e.get() == exchange; });
}

std::vector<std::shared_ptr<HttpExchange>> HttpServer::Tracked() {
  std::lock_guard<std::mutex> lock(exchanges_mu_);
  return {exchanges_.begin(), exchanges_.end()};
}

void HttpServer::Opened(MHD_Connection* connection, void** context) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
  const int64_t now = NowMs();
  open_.push_back({info != nullptr ? info->connect_fd : -1, now});
  *context = new std::list<Open>::iterator(std::prev(open_.end()));
  ++live_;
  // A connection past its time still sending its request is closed (libmicrohttpd's own
  // timeout only closes idle ones); then, if still too many, the one sending the longest.
  for (Open& o : open_) {
    if (now - o.opened_ms < kConnectionTimeoutMs) break;
    if (!o.closing && !o.asked) Shut(o);
  }
  if (live_ <= kMaxConnections) return;
  for (Open& o : open_) {
    if (!o.closing && !o.asked) {
      Shut(o);
      return;
    }
  }
}

void HttpServer::Closed(void** context) {
  auto* it = static_cast<std::list<Open>::iterator*>(*context);
  if (it == nullptr) return;
  if (!(*it)->closing) --live_;
  open_.erase(*it);
  delete it;
  *context = nullptr;
}

void HttpServer::Shut(Open& open) {
  // libmicrohttpd sees the end of the stream and closes the connection on its next turn.
  if (open.fd >= 0) shutdown(open.fd, SHUT_RDWR);
  open.closing = true;
  --live_;
}

void HttpServer::Asked(MHD_Connection* connection) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  if (info != nullptr && info->socket_context != nullptr) {
    (*static_cast<std::list<Open>::iterator*>(info->socket_context))->asked = true;
  }
}

}  // namespace approvald::server
