#pragma once

#include <array>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace approvald::server {

/// Process metrics in Prometheus text format. Counters and histograms are recorded by the
/// service; gauges are read at scrape time from `gauges`. Thread-safe.
class Metrics {
 public:
  /// Name -> current value, read at every scrape (pool size, queue depth, watchers, ...).
  using GaugeFn = std::function<std::map<std::string, double>()>;

  void RecordRpc(const std::string& method, const std::string& code, double seconds);
  void RecordCreated(const std::string& action_type);
  /// An approval reached a final status through a decision (approved, rejected, ...).
  void RecordDecided(const std::string& action_type, const std::string& status, uint64_t n = 1);
  void RecordHandler(const std::string& action_type, double seconds);
  void SetGauges(GaugeFn gauges);
  /// Exposition text rendered by another part (families with their own labels), appended.
  void AddText(std::function<std::string()> text);

  /// The exposition text of every metric.
  std::string Render() const;

 private:
  static constexpr std::array<double, 13> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                      0.25,  0.5,    1,     2.5,  5,     10};
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;
    void Observe(double v);
  };

  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, uint64_t> rpcs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Histogram> rpc_latency_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> created_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, uint64_t> decided_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Histogram> handler_ ABSL_GUARDED_BY(mu_);
  GaugeFn gauges_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<std::string()>> texts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace approvald::server
