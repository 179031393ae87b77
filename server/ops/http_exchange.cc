#include "server/ops/http_exchange.h"

#include <microhttpd.h>

#include <cstring>

#include "absl/strings/match.h"

namespace approvald::server {

const std::string* HttpRequest::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return &value;
  }
  return nullptr;
}

void HttpExchange::Answer(HttpAnswer answer) {
  std::unique_lock<std::mutex> lock(mu_);
  if (answer_.has_value() || gone_) return;
  answer_ = std::move(answer);
  Resume(lock);
}

void HttpExchange::StartStream(HttpAnswer head) {
  std::unique_lock<std::mutex> lock(mu_);
  if (answer_.has_value() || gone_) return;
  streaming_ = true;
  unsent_ = std::move(head.body);
  head.body.clear();
  answer_ = std::move(head);
  Resume(lock);
}

bool HttpExchange::Write(std::string_view bytes) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!streaming_ || ended_ || gone_) return false;
  unsent_.append(bytes);
  Resume(lock);
  return true;
}

void HttpExchange::End() {
  std::unique_lock<std::mutex> lock(mu_);
  ended_ = true;
  Resume(lock);
}

size_t HttpExchange::Unsent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unsent_.size() - unsent_from_;
}

void HttpExchange::OnGone(std::function<void()> gone) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!gone_) {
      on_gone_ = std::move(gone);
      return;
    }
  }
  if (gone) gone();
}

void HttpExchange::OnDrained(std::function<void()> drained) {
  std::lock_guard<std::mutex> lock(mu_);
  on_drained_ = std::move(drained);
}

bool HttpExchange::streaming() const {
  std::lock_guard<std::mutex> lock(mu_);
  return streaming_;
}

bool HttpExchange::answered() const {
  std::lock_guard<std::mutex> lock(mu_);
  return answer_.has_value();
}

void HttpExchange::Resume(std::unique_lock<std::mutex>& lock) {
  // Only this request suspends its connection, and a suspended connection is never closed
  // (the server resumes every one before it stops), so it is resumed outside our lock: the
  // library's own lock is never taken under ours. `resuming_` lets Stop wait for the call.
  if (!suspended_ || connection_ == nullptr) return;
  suspended_ = false;
  MHD_Connection* connection = connection_;
  resuming_.fetch_add(1);
  lock.unlock();
  MHD_resume_connection(connection);
  resuming_.fetch_sub(1);
}

bool HttpExchange::idle() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !suspended_ && resuming_.load() == 0;
}

bool HttpExchange::QueueOrSuspend() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queued_) return true;
    if (!answer_.has_value()) {
      suspended_ = true;
      MHD_suspend_connection(connection_);
      return true;
    }
    queued_ = true;
  }
  // The answer no longer changes once set; the response is made outside our lock, since the
  // library calls Read (which takes it) under the response's own lock.
  const HttpAnswer& a = *answer_;
  MHD_Response* response;
  if (streaming_) {
    response = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 16 * 1024,
        [](void* self, uint64_t, char* buf, size_t max) {
          return static_cast<HttpExchange*>(self)->Read(buf, max);
        },
        this, nullptr);
  } else {
    response = MHD_create_response_from_buffer(a.body.size(), const_cast<char*>(a.body.data()),
                                               MHD_RESPMEM_MUST_COPY);
  }
  if (response == nullptr) return false;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, a.content_type.c_str());
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
  for (const auto& [name, value] : a.headers) {
    MHD_add_response_header(response, name.c_str(), value.c_str());
  }
  const MHD_Result queued =
      MHD_queue_response(connection_, static_cast<unsigned>(a.code), response);
  MHD_destroy_response(response);
  return queued == MHD_YES;
}

ssize_t HttpExchange::Read(char* buf, size_t max) {
  std::function<void()> drained;
  ssize_t n = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t left = unsent_.size() - unsent_from_;
    if (left == 0) {
      if (ended_ || gone_) return MHD_CONTENT_READER_END_OF_STREAM;
      // Nothing to send yet: the connection waits, holding no thread, until Write or End.
      suspended_ = true;
      MHD_suspend_connection(connection_);
      return 0;
    }
    const size_t take = std::min(left, max);
    std::memcpy(buf, unsent_.data() + unsent_from_, take);
    unsent_from_ += take;
    if (unsent_from_ == unsent_.size()) {
      unsent_.clear();
      unsent_from_ = 0;
      drained = on_drained_;
    } else if (unsent_from_ > unsent_.size() / 2) {
      unsent_.erase(0, unsent_from_);
      unsent_from_ = 0;
    }
    n = static_cast<ssize_t>(take);
  }
  if (drained) drained();
  return n;
}

void HttpExchange::TakeGone(std::function<void()>& out) {
  gone_ = true;
  out = std::move(on_gone_);
  on_gone_ = nullptr;
  on_drained_ = nullptr;
}

void HttpExchange::Detach() {
  std::function<void()> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    connection_ = nullptr;
    suspended_ = false;
    TakeGone(gone);
  }
  if (gone) gone();
}

void HttpExchange::Cancel(HttpAnswer unanswered) {
  std::function<void()> gone;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (gone_) return;
    TakeGone(gone);
    // A producer that answers no more: the connection must not stay suspended.
    if (!answer_.has_value()) answer_ = std::move(unanswered);
    ended_ = true;
    Resume(lock);
  }
  if (gone) gone();
}

}  // namespace approvald::server
