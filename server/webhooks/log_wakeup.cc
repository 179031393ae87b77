#include "server/webhooks/log_wakeup.h"

namespace approvald::server {

LogWakeup::LogWakeup(EventHub* hub, Filter filter) : hub_(hub), filter_(std::move(filter)) {
  if (hub_ != nullptr) attached_ = hub_->AttachAtHead(this);
}

LogWakeup::~LogWakeup() { Stop(); }

uint64_t LogWakeup::generation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return generation_;
}

bool LogWakeup::Wait(uint64_t seen, absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
               [&] { return stopped_ || generation_ != seen; });
  return !stopped_;
}

bool LogWakeup::Sleep(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] { return stopped_; });
  return !stopped_;
}

void LogWakeup::Stop() {
  bool detach = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    detach = attached_;
    attached_ = false;
  }
  cv_.notify_all();
  if (detach) hub_->Detach(this);
}

bool LogWakeup::stopped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopped_;
}

void LogWakeup::Poke() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
  }
  cv_.notify_all();
}

void LogWakeup::OnEvent(const std::shared_ptr<const approvals::v1::ApprovalEvent>& event, size_t) {
  if (!filter_ || filter_(*event)) Poke();
}

void LogWakeup::OnHubStopped(int64_t) {
  // The daemon is stopping; the webhook threads are stopped by its shutdown.
}

}  // namespace approvald::server
