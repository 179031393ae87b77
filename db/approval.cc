#include "db/approval.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace approvald::db {

std::string StatusEnumName(absl::string_view status) {
  return absl::StrCat("APPROVAL_STATUS_", absl::AsciiStrToUpper(status));
}

}  // namespace approvald::db
