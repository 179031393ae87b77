#include "db/pg/pg_time.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace approvald::db::pg {

absl::StatusOr<absl::Time> ParsePgTimestamp(absl::string_view text) {
  absl::string_view body = text;
  if (body.size() > 3 && body.substr(body.size() - 3) == "+00") body.remove_suffix(3);
  absl::Time t;
  std::string err;
  if (!absl::ParseTime("%Y-%m-%d %H:%M:%E*S", std::string(body), absl::UTCTimeZone(), &t, &err)) {
    return absl::InternalError(absl::StrCat("unexpected timestamp from the database: ", text));
  }
  return t;
}

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }

}  // namespace approvald::db::pg
