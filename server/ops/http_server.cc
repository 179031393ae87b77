#include "server/ops/http_server.h"

#include <microhttpd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "server/ops/listen_socket.h"
#include "spdlog/spdlog.h"

namespace approvald::server {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A request that gets an answer: the value set as its request context, so that a second call
// for the same request (libmicrohttpd calls again for each piece of a body) changes nothing.
int answered_marker;

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
                            const char* method, const char*, const char*, size_t* upload_data_size,
                            void** request_context) {
    if (*request_context == &answered_marker) {
      *upload_data_size = 0;  // a body we do not read
      return MHD_YES;
    }
    *request_context = &answered_marker;
    auto* s = static_cast<HttpServer*>(self);
    s->Asked(connection);
    const HttpAnswer answer = s->handler_(method, url);
    MHD_Response* response = MHD_create_response_from_buffer(
        answer.body.size(), const_cast<char*>(answer.body.data()), MHD_RESPMEM_MUST_COPY);
    if (response == nullptr) return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, answer.content_type.c_str());
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
    for (const auto& [name, value] : answer.headers) {
      MHD_add_response_header(response, name.c_str(), value.c_str());
    }
    const MHD_Result queued =
        MHD_queue_response(connection, static_cast<unsigned>(answer.code), response);
    MHD_destroy_response(response);
    return queued;
  }

  static void Log(void*, const char* format, va_list args) {
    char line[512];
    std::vsnprintf(line, sizeof(line), format, args);
    spdlog::debug("http: {}", line);
  }
};

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& flag,
                                                              const std::string& addr,
                                                              HttpHandler handler) {
  absl::StatusOr<ListenSocket> listen = ListenOn(flag, addr);
  if (!listen.ok()) return listen.status();
  std::unique_ptr<HttpServer> s(new HttpServer(std::move(handler), listen->port));
  // The hard limit is above ours, so that a new connection is accepted and can make room.
  constexpr unsigned kHardLimit = kMaxConnections + 64;
  s->daemon_ = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, nullptr, nullptr,
      &HttpCallbacks::Request, s.get(), MHD_OPTION_LISTEN_SOCKET, listen->fd,
      MHD_OPTION_CONNECTION_LIMIT, kHardLimit, MHD_OPTION_CONNECTION_TIMEOUT,
      static_cast<unsigned>(kConnectionTimeoutMs / 1000), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      kMaxRequestHead, MHD_OPTION_NOTIFY_CONNECTION, &HttpCallbacks::Notify, s.get(),
      MHD_OPTION_EXTERNAL_LOGGER, &HttpCallbacks::Log, nullptr, MHD_OPTION_END);
  if (s->daemon_ == nullptr) {
    close(listen->fd);
    return absl::InternalError(absl::StrCat(flag, ": cannot start the HTTP server on ", addr));
  }
  return s;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Stop() {
  std::call_once(stop_once_, [this] {
    if (daemon_ != nullptr) MHD_stop_daemon(daemon_);  // closes the socket and every connection
    daemon_ = nullptr;
  });
}

void HttpServer::Opened(MHD_Connection* connection, void** context) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
  const int64_t now = NowMs();
  open_.push_back({info != nullptr ? info->connect_fd : -1, now});
  *context = new std::list<Open>::iterator(std::prev(open_.end()));
  ++live_;
  // A connection past its time, even one still sending, is closed (libmicrohttpd's own timeout
  // only closes idle ones); then, if still too many, the one sending its head the longest.
  for (Open& o : open_) {
    if (now - o.opened_ms < kConnectionTimeoutMs) break;
    if (!o.closing) Shut(o);
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
