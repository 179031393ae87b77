// contended: K racers fire Approve on one approval at the same moment; each round waits for every
// answer. Shows the row lock's serialisation: one OK, K-1 ALREADY_PROCESSED, and how long the
// last racer waits.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>

#include "client/bench/modes.h"

namespace approvald::bench {

absl::StatusOr<ModeResult> RunContended(Stubs& stubs, const Options& options) {
  const int rounds_wanted =
      options.approvals > 0 ? options.approvals
                            : static_cast<int>((options.warmup_s + options.duration_s) * 60) + 1;
  absl::StatusOr<std::vector<std::string>> ids = PrepareApprovals(stubs, options, rounds_wanted);
  if (!ids.ok()) return ids.status();

  LatencyRecorder racers;                  // fire -> answer of each racer
  std::vector<int64_t> spread_us, all_us;  // per round: first -> last answer, fire -> last
  int64_t executions = 0, rounds = 0, rounds_not_one = 0;
  const Clock::time_point begin = Clock::now();
  const auto measure_start =
      begin + std::chrono::microseconds(static_cast<int64_t>(options.warmup_s * 1e6));
  const auto measure_end =
      measure_start + std::chrono::microseconds(static_cast<int64_t>(options.duration_s * 1e6));
  bool ran_out = false;
  Clock::time_point last_end = measure_end;
  for (size_t round = 0;; ++round) {
    if (Clock::now() >= measure_end) break;
    if (round >= ids->size()) {
      ran_out = true;
      last_end = Clock::now();
      break;
    }
    const bool measured = Clock::now() >= measure_start;
    std::mutex mu;
    std::condition_variable cv;
    int answered = 0, ok = 0;
    Clock::time_point first{}, last{};
    std::vector<std::pair<int64_t, std::string>> answers;
    const Clock::time_point fire = Clock::now();
    for (int k = 0; k < options.racers; ++k) {
      DecideAsync(stubs, options.token, true, (*ids)[round],
                  [&](const grpc::Status& st, v1::Approval&) {
                    const Clock::time_point now = Clock::now();
                    std::lock_guard<std::mutex> lock(mu);
                    if (answered == 0) first = now;
                    last = now;
                    if (st.ok()) ++ok;
                    answers.emplace_back(
                        std::chrono::duration_cast<std::chrono::microseconds>(now - fire).count(),
                        AnswerOf(st));
                    if (++answered == options.racers) cv.notify_all();
                  });
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return answered == options.racers; });
    }
    if (!measured) continue;
    ++rounds;
    executions += ok;
    if (ok != 1) ++rounds_not_one;
    for (const auto& [us, answer] : answers) racers.Record(us, answer);
    spread_us.push_back(
        std::chrono::duration_cast<std::chrono::microseconds>(last - first).count());
    all_us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(last - fire).count());
    if (!options.quiet && rounds % 50 == 0) {
      std::fprintf(stderr, "contended: %lld rounds\n", static_cast<long long>(rounds));
    }
  }
  std::sort(spread_us.begin(), spread_us.end());
  std::sort(all_us.begin(), all_us.end());
  ModeResult result;
  result.loop.summary = racers.Summarize();
  result.loop.ran_out = ran_out;
  result.loop.window_s = std::chrono::duration<double>(last_end - measure_start).count();
  auto ms = [](int64_t us) { return static_cast<double>(us) / 1000.0; };
  result.extra = {{"racers", options.racers},
                  {"rounds", static_cast<double>(rounds)},
                  {"executions", static_cast<double>(executions)},
                  {"rounds_without_exactly_one_execution", static_cast<double>(rounds_not_one)},
                  {"spread_p50_ms", ms(Quantile(spread_us, 0.5))},
                  {"spread_p99_ms", ms(Quantile(spread_us, 0.99))},
                  {"spread_max_ms", spread_us.empty() ? 0 : ms(spread_us.back())},
                  {"all_answered_p50_ms", ms(Quantile(all_us, 0.5))},
                  {"all_answered_p99_ms", ms(Quantile(all_us, 0.99))},
                  {"all_answered_max_ms", all_us.empty() ? 0 : ms(all_us.back())}};
  if (ran_out) result.notes.push_back("the prepared approvals ran out: raise --approvals");
  return result;
}

}  // namespace approvald::bench
