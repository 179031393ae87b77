// watch-fanout: W WatchApprovals streams; approvals are created at a fixed rate and each
// watcher's delivery is timed from the moment its CreateApproval was sent (an upper bound on
// commit -> delivery: it includes the create call itself).
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/bench/modes.h"

namespace approvald::bench {
namespace {

constexpr absl::string_view kPrefix = "wf-";
constexpr absl::string_view kSync = "wf-sync";

struct Fanout {
  std::mutex mu;
  std::condition_variable cv;
  std::unordered_map<int64_t, Clock::time_point> sent;  ///< seq -> create sent
  Clock::time_point record_from;
  std::atomic<bool> recording{false};
  LatencyRecorder deliveries;
  int synced = 0;  ///< watchers that saw a sync event
  int finished = 0;
  std::atomic<int> creates_in_flight{0};
  std::map<std::string, int> ended;  ///< stream end codes
};

class Watcher final : public grpc::ClientReadReactor<v1::ApprovalEvent> {
 public:
  Watcher(v1::ApprovalService::Stub& stub, const std::string& token, Fanout& fanout)
      : fanout_(fanout) {
    ctx_.AddMetadata("authorization", "Bearer " + token);
    stub.async()->WatchApprovals(&ctx_, &request_, this);
    StartRead(&event_);
    StartCall();
  }
  void Cancel() { ctx_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    const Clock::time_point now = Clock::now();
    const std::string& summary = event_.approval().summary();
    if (event_.type() == v1::EVENT_TYPE_CREATED && absl::StartsWith(summary, kPrefix)) {
      if (summary == kSync) {
        if (!synced_) {
          synced_ = true;
          std::lock_guard<std::mutex> lock(fanout_.mu);
          ++fanout_.synced;
          fanout_.cv.notify_all();
        }
      } else if (int64_t seq = 0; fanout_.recording.load() &&
                                  absl::SimpleAtoi(summary.substr(kPrefix.size()), &seq)) {
        Clock::time_point sent{};
        {
          std::lock_guard<std::mutex> lock(fanout_.mu);
          auto it = fanout_.sent.find(seq);
          if (it != fanout_.sent.end()) sent = it->second;
        }
        if (sent >= fanout_.record_from && sent != Clock::time_point{}) {
          fanout_.deliveries.Record(
              std::chrono::duration_cast<std::chrono::microseconds>(now - sent).count(), "OK");
        }
      }
    }
    StartRead(&event_);
  }
  void OnDone(const grpc::Status& status) override {
    std::lock_guard<std::mutex> lock(fanout_.mu);
    ++fanout_.ended[AnswerOf(status)];
    ++fanout_.finished;
    fanout_.cv.notify_all();
  }

 private:
  Fanout& fanout_;
  grpc::ClientContext ctx_;
  v1::WatchApprovalsRequest request_;
  v1::ApprovalEvent event_;
  bool synced_ = false;
};

}  // namespace

absl::StatusOr<ModeResult> RunWatchFanout(Stubs& stubs, const Options& options) {
  Fanout fanout;
  std::vector<std::unique_ptr<Watcher>> watchers;
  watchers.reserve(static_cast<size_t>(options.watchers));
  for (int i = 0; i < options.watchers; ++i) {
    watchers.push_back(std::make_unique<Watcher>(stubs.Next(), options.token, fanout));
  }
  auto create = [&](const std::string& summary, std::atomic<int64_t>* ok) {
    fanout.creates_in_flight.fetch_add(1);
    CreateAsync(stubs, options, summary, [ok, &fanout](const grpc::Status& st, v1::Approval&) {
      if (st.ok() && ok) ok->fetch_add(1);
      std::lock_guard<std::mutex> lock(fanout.mu);
      fanout.creates_in_flight.fetch_sub(1);
      fanout.cv.notify_all();
    });
  };
  // Every stream is live once it has seen a sync event.
  const Clock::time_point sync_deadline = Clock::now() + std::chrono::seconds(60);
  while (true) {
    create(std::string(kSync), nullptr);
    std::unique_lock<std::mutex> lock(fanout.mu);
    if (fanout.cv.wait_for(lock, std::chrono::milliseconds(500),
                           [&] { return fanout.synced + fanout.finished >= options.watchers; })) {
      break;
    }
    if (Clock::now() > sync_deadline) break;
  }
  // Ends every stream and waits for the callbacks that refer to this frame.
  auto shutdown = [&] {
    for (auto& w : watchers) w->Cancel();
    std::unique_lock<std::mutex> lock(fanout.mu);
    fanout.cv.wait(lock, [&] {
      return fanout.finished >= options.watchers && fanout.creates_in_flight.load() == 0;
    });
  };
  int synced = 0;
  std::string ended;  // how the streams that ended early ended
  {
    std::lock_guard<std::mutex> lock(fanout.mu);
    synced = fanout.synced;
    for (const auto& [code, n] : fanout.ended) absl::StrAppend(&ended, " ", code, " x", n);
  }
  if (synced < options.watchers) {
    shutdown();
    return absl::DeadlineExceededError(absl::StrCat("only ", synced, " of ", options.watchers,
                                                    " watch streams became live",
                                                    ended.empty() ? "" : "; ended:", ended));
  }
  if (!options.quiet) std::fprintf(stderr, "%d watchers live\n", options.watchers);

  const Clock::time_point begin = Clock::now();
  fanout.record_from =
      begin + std::chrono::microseconds(static_cast<int64_t>(options.warmup_s * 1e6));
  fanout.recording = true;
  const auto end = fanout.record_from +
                   std::chrono::microseconds(static_cast<int64_t>(options.duration_s * 1e6));
  const auto interval = std::chrono::microseconds(static_cast<int64_t>(1e6 / options.rate));
  std::atomic<int64_t> created_ok{0};
  int64_t measured_creates = 0;
  std::atomic<int64_t> measured_ok{0};
  Clock::time_point next = begin;
  for (int64_t seq = 1; next < end; ++seq, next += interval) {
    std::this_thread::sleep_until(next);
    const Clock::time_point now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(fanout.mu);
      fanout.sent[seq] = now;
    }
    const bool measured = now >= fanout.record_from;
    if (measured) ++measured_creates;
    create(absl::StrCat(kPrefix, seq), measured ? &measured_ok : &created_ok);
  }
  // Let the last creates finish and their deliveries arrive (or time out), then end the streams.
  const Clock::time_point settle = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < settle && fanout.creates_in_flight.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  while (Clock::now() < settle &&
         fanout.deliveries.count() < measured_ok.load() * options.watchers) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  shutdown();
  ModeResult result;
  result.loop.summary = fanout.deliveries.Summarize();
  result.loop.window_s = options.duration_s;
  const double expected = static_cast<double>(measured_ok.load()) * options.watchers;
  result.extra = {
      {"watchers", options.watchers},
      {"creates", static_cast<double>(measured_creates)},
      {"creates_ok", static_cast<double>(measured_ok.load())},
      {"deliveries_expected", expected},
      {"deliveries", static_cast<double>(result.loop.summary.calls)},
      {"deliveries_missing", expected - static_cast<double>(result.loop.summary.calls)}};
  for (const auto& [code, n] : fanout.ended) {
    if (code != "CANCELLED") {
      result.notes.push_back(absl::StrCat(n, " streams ended early with ", code));
    }
  }
  return result;
}

}  // namespace approvald::bench
