#include "db/rows.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace approvald::db {
namespace {
const Param kNull;
}  // namespace

int Rows::Column(absl::string_view name) const {
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i] == name) return static_cast<int>(i);
  }
  return -1;
}

const Param& Rows::Get(size_t row, absl::string_view column) const {
  const int c = Column(column);
  if (c < 0 || row >= values_.size()) return kNull;
  return values_[row][static_cast<size_t>(c)];
}

std::string Rows::GetString(size_t row, absl::string_view column) const {
  const Param& v = Get(row, column);
  return v ? *v : std::string();
}

absl::StatusOr<int64_t> Rows::GetInt(size_t row, absl::string_view column) const {
  const Param& v = Get(row, column);
  int64_t out = 0;
  if (!v || !absl::SimpleAtoi(*v, &out)) {
    return absl::InternalError(absl::StrCat("column ", column, " is not an integer"));
  }
  return out;
}

bool Rows::GetBool(size_t row, absl::string_view column) const {
  const Param& v = Get(row, column);
  return v && *v == "t";
}

}  // namespace approvald::db
