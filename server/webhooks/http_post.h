#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace approvald::server {

/// One HTTP POST, made with libcurl on the calling thread (a webhook thread, never a gRPC one).
struct PostRequest {
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;                            ///< sent as application/json
  absl::Duration timeout = absl::Seconds(10);  ///< the whole exchange
  std::string ca_file;                         ///< empty: the system's CA bundle
  /// Set by another thread (absl::ToUnixNanos) to abandon the exchange if it still runs at
  /// that time: CANCELLED. 0: never.
  const std::atomic<int64_t>* abandon_at = nullptr;
};

/// What the server answered (any status: the caller judges it).
struct PostAnswer {
  long status = 0;
  std::string content_type;
  std::string body;  ///< at most kMaxAnswerBytes
};

inline constexpr size_t kMaxAnswerBytes = 64 * 1024;

/// Calls once at start-up, before any thread posts (libcurl's global set-up).
void InitHttpClient();

/// Posts on the calling thread (a webhook thread, never a gRPC one). One per thread: it keeps
/// its connections open between posts (keep-alive, TLS sessions), as libcurl's easy handle
/// does across resets.
class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// DEADLINE_EXCEEDED if the exchange took longer than the timeout, CANCELLED if it was
  /// abandoned, UNAVAILABLE if it failed otherwise (no connection, TLS verification, a broken
  /// answer): messages name the host at most, never the URL's path or query (a Slack webhook
  /// URL is itself a secret) nor any header.
  absl::StatusOr<PostAnswer> Post(const PostRequest& post);

 private:
  struct Handle;
  std::unique_ptr<Handle> handle_;
};

/// At most `max` bytes of an answer's body as safe text (valid UTF-8, no control characters),
/// for error messages.
std::string BodyExcerpt(absl::string_view body, size_t max);

/// "scheme://host[:port]" of `url`: what logs and errors may show of it.
std::string UrlOrigin(const std::string& url);

}  // namespace approvald::server
