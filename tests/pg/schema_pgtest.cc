// Migrations and the schema's own guarantees, on a real PostgreSQL.

#include <gtest/gtest.h>

#include "db/migrations.h"
#include "db/pg/migrator.h"
#include "tests/testing/pg_fixture.h"
#include "tests/testing/status_matchers.h"

namespace approvald::testing {
namespace {

TEST(MigratorTest, MigratedDatabaseIsCurrentAndMigrateIsIdempotent) {
  auto db = TestDatabase::Create();
  ASSERT_NE(db, nullptr);
  auto conn = db->Connect();
  ASSERT_NE(conn, nullptr);
  EXPECT_OK(db::pg::CheckSchema(*conn, db::Migrations()));
  ASSERT_OK_AND_ASSIGN(int applied, db::pg::Migrate(*conn, db::Migrations()));
  EXPECT_EQ(applied, 0);
  ASSERT_OK_AND_ASSIGN(int version, db::pg::SchemaVersion(*conn));
  EXPECT_EQ(version, db::Migrations().back().version);
}

TEST(MigratorTest, RefusesASchemaNewerThanTheBinary) {
  auto db = TestDatabase::Create();
  ASSERT_NE(db, nullptr);
  db->Scalar(
      "INSERT INTO approvald.schema_migrations (version, name) VALUES (9999, 'from_the_future')");
  auto conn = db->Connect();
  EXPECT_CODE(db::pg::CheckSchema(*conn, db::Migrations()), absl::StatusCode::kFailedPrecondition);
  EXPECT_CODE(db::pg::Migrate(*conn, db::Migrations()), absl::StatusCode::kFailedPrecondition);
}

TEST(MigratorTest, EmptyDatabaseIsMigratedFromScratch) {
  auto db = TestDatabase::Create();
  ASSERT_NE(db, nullptr);
  auto admin = db->Connect();
  ASSERT_OK(admin->ExecScript("CREATE DATABASE approvald_empty_" + std::to_string(getpid())));
  auto conn = db::pg::PgConnection::Connect(DsnFor("approvald_empty_" + std::to_string(getpid())));
  ASSERT_OK(conn);
  EXPECT_CODE(db::pg::CheckSchema(**conn, db::Migrations()), absl::StatusCode::kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(int applied, db::pg::Migrate(**conn, db::Migrations()));
  EXPECT_EQ(applied, static_cast<int>(db::Migrations().size()));
  EXPECT_OK(db::pg::CheckSchema(**conn, db::Migrations()));
  conn->reset();
  EXPECT_OK(admin->ExecScript("DROP DATABASE approvald_empty_" + std::to_string(getpid()) +
                              " WITH (FORCE)"));
}

class SchemaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    ASSERT_NE(db_, nullptr);
    conn_ = db_->Connect();
    ASSERT_NE(conn_, nullptr);
    id_ = db_->Scalar(
        "INSERT INTO approvald.approvals (action_type, requested_by, expires_at) "
        "VALUES ('noop', 'agent', now() + interval '1 hour') RETURNING id");
    ASSERT_FALSE(id_.empty());
  }
  absl::Status Exec(const std::string& sql) { return conn_->ExecScript(sql); }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<db::pg::PgConnection> conn_;
  std::string id_;
};

TEST_F(SchemaTest, CheckConstraintsRejectInconsistentRows) {
  const std::string where = " WHERE id = '" + id_ + "'";
  // approved without decided_by / executed_at
  absl::Status st = Exec("UPDATE approvald.approvals SET status = 'approved'" + where);
  EXPECT_CODE(st, absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("23514"), absl::string_view::npos) << st;
  // rejected without a reason
  EXPECT_CODE(Exec("UPDATE approvald.approvals SET status = 'rejected', decided_by = 'bob', "
                   "decided_at = now()" +
                   where),
              absl::StatusCode::kFailedPrecondition);
  // rejected but executed
  EXPECT_CODE(Exec("UPDATE approvald.approvals SET status = 'rejected', decided_by = 'bob', "
                   "decided_at = now(), decision_reason = 'no', executed_at = now()" +
                   where),
              absl::StatusCode::kFailedPrecondition);
  // pending with decision fields
  EXPECT_CODE(Exec("UPDATE approvald.approvals SET decided_by = 'bob'" + where),
              absl::StatusCode::kFailedPrecondition);
  // cancelled by someone other than the requester
  EXPECT_CODE(Exec("UPDATE approvald.approvals SET status = 'cancelled', decided_by = 'bob', "
                   "decided_at = now()" +
                   where),
              absl::StatusCode::kFailedPrecondition);
  // failed without an error
  EXPECT_CODE(Exec("UPDATE approvald.approvals SET status = 'failed', decided_by = 'bob', "
                   "decided_at = now()" +
                   where),
              absl::StatusCode::kFailedPrecondition);
  // unknown status
  EXPECT_CODE(Exec("UPDATE approvald.approvals SET status = 'maybe'" + where),
              absl::StatusCode::kFailedPrecondition);
  // A consistent decision is accepted.
  EXPECT_OK(
      Exec("UPDATE approvald.approvals SET status = 'approved', decided_by = 'bob', "
           "decided_at = now(), executed_at = now()" +
           where));
}

TEST_F(SchemaTest, EventsAreAppendOnly) {
  EXPECT_OK(Exec("INSERT INTO approvald.events (approval_id, type, actor, version) VALUES ('" +
                 id_ + "', 'created', 'agent', 1)"));
  EXPECT_FALSE(Exec("UPDATE approvald.events SET actor = 'mallory'").ok());
  EXPECT_FALSE(Exec("DELETE FROM approvald.events").ok());
}

// An event that would sort below one already in the log for the same approval (its transaction
// took its id before another committed a newer event) is a serialization failure, which
// approvald retries as a new transaction: one approval's events stay in the order they
// happened. Events of other approvals are not concerned.
TEST_F(SchemaTest, AnApprovalsEventsCannotBeWrittenOutOfOrder) {
  auto event = [&](const std::string& approval, const std::string& id) {
    return Exec("INSERT INTO approvald.events (id, approval_id, type, actor, version) VALUES (" +
                id + ", '" + approval + "', 'voted', 'bob', 2)");
  };
  EXPECT_OK(event(id_, "(pg_current_xact_id()::text::bigint + 1000) << 16"));
  EXPECT_CODE(event(id_, "DEFAULT"), absl::StatusCode::kAborted);  // 40001: retried
  const std::string other = db_->Scalar(
      "INSERT INTO approvald.approvals (action_type, requested_by, expires_at) "
      "VALUES ('noop', 'agent', now() + interval '1 hour') RETURNING id");
  EXPECT_OK(event(other, "DEFAULT"));
  EXPECT_OK(event(id_, "((pg_current_xact_id()::text::bigint + 1000) << 16) + 1"));
}

TEST_F(SchemaTest, IdempotencyKeyIsUniquePerRequester) {
  EXPECT_OK(Exec("UPDATE approvald.approvals SET idempotency_key = 'k' WHERE id = '" + id_ + "'"));
  EXPECT_CODE(Exec("INSERT INTO approvald.approvals (action_type, requested_by, idempotency_key, "
                   "expires_at) VALUES ('noop', 'agent', 'k', now() + interval '1 hour')"),
              absl::StatusCode::kAlreadyExists);
  EXPECT_OK(
      Exec("INSERT INTO approvald.approvals (action_type, requested_by, idempotency_key, "
           "expires_at) VALUES ('noop', 'other', 'k', now() + interval '1 hour')"));
}

}  // namespace
}  // namespace approvald::testing
