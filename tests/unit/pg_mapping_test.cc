#include <gtest/gtest.h>

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

}  // namespace
}  // namespace approvald::db::pg
