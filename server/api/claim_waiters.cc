#include "server/api/claim_waiters.h"

#include <algorithm>
#include <tuple>
#include <utility>

namespace approvald::server {
namespace {

namespace v1 = approvals::v1;

// Events after which an execution may be due: an approval (of an external type: queued), a
// failed attempt due again.
bool MayMakeDue(const v1::ApprovalEvent& e) {
  return e.type() == v1::EVENT_TYPE_APPROVED || e.type() == v1::EVENT_TYPE_EXECUTION_RETRY;
}

}  // namespace

ClaimWaiters::ClaimWaiters(EventHub* hub) : hub_(hub), thread_([this] { Run(); }) {}

ClaimWaiters::~ClaimWaiters() { Stop(); }

uint64_t ClaimWaiters::Park(std::vector<std::string> types, absl::Time wake, absl::Time end,
                            TryAgain retry) {
  bool attach = false;
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return 0;
    id = next_id_++;
    waiters_[id] =
        Waiter{std::move(types), std::min(wake, end), end, false, false, std::move(retry)};
    attach = !attached_;
    attached_ = true;
  }
  // Attached once, at the first wait, and for good: a hub sink costs the log poll only.
  if (attach && hub_ != nullptr) (void)hub_->AttachAtHead(this);
  cv_.notify_all();
  return id;
}

void ClaimWaiters::Rearm(uint64_t id, absl::Time wake) {
  TryAgain last;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = waiters_.find(id);
    if (it == waiters_.end()) return;
    Waiter& w = it->second;
    if (stopped_) {
      last = w.retry;  // stopped while it tried: its last try, now
    } else {
      w.trying = false;
      w.wake = w.woken ? absl::InfinitePast() : std::min(wake, w.end);
      w.woken = false;
    }
  }
  if (last) {
    last(id, /*last=*/true);
    return;
  }
  cv_.notify_all();
}

void ClaimWaiters::Remove(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  waiters_.erase(id);
}

void ClaimWaiters::Stop() {
  std::vector<std::pair<uint64_t, TryAgain>> last;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_ && !thread_.joinable()) return;
    stopped_ = true;
    for (auto& [id, w] : waiters_) {
      if (!w.trying) last.emplace_back(id, w.retry);
      w.trying = true;
      w.end = absl::InfinitePast();  // a try in flight answers when it comes back
    }
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (hub_ != nullptr && attached_) hub_->Detach(this);
  for (auto& [id, retry] : last) retry(id, /*last=*/true);
}

void ClaimWaiters::OnEvent(const std::shared_ptr<const v1::ApprovalEvent>& event, size_t) {
  if (!MayMakeDue(*event)) return;
  const std::string& type = event->approval().action_type();
  bool any = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, w] : waiters_) {
      if (std::find(w.types.begin(), w.types.end(), type) == w.types.end()) continue;
      if (w.trying) {
        w.woken = true;
      } else {
        w.wake = absl::InfinitePast();
        any = true;
      }
    }
  }
  if (any) cv_.notify_all();
}

void ClaimWaiters::OnHubStopped(int64_t) {}

void ClaimWaiters::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopped_) {
    const absl::Time now = absl::Now();
    absl::Time next = absl::InfiniteFuture();
    std::vector<std::tuple<uint64_t, TryAgain, bool>> due;
    for (auto& [id, w] : waiters_) {
      if (w.trying) continue;
      if (w.wake <= now) {
        w.trying = true;
        due.emplace_back(id, w.retry, now >= w.end);
      } else {
        next = std::min(next, w.wake);
      }
    }
    if (!due.empty()) {
      lock.unlock();
      for (auto& [id, retry, last] : due) retry(id, last);
      lock.lock();
      continue;
    }
    if (next == absl::InfiniteFuture()) {
      cv_.wait(lock);
    } else {
      cv_.wait_for(lock, absl::ToChronoNanoseconds(next - now));
    }
  }
}

}  // namespace approvald::server
