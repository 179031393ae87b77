#pragma once

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/ops/http_exchange.h"
#include "server/ops/memory_budget.h"

struct MHD_Daemon;
struct MHD_Connection;

namespace approvald::server {

/// Takes a request. Runs on the server's only thread, so it must not block: it answers at once
/// or later from another thread (see HttpExchange).
using HttpHandler = std::function<void(const std::shared_ptr<HttpExchange>&)>;

/// The answer the server itself gives when it refuses a request (body too large, no valid
/// client certificate, shutting down): code and message, formatted by whoever serves.
using HttpRefusal = std::function<HttpAnswer(int code, const std::string& message)>;

struct HttpOptions {
  std::string flag;     ///< the flag that named `addr`, for errors
  std::string addr;     ///< see ListenOn
  size_t max_body = 0;  ///< larger request bodies are refused with 413 before they are read
  /// Request bodies are charged to it while held; when it is spent, 503.
  MemoryBudget* budget = nullptr;
  std::string cert_pem;  ///< with key_pem: HTTPS
  std::string key_pem;
  std::string client_ca_pem;  ///< clients must present a certificate it signed (else 401)
  HttpRefusal refusal;        ///< default: plain text
};

/// A small HTTP/1.x server on libmicrohttpd's event loop (one thread, epoll), hardened against
/// slow and hostile clients: a request head of at most kMaxRequestHead, bodies up to
/// `max_body`, kConnectionTimeoutMs for a connection to send its request, one request per
/// connection, and at most kMaxConnections open; when full, a new connection closes the one
/// that has been sending its request the longest, so slow clients, however many, cannot keep a
/// quick one out. Answers may come later from other threads and may be streamed.
class HttpServer {
 public:
  static constexpr size_t kMaxRequestHead = 8 * 1024;
  static constexpr size_t kMaxConnections = 1024;
  static constexpr int kConnectionTimeoutMs = 10'000;

  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(HttpOptions options,
                                                           HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  /// Stops accepting connections, ends streamed answers, lets answers in flight come within
  /// `grace` (then answers 503 for them), and closes every connection. Idempotent.
  void Stop(absl::Duration grace = absl::ZeroDuration());

 private:
  /// An open connection, oldest first in `open_`.
  struct Open {
    int fd;
    int64_t opened_ms;
    bool asked = false;    ///< its request is complete (head and body)
    bool closing = false;  ///< shut down by us; libmicrohttpd closes it next
  };

  HttpServer(HttpOptions options, HttpHandler handler, int port);
  void Opened(MHD_Connection* connection, void** context);
  void Closed(void** context);
  void Shut(Open& open);
  void Asked(MHD_Connection* connection);
  std::shared_ptr<HttpExchange> Receive(MHD_Connection* connection, const char* url,
                                        const char* method);
  void Track(const std::shared_ptr<HttpExchange>& exchange);
  void Untrack(HttpExchange* exchange);
  std::vector<std::shared_ptr<HttpExchange>> Tracked();
  HttpAnswer Refuse(int code, const std::string& message) const;
  friend struct HttpCallbacks;

  const HttpOptions options_;
  const HttpHandler handler_;
  const int port_;
  MHD_Daemon* daemon_ = nullptr;
  std::once_flag stop_once_;
  std::atomic<bool> stopping_{false};
  std::mutex exchanges_mu_;
  std::list<std::shared_ptr<HttpExchange>> exchanges_;  ///< requests not yet completed
  // Touched only on libmicrohttpd's thread.
  std::list<Open> open_;
  size_t live_ = 0;  ///< entries of open_ not closing
};

}  // namespace approvald::server
