#include "handlers/config_reader.h"

namespace approvald::handlers {

bool ParseConfigDuration(const std::string& text, absl::Duration* out) {
  if (text.size() > 1 && text.back() == 'd') {
    int64_t days = 0;
    if (!absl::SimpleAtoi(text.substr(0, text.size() - 1), &days) || days < 0 || days > 36500) {
      return false;
    }
    *out = absl::Hours(24 * days);
    return true;
  }
  // Bounded: an infinite or absurd ttl would overflow timestamps in the database.
  return absl::ParseDuration(text, out) && *out < absl::Hours(24 * 365 * 100);
}

}  // namespace approvald::handlers
