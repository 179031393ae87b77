// PgTx's two forms of a transaction: one statement (ExecAndCommit first) goes alone, as
// PostgreSQL's implicit transaction, whatever its deadline; more go between BEGIN and COMMIT.
// Both commit what succeeded and nothing else. A deadline shorter than the session's bound
// costs no statement: what still runs when it passes is cancelled.

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

TEST_F(PgTxTest, OneStatementGoesOutAloneWithoutBeginOnAnyDeadline) {
  EXPECT_OK(Alone(kVacuum, {}, SessionBound()));
  EXPECT_OK(Alone(kVacuum, {}, absl::InfiniteFuture()));
  EXPECT_OK(Alone(kVacuum, {}, Shorter()));
}

TEST_F(PgTxTest, TwoStatementsRunBetweenBeginAndCommit) {
  ASSERT_OK_AND_ASSIGN(auto tx, db::pg::PgTx::Begin(*conn_, Shorter()));
  ASSERT_OK(tx->Exec(kInsert, {"1"}));
  absl::StatusOr<db::Rows> vacuum = tx->ExecAndCommit(kVacuum, {});
  ASSERT_FALSE(vacuum.ok());
  EXPECT_NE(vacuum.status().message().find("transaction block"), absl::string_view::npos)
      << vacuum.status();
  tx.reset();
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM tx_rows"), "0");  // rolled back
  EXPECT_TRUE(conn_->reusable());
}

TEST_F(PgTxTest, AShortDeadlineCancelsALockWaitAndRetiresTheConnection) {
  ASSERT_OK(conn_->Exec(kInsert, {"5"}));
  std::unique_ptr<db::pg::PgConnection> holder = db_->Connect();
  ASSERT_OK(holder->ExecScript("BEGIN; SELECT * FROM tx_rows FOR UPDATE"));
  constexpr db::Query kUpdate{"pg_tx_update", "UPDATE tx_rows SET n = n + 1 RETURNING n"};
  const absl::Time start = absl::Now();
  absl::StatusOr<db::Rows> updated = Alone(kUpdate, {}, absl::Now() + absl::Seconds(1));
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(updated.status().code(), absl::StatusCode::kDeadlineExceeded) << updated.status();
  EXPECT_GE(took, absl::Seconds(1));
  EXPECT_LT(took, absl::Seconds(20));  // the deadline ended it, not the session's 30 s bound
  // The server stopped waiting: nothing waits for the holder's lock.
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database()"),
            "0");
  // A cancel request could still be on its way to this session: it is not used again.
  EXPECT_FALSE(conn_->reusable());
  EXPECT_EQ(conn_->Exec(kInsert, {"6"}).status().code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_OK(holder->ExecScript("COMMIT"));
  EXPECT_EQ(db_->Scalar("SELECT string_agg(n::text, ',') FROM tx_rows"), "5");
}

TEST_F(PgTxTest, EitherFormCommitsWhatSucceededAndNothingThatFailed) {
  for (const bool shorter : {false, true}) {
    SCOPED_TRACE(shorter ? "a watched deadline" : "the session's bound");
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
