#include "server/webhooks/http_post.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "db/utf8.h"

namespace approvald::server {
namespace {

struct EasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct ListDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;
using HeaderList = std::unique_ptr<curl_slist, ListDeleter>;

size_t Collect(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  const size_t bytes = size * n;
  // Keep the start of a long answer; the rest is read (and dropped) so the exchange completes.
  if (body->size() < kMaxAnswerBytes)
    body->append(data, std::min(bytes, kMaxAnswerBytes - body->size()));
  return bytes;
}

// Abandons the transfer once the caller's abandon time has come (libcurl calls it about once a
// second and on every chunk of data).
int Progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* abandon_at = static_cast<const std::atomic<int64_t>*>(user);
  if (abandon_at == nullptr) return 0;
  const int64_t at = abandon_at->load();
  return at != 0 && absl::ToUnixNanos(absl::Now()) >= at ? 1 : 0;
}

}  // namespace

struct HttpClient::Handle {
  Easy curl;
};

HttpClient::HttpClient() : handle_(std::make_unique<Handle>()) { InitHttpClient(); }

HttpClient::~HttpClient() = default;

void InitHttpClient() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string BodyExcerpt(absl::string_view body, size_t max) {
  body = body.substr(0, max);
  body = body.substr(0, std::min(body.size(), db::FirstInvalidUtf8(body)));
  std::string out(body);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return out;
}

std::string UrlOrigin(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return "(a URL)";
  const size_t end = url.find_first_of("/?#", scheme + 3);
  std::string origin = url.substr(0, end);
  // user:password@ is a secret too.
  if (const size_t at = origin.rfind('@'); at != std::string::npos && at > scheme) {
    origin = origin.substr(0, scheme + 3) + origin.substr(at + 1);
  }
  return origin;
}

absl::StatusOr<PostAnswer> HttpClient::Post(const PostRequest& post) {
  // The handle outlives each post: a reset clears its options but keeps its open connections.
  if (!handle_->curl) handle_->curl.reset(curl_easy_init());
  if (!handle_->curl) return absl::ResourceExhaustedError("cannot create an HTTP client handle");
  curl_easy_reset(handle_->curl.get());
  HeaderList headers;
  auto add = [&headers](const std::string& line) {
    curl_slist* next = curl_slist_append(headers.get(), line.c_str());
    if (next != nullptr) {
      (void)headers.release();
      headers.reset(next);
    }
  };
  add("Content-Type: application/json");
  add("Expect:");  // no 100-continue round trip
  for (const auto& [name, value] : post.headers) add(absl::StrCat(name, ": ", value));
  PostAnswer answer;
  char error[CURL_ERROR_SIZE] = {0};
  CURL* c = handle_->curl.get();
  curl_easy_setopt(c, CURLOPT_URL, post.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, post.body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(post.body.size()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(post.timeout)));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(post.timeout)));
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!post.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, post.ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "approvald-webhooks/1");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer.body);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &Progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA,
                   static_cast<void*>(const_cast<std::atomic<int64_t>*>(post.abandon_at)));
  const CURLcode code = curl_easy_perform(c);
  // The handle must not keep pointers into this call (error buffer, headers, answer).
  struct Reset {
    CURL* c;
    ~Reset() { curl_easy_reset(c); }
  } reset{c};
  if (code != CURLE_OK) {
    const std::string what = absl::StrCat(UrlOrigin(post.url), ": ",
                                          error[0] != '\0' ? error : curl_easy_strerror(code));
    if (code == CURLE_OPERATION_TIMEDOUT) return absl::DeadlineExceededError(what);
    if (code == CURLE_ABORTED_BY_CALLBACK) {
      return absl::CancelledError(absl::StrCat(UrlOrigin(post.url), ": approvald is stopping"));
    }
    return absl::UnavailableError(what);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &answer.status);
  char* type = nullptr;
  if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type != nullptr) {
    answer.content_type = type;
  }
  return answer;
}

}  // namespace approvald::server
