#include "client/bench/closed_loop.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

namespace approvald::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct LoopState {
  const IssueFn* issue = nullptr;
  Clock::time_point measure_start, measure_end;
  std::atomic<bool> stop{false};
  std::atomic<bool> ran_out{false};
  std::atomic<int> running{0};
  std::atomic<int64_t> completed{0};
  Clock::time_point ran_out_at;
  std::mutex mu;
  std::condition_variable cv;
  LatencyRecorder recorder;
};

void Retire(LoopState& state) {
  std::lock_guard<std::mutex> lock(state.mu);
  if (--state.running == 0) state.cv.notify_all();
}

void Next(LoopState& state, int slot) {
  if (state.stop.load()) return Retire(state);
  const Clock::time_point start = Clock::now();
  const bool started = (*state.issue)(slot, [&state, slot, start](const std::string& answer) {
    const Clock::time_point end = Clock::now();
    state.completed.fetch_add(1);
    if (end >= state.measure_start && end <= state.measure_end) {
      state.recorder.Record(
          std::chrono::duration_cast<std::chrono::microseconds>(end - start).count(), answer);
    }
    Next(state, slot);
  });
  if (!started) {
    if (!state.ran_out.exchange(true)) {
      std::lock_guard<std::mutex> lock(state.mu);
      state.ran_out_at = Clock::now();
    }
    Retire(state);
  }
}

}  // namespace

LoopResult RunClosedLoop(int concurrency, double warmup_s, double duration_s, bool quiet,
                         const std::string& label, const IssueFn& issue, bool mark_phases) {
  LoopState state;
  state.issue = &issue;
  const Clock::time_point begin = Clock::now();
  state.measure_start = begin + std::chrono::microseconds(static_cast<int64_t>(warmup_s * 1e6));
  state.measure_end =
      state.measure_start + std::chrono::microseconds(static_cast<int64_t>(duration_s * 1e6));
  state.running = concurrency;
  for (int slot = 0; slot < concurrency; ++slot) Next(state, slot);

  int64_t last_completed = 0;
  bool started_marked = false;
  {
    std::unique_lock<std::mutex> lock(state.mu);
    while (state.running > 0) {
      const Clock::time_point now = Clock::now();
      if (now >= state.measure_start && !started_marked) {
        started_marked = true;
        if (mark_phases) std::fprintf(stderr, "approval-bench: measure start\n");
      }
      if (now >= state.measure_end && !state.stop.load()) {
        state.stop = true;
        if (mark_phases) std::fprintf(stderr, "approval-bench: measure end\n");
      }
      Clock::time_point wake = now + std::chrono::seconds(1);
      if (!started_marked && state.measure_start < wake) wake = state.measure_start;
      if (!state.stop.load() && state.measure_end < wake) wake = state.measure_end;
      state.cv.wait_until(lock, wake);
      if (!quiet && !state.stop.load()) {
        const int64_t completed = state.completed.load();
        const double t = std::chrono::duration<double>(Clock::now() - begin).count();
        std::fprintf(stderr, "[%5.1fs] %-12s %s %8lld calls/s  recorded %lld\n", t, label.c_str(),
                     Clock::now() < state.measure_start ? "warmup " : "measure",
                     static_cast<long long>(completed - last_completed),
                     static_cast<long long>(state.recorder.count()));
        last_completed = completed;
      }
    }
  }
  LoopResult result;
  result.summary = state.recorder.Summarize();
  result.ran_out = state.ran_out.load();
  Clock::time_point end = state.measure_end;
  if (result.ran_out && state.ran_out_at < end) end = state.ran_out_at;
  result.window_s = std::max(0.0, std::chrono::duration<double>(end - state.measure_start).count());
  return result;
}

}  // namespace approvald::bench
