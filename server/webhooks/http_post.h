#pragma once

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

/// DEADLINE_EXCEEDED if the exchange took longer than the timeout, UNAVAILABLE if it failed
/// otherwise (no connection, TLS verification, a broken answer): messages name the host at most,
/// never the URL's path or query (a Slack webhook URL is itself a secret) nor any header.
absl::StatusOr<PostAnswer> Post(const PostRequest& post);

/// At most `max` bytes of an answer's body as safe text (valid UTF-8, no control characters),
/// for error messages.
std::string BodyExcerpt(absl::string_view body, size_t max);

/// "scheme://host[:port]" of `url`: what logs and errors may show of it.
std::string UrlOrigin(const std::string& url);

}  // namespace approvald::server
