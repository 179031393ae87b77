#include "db/pg/pg_time.h"

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"

namespace approvald::db::pg {
namespace {

bool ReadDigits(absl::string_view s, size_t pos, size_t n, int64_t* out) {
  int64_t v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// "YYYY-MM-DD HH:MM:SS[.ffffff]" without a time zone parser: every row carries four of these,
// and absl::ParseTime was a visible share of a decision's CPU. Anything else (years past 9999,
// BC dates, infinity) is left to absl::ParseTime.
std::optional<absl::Time> ParseCommonForm(absl::string_view s) {
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  int64_t y, mo, d, h, mi, sec, micros = 0;
  if (!ReadDigits(s, 0, 4, &y) || !ReadDigits(s, 5, 2, &mo) || !ReadDigits(s, 8, 2, &d) ||
      !ReadDigits(s, 11, 2, &h) || !ReadDigits(s, 14, 2, &mi) || !ReadDigits(s, 17, 2, &sec)) {
    return std::nullopt;
  }
  if (s.size() > 19) {
    const size_t digits = s.size() - 20;
    if (s[19] != '.' || digits < 1 || digits > 6 || !ReadDigits(s, 20, digits, &micros)) {
      return std::nullopt;
    }
    for (size_t i = digits; i < 6; ++i) micros *= 10;
  }
  const absl::CivilDay day(y, static_cast<int>(mo), static_cast<int>(d));
  if (day.month() != mo || day.day() != d || h > 23 || mi > 59 || sec > 59) return std::nullopt;
  const int64_t days = day - absl::CivilDay(1970, 1, 1);
  return absl::FromUnixSeconds(days * 86400 + h * 3600 + mi * 60 + sec) +
         absl::Microseconds(micros);
}

}  // namespace

absl::StatusOr<std::optional<absl::Time>> OptionalPgTimestamp(const Rows& rows, size_t row,
                                                              absl::string_view column) {
  const Param& value = rows.Get(row, column);
  if (!value) return std::optional<absl::Time>();
  absl::StatusOr<absl::Time> t = ParsePgTimestamp(*value);
  if (!t.ok()) return t.status();
  return std::optional<absl::Time>(*t);
}

std::string MillisParam(absl::Duration d) { return absl::StrCat(absl::ToInt64Milliseconds(d)); }

absl::StatusOr<absl::Time> ParsePgTimestamp(absl::string_view text) {
  absl::string_view body = text;
  if (body.size() > 3 && body.substr(body.size() - 3) == "+00") body.remove_suffix(3);
  if (std::optional<absl::Time> t = ParseCommonForm(body)) return *t;
  absl::Time t;
  std::string err;
  if (!absl::ParseTime("%Y-%m-%d %H:%M:%E*S", std::string(body), absl::UTCTimeZone(), &t, &err)) {
    return absl::InternalError(absl::StrCat("unexpected timestamp from the database: ", text));
  }
  return t;
}

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }

}  // namespace approvald::db::pg
