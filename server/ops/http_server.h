#pragma once

#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

struct MHD_Daemon;
struct MHD_Connection;

namespace approvald::server {

/// One answer to an HTTP request.
struct HttpAnswer {
  int code = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

/// Answers a request from its method and path (without the query string). Runs on the server's
/// own thread, so it must be quick.
using HttpHandler = std::function<HttpAnswer(const std::string& method, const std::string& path)>;

/// A small HTTP/1.x server on libmicrohttpd's event loop (one thread, epoll), hardened against
/// slow and hostile clients: a request head of at most kMaxRequestHead, kConnectionTimeoutMs for
/// a connection to send its request and take its answer, one request per connection, and at
/// most kMaxConnections open; when full, a new connection closes the one that has been sending
/// its request head the longest, so slow clients, however many, cannot keep a quick one out.
class HttpServer {
 public:
  static constexpr size_t kMaxRequestHead = 8 * 1024;
  static constexpr size_t kMaxConnections = 1024;
  static constexpr int kConnectionTimeoutMs = 10'000;

  /// Serves `addr` (see ListenOn; `flag` names it in errors) with `handler`.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& flag,
                                                           const std::string& addr,
                                                           HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  /// Closes the listening socket and every open connection, then joins the thread. Idempotent.
  void Stop();

 private:
  /// An open connection, oldest first in `open_`.
  struct Open {
    int fd;
    int64_t opened_ms;
    bool asked = false;    ///< its request head is complete
    bool closing = false;  ///< shut down by us; libmicrohttpd closes it next
  };

  HttpServer(HttpHandler handler, int port) : handler_(std::move(handler)), port_(port) {}
  void Opened(MHD_Connection* connection, void** context);
  void Closed(void** context);
  void Shut(Open& open);
  void Asked(MHD_Connection* connection);
  friend struct HttpCallbacks;

  const HttpHandler handler_;
  const int port_;
  MHD_Daemon* daemon_ = nullptr;
  std::once_flag stop_once_;
  // Touched only on libmicrohttpd's thread.
  std::list<Open> open_;
  size_t live_ = 0;  ///< entries of open_ not closing
};

}  // namespace approvald::server
