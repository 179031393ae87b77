#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace approvald::bench {

/// Latencies (microseconds) and answers of the calls in the measured window. Thread-safe.
class LatencyRecorder {
 public:
  void Record(int64_t micros, const std::string& answer);
  /// Counts an answer without a latency (e.g. a call cut short by the end of the run).
  void CountOnly(const std::string& answer);

  struct Summary {
    int64_t calls = 0;
    double p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0, mean_ms = 0;
    std::map<std::string, int64_t> answers;  ///< "OK", "CODE" or "CODE/REASON"
  };
  Summary Summarize() const;
  /// Calls recorded so far (for the progress line).
  int64_t count() const;

 private:
  mutable std::mutex mu_;
  std::vector<int64_t> micros_;
  std::map<std::string, int64_t> answers_;
};

/// The q-quantile (0..1) of sorted values, nearest rank; 0 if empty.
int64_t Quantile(const std::vector<int64_t>& sorted, double q);

}  // namespace approvald::bench
