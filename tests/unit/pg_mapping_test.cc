#include <gtest/gtest.h>

#include <string>

#include "absl/time/civil_time.h"
#include "db/pg/pg_error.h"
#include "db/pg/pg_time.h"
#include "tests/testing/status_matchers.h"

namespace approvald::db::pg {
namespace {

TEST(PgErrorTest, SqlStateTable) {
  struct Case {
    const char* state;
    absl::StatusCode code;
  } cases[] = {
      {"40001", absl::StatusCode::kAborted},
      {"40P01", absl::StatusCode::kAborted},
      {"55P03", absl::StatusCode::kAborted},
      {"57014", absl::StatusCode::kDeadlineExceeded},
      {"23505", absl::StatusCode::kAlreadyExists},
      {"23503", absl::StatusCode::kFailedPrecondition},
      {"23514", absl::StatusCode::kFailedPrecondition},
      {"23502", absl::StatusCode::kFailedPrecondition},
      {"08006", absl::StatusCode::kUnavailable},
      {"57P01", absl::StatusCode::kUnavailable},
      {"53300", absl::StatusCode::kUnavailable},
      {"25006", absl::StatusCode::kUnavailable},
      {"P0001", absl::StatusCode::kFailedPrecondition},
      {"42601", absl::StatusCode::kInternal},
  };
  for (const Case& c : cases) EXPECT_EQ(CodeForSqlState(c.state), c.code) << c.state;
}

TEST(PgErrorTest, TransientMark) {
  absl::Status st = absl::AbortedError("deadlock");
  EXPECT_FALSE(IsTransient(st));
  EXPECT_TRUE(IsTransient(MarkTransient(st)));
}

TEST(PgTimeTest, ParsesSessionFormat) {
  ASSERT_OK_AND_ASSIGN(absl::Time t, ParsePgTimestamp("2026-11-28 00:45:49.123456+00"));
  EXPECT_EQ(ToMicros(t), 1795826749123456);
  ASSERT_OK_AND_ASSIGN(absl::Time whole, ParsePgTimestamp("2026-11-28 00:45:49+00"));
  EXPECT_EQ(ToMicros(whole), 1795826749000000);
  EXPECT_FALSE(ParsePgTimestamp("yesterday").ok());
}

TEST(PgTimeTest, TheFastPathAgreesWithAbslParseTime) {
  // Shorter fractions, a leap day, the epoch, before it, and far ahead.
  for (const std::string text :
       {"2026-11-28 00:45:49.5", "2024-02-29 23:59:59.000001", "1970-01-01 00:00:00",
        "1969-12-31 23:59:59.999999", "0001-01-01 00:00:00", "9999-12-31 23:59:59.12"}) {
    absl::Time want;
    std::string err;
    ASSERT_TRUE(absl::ParseTime("%Y-%m-%d %H:%M:%E*S", text, absl::UTCTimeZone(), &want, &err));
    ASSERT_OK_AND_ASSIGN(absl::Time got, ParsePgTimestamp(text + "+00"));
    EXPECT_EQ(got, want) << text;
  }
  // Not a date: refused, not normalised into another one.
  EXPECT_FALSE(ParsePgTimestamp("2026-02-30 00:00:00+00").ok());
  EXPECT_FALSE(ParsePgTimestamp("2026-11-28 24:00:00+00").ok());
  EXPECT_FALSE(ParsePgTimestamp("2026-11-28 00:45:49.+00").ok());
  // Outside the common form: still read (a year past 9999).
  ASSERT_OK_AND_ASSIGN(absl::Time far, ParsePgTimestamp("12026-11-28 00:45:49+00"));
  EXPECT_GT(far, absl::FromCivil(absl::CivilSecond(9999, 12, 31), absl::UTCTimeZone()));
}

}  // namespace
}  // namespace approvald::db::pg
