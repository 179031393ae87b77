#include "client/bench/latency_recorder.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace approvald::bench {

void LatencyRecorder::Record(int64_t micros, const std::string& answer) {
  std::lock_guard<std::mutex> lock(mu_);
  micros_.push_back(micros);
  ++answers_[answer];
}

void LatencyRecorder::CountOnly(const std::string& answer) {
  std::lock_guard<std::mutex> lock(mu_);
  ++answers_[answer];
}

int64_t LatencyRecorder::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(micros_.size());
}

int64_t Quantile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(q * static_cast<double>(sorted.size()));
  const size_t index = static_cast<size_t>(std::max(1.0, rank)) - 1;
  return sorted[std::min(index, sorted.size() - 1)];
}

LatencyRecorder::Summary LatencyRecorder::Summarize() const {
  std::vector<int64_t> sorted;
  Summary s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    sorted = micros_;
    s.answers = answers_;
  }
  std::sort(sorted.begin(), sorted.end());
  s.calls = static_cast<int64_t>(sorted.size());
  auto ms = [](int64_t us) { return static_cast<double>(us) / 1000.0; };
  s.p50_ms = ms(Quantile(sorted, 0.50));
  s.p90_ms = ms(Quantile(sorted, 0.90));
  s.p99_ms = ms(Quantile(sorted, 0.99));
  s.p999_ms = ms(Quantile(sorted, 0.999));
  s.max_ms = sorted.empty() ? 0 : ms(sorted.back());
  if (!sorted.empty()) {
    s.mean_ms = ms(std::accumulate(sorted.begin(), sorted.end(), int64_t{0}) /
                   static_cast<int64_t>(sorted.size()));
  }
  return s;
}

}  // namespace approvald::bench
