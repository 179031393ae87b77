#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

struct MHD_Connection;

namespace approvald::server {

/// One request as received, body included.
struct HttpRequest {
  std::string method;
  std::string path;                                          ///< decoded, no query string
  std::vector<std::pair<std::string, std::string>> query;    ///< decoded, in order
  std::vector<std::pair<std::string, std::string>> headers;  ///< as sent
  std::string body;
  std::string peer;  ///< the client's address
  /// With a client CA: the verified client certificate's SAN URI, else DNS name, else CN.
  std::string client_identity;

  /// The first header named `name` (case-insensitive), or nullptr.
  const std::string* Header(absl::string_view name) const;
};

/// One answer to an HTTP request (or the head of a streamed one).
struct HttpAnswer {
  int code = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

/// One request and its answer, shared by the HTTP server's thread and whoever answers it. The
/// answer is given once, from any thread, at once or later (the connection waits suspended,
/// holding no thread). A streamed answer is written piece by piece until End(). Thread-safe.
class HttpExchange {
 public:
  explicit HttpExchange(HttpRequest request) : request_(std::move(request)) {}
  HttpExchange(const HttpExchange&) = delete;
  HttpExchange& operator=(const HttpExchange&) = delete;

  const HttpRequest& request() const { return request_; }

  /// The whole answer. Only the first Answer or StartStream counts.
  void Answer(HttpAnswer answer);
  /// Starts a streamed answer: `head` gives the status, type and headers; its body goes first.
  void StartStream(HttpAnswer head);
  /// Appends to a streamed answer; false once the client is gone or the stream has ended.
  bool Write(std::string_view bytes);
  /// Ends a streamed answer once what is written has been sent.
  void End();
  /// Bytes written and not yet handed to the connection.
  size_t Unsent() const;
  /// Called once, on any thread, when the client has gone or the server stops: whoever makes
  /// the answer should stop (an answer given after it is dropped). Runs at once if already so.
  void OnGone(std::function<void()> gone);
  /// Called on the server's thread each time a streamed answer's written bytes are all sent.
  void OnDrained(std::function<void()> drained);

 private:
  friend struct HttpCallbacks;
  friend class HttpServer;

  // Server side, on the server's thread.
  void Attach(MHD_Connection* connection) { connection_ = connection; }
  /// Queues the answer if there is one (true), else suspends the connection until there is.
  bool QueueOrSuspend();
  /// A streamed answer's next bytes into buf (see MHD_ContentReaderCallback).
  ssize_t Read(char* buf, size_t max);
  /// The connection is done (answered, broken or closed by the server).
  void Detach();
  /// Server stopping: tell the producer (OnGone), answer `unanswered` if it has not answered,
  /// end a stream.
  void Cancel(HttpAnswer unanswered);
  bool answered() const;
  bool streaming() const;
  /// Neither suspended nor being resumed.
  bool idle() const;

  void Resume(std::unique_lock<std::mutex>& lock);
  void TakeGone(std::function<void()>& out);

  HttpRequest request_;  ///< the body grows on the server's thread until handed over
  mutable std::mutex mu_;
  MHD_Connection* connection_ = nullptr;
  bool suspended_ = false;
  std::atomic<int> resuming_{0};
  bool queued_ = false;  ///< the answer is with the connection
  std::optional<HttpAnswer> answer_;
  bool streaming_ = false;
  bool ended_ = false;
  bool gone_ = false;
  std::string unsent_;
  size_t unsent_from_ = 0;
  std::function<void()> on_gone_;
  std::function<void()> on_drained_;
};

}  // namespace approvald::server
