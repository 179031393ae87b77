// PgTx's two forms of a transaction that is one statement (ExecAndCommit first): alone, as
// PostgreSQL's implicit transaction, on a deadline the session's bound serves; between BEGIN,
// its own timeouts and COMMIT on a shorter one. Both commit what succeeded and nothing else.

#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "db/pg/pg_connection.h"
#include "db/pg/pg_tx.h"
#include "tests/testing/pg_fixture.h"
#include "tests/testing/status_matchers.h"

namespace approvald::testing {
namespace {

// VACUUM refuses to run inside a transaction block: it tells the two forms apart.
constexpr db::Query kVacuum{"", "VACUUM tx_rows"};
constexpr db::Query kInsert{"pg_tx_insert", "INSERT INTO tx_rows (n) VALUES ($1::int) RETURNING n"};

class PgTxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    ASSERT_NE(db_, nullptr);
    conn_ = db_->Connect();
    ASSERT_NE(conn_, nullptr);
    ASSERT_OK(conn_->ExecScript("CREATE TABLE tx_rows (n int NOT NULL CHECK (n > 0))"));
  }

  // One transaction that is `query` alone, on `deadline`.
  absl::StatusOr<db::Rows> Alone(const db::Query& query, const db::Params& params,
                                 absl::Time deadline) {
    absl::StatusOr<std::unique_ptr<db::pg::PgTx>> tx = db::pg::PgTx::Begin(*conn_, deadline);
    if (!tx.ok()) return tx.status();
    return (*tx)->ExecAndCommit(query, params);
  }

  static absl::Time SessionBound() { return absl::Now() + absl::Seconds(30); }
  static absl::Time Shorter() { return absl::Now() + absl::Seconds(5); }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<db::pg::PgConnection> conn_;
};

TEST_F(PgTxTest, OnTheSessionsBoundTheStatementGoesOutAloneWithoutBegin) {
  EXPECT_OK(Alone(kVacuum, {}, SessionBound()));
  EXPECT_OK(Alone(kVacuum, {}, absl::InfiniteFuture()));
}

TEST_F(PgTxTest, OnAShorterDeadlineItRunsBetweenBeginAndCommit) {
  absl::StatusOr<db::Rows> vacuum = Alone(kVacuum, {}, Shorter());
  ASSERT_FALSE(vacuum.ok());
  EXPECT_NE(vacuum.status().message().find("transaction block"), absl::string_view::npos)
      << vacuum.status();
  // The failed transaction was rolled back: the connection goes on.
  EXPECT_OK(Alone(kInsert, {"1"}, Shorter()));
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM tx_rows"), "1");
}

TEST_F(PgTxTest, EitherFormCommitsWhatSucceededAndNothingThatFailed) {
  for (const bool shorter : {false, true}) {
    SCOPED_TRACE(shorter ? "between BEGIN and COMMIT" : "alone");
    const absl::Time deadline = shorter ? Shorter() : SessionBound();
    const std::string before = db_->Scalar("SELECT count(*) FROM tx_rows");
    absl::StatusOr<db::Rows> inserted = Alone(kInsert, {"7"}, deadline);
    ASSERT_OK(inserted);
    EXPECT_EQ(inserted->size(), 1u);
    // Seen from another connection at once: committed.
    EXPECT_EQ(db_->Scalar("SELECT count(*) FROM tx_rows"), std::to_string(std::stoi(before) + 1));
    absl::StatusOr<db::Rows> refused = Alone(kInsert, {"-1"}, deadline);  // the CHECK fails
    EXPECT_FALSE(refused.ok());
    EXPECT_FALSE(conn_->broken());
    EXPECT_EQ(db_->Scalar("SELECT count(*) FROM tx_rows"), std::to_string(std::stoi(before) + 1));
    // Nothing is left open on the connection: a statement after it runs and commits alone.
    ASSERT_OK(conn_->Exec(kInsert, {"8"}));
    EXPECT_EQ(db_->Scalar("SELECT count(*) FROM tx_rows"), std::to_string(std::stoi(before) + 2));
  }
}

}  // namespace
}  // namespace approvald::testing
