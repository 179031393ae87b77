#pragma once

#include <string>

#include "absl/time/time.h"
#include "handlers/config_reader.h"

namespace approvald::handlers {

/// Exponential backoff with jitter between attempts (executions, webhook deliveries).
struct Backoff {
  absl::Duration initial = absl::Seconds(1);  ///< before the 2nd attempt; doubles
  absl::Duration max = absl::Minutes(5);
  double jitter = 0.2;  ///< each delay is randomly up to this fraction shorter or longer

  /// The delay before the attempt after `attempt` (1-based) failed; `unit` in [0, 1) draws the
  /// jitter.
  absl::Duration Delay(int attempt, double unit) const;
};

/// Reads a `backoff: {initial, max, jitter}` mapping into `out` (keys left out keep theirs).
absl::Status ParseBackoff(const ConfigReader& r, const YAML::Node& node, const std::string& path,
                          Backoff* out);

}  // namespace approvald::handlers
