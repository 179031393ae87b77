#include "db/pg/decision_ids.h"

#include <google/protobuf/util/json_util.h>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "db/errors.h"

namespace approvald::db::pg {

std::string NewUuid() {
  thread_local absl::BitGen gen;
  uint64_t hi = absl::Uniform<uint64_t>(gen);
  uint64_t lo = absl::Uniform<uint64_t>(gen);
  hi = (hi & ~uint64_t{0xF000}) | 0x4000;                      // version 4
  lo = (lo & ~(uint64_t{0xC} << 60)) | (uint64_t{0x8} << 60);  // RFC 4122 variant
  const std::string h = absl::StrFormat("%016x%016x", hi, lo);
  return absl::StrCat(h.substr(0, 8), "-", h.substr(8, 4), "-", h.substr(12, 4), "-",
                      h.substr(16, 4), "-", h.substr(20));
}

std::string NewCallToken() {
  thread_local absl::BitGen gen;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen));
}

absl::Status ReplayOutcome(const Rows& found) {
  absl::StatusOr<int64_t> code = found.GetInt(0, "code");
  if (!code.ok()) return code.status();
  if (*code == 0) return absl::OkStatus();
  absl::Status error(static_cast<absl::StatusCode>(*code), found.GetString(0, "message"));
  google::rpc::ErrorInfo info;
  if (google::protobuf::util::JsonStringToMessage(found.GetString(0, "metadata"), &info).ok() &&
      !info.reason().empty()) {
    approvals::v1::ErrorReason reason = approvals::v1::ERROR_REASON_UNSPECIFIED;
    approvals::v1::ErrorReason_Parse(info.reason(), &reason);
    ErrorMetadata metadata(info.metadata().begin(), info.metadata().end());
    return ReasonError(error.code(), reason, error.message(), metadata);
  }
  return error;
}

}  // namespace approvald::db::pg
