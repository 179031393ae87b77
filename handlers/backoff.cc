#include "handlers/backoff.h"

#include <algorithm>
#include <cmath>

namespace approvald::handlers {

absl::Duration Backoff::Delay(int attempt, double unit) const {
  const double doublings = std::min(std::max(attempt - 1, 0), 40);
  const absl::Duration base = std::min(max, initial * std::pow(2.0, doublings));
  return base * (1.0 + jitter * (2.0 * unit - 1.0));
}

absl::Status ParseBackoff(const ConfigReader& r, const YAML::Node& b, const std::string& at,
                          Backoff* out) {
  CONFIG_TRY(r.CheckKeys(b, at, {"initial", "max", "jitter"}));
  if (b["initial"]) CONFIG_TRY(r.Duration(b["initial"], at + ".initial", &out->initial));
  if (b["max"]) CONFIG_TRY(r.Duration(b["max"], at + ".max", &out->max));
  if (b["jitter"]) {
    CONFIG_TRY(r.Number(b["jitter"], at + ".jitter", &out->jitter));
    if (out->jitter < 0 || out->jitter > 1) {
      return r.Error(b["jitter"], at + ".jitter", "must be between 0 and 1");
    }
  }
  if (out->max < out->initial || out->max > absl::Hours(24)) {
    return r.Error(b, at + ".max", "must be at least initial and at most 24h");
  }
  return absl::OkStatus();
}

}  // namespace approvald::handlers
