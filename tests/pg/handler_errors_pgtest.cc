// The handler error contract of handlers/action_handler.h, one code at a time: which codes leave
// the approval pending (the transaction rolled back, the caller told that code) and which make
// it FAILED (the handler's writes rolled back, EXECUTION_FAILED).

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "db/errors.h"
#include "db/pg/connection_pool.h"
#include "db/pg/pg_approval_store.h"
#include "tests/testing/pg_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_rules.h"

namespace approvald::testing {
namespace {

constexpr db::Query kEffect{"handler_errors_effect",
                            "INSERT INTO handler_errors_effects (approval_id) VALUES ($1::uuid)"};

class HandlerErrorsTest : public ::testing::TestWithParam<absl::StatusCode> {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    ASSERT_NE(db_, nullptr);
    ASSERT_OK(db_->Connect()->ExecScript(
        "CREATE TABLE handler_errors_effects (approval_id uuid NOT NULL)"));
    pool_ = std::make_unique<db::pg::ConnectionPool>(db_->dsn(), 2);
    store_ = std::make_unique<db::pg::PgApprovalStore>(*pool_);
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<db::pg::ConnectionPool> pool_;
  std::unique_ptr<db::pg::PgApprovalStore> store_;
};

TEST_P(HandlerErrorsTest, TheCodeDecidesPendingOrFailed) {
  const absl::StatusCode code = GetParam();
  const bool not_now =
      code == absl::StatusCode::kAborted || code == absl::StatusCode::kUnavailable ||
      code == absl::StatusCode::kDeadlineExceeded || code == absl::StatusCode::kCancelled;
  db::CreateInput create;
  create.action_type = "effect";
  create.requested_by = "agent";
  ASSERT_OK_AND_ASSIGN(db::CreateResult created, store_->Create(create));
  const std::string id = created.approval.id;

  db::DecideInput in;
  in.id = id;
  in.actor = "alice";
  in.deadline = absl::Now() + absl::Seconds(10);
  int runs = 0;
  const TestRules rules(
      [&](db::Tx& tx, const db::ApprovalRecord& a) -> absl::StatusOr<std::string> {
        ++runs;
        if (absl::Status st = tx.Exec(kEffect, {a.id}).status(); !st.ok()) return st;
        return absl::Status(code, "the action says no");
      });
  absl::StatusOr<db::ApprovalRecord> decided = store_->Decide(in, rules);
  EXPECT_EQ(runs, 1);  // a handler's own "not now" is the caller's to retry, not the store's
  const std::string row = db_->Scalar(
      "SELECT status || ' v' || version || ' ' || coalesce(execution_error, '-') || ' effects ' ||"
      " (SELECT count(*) FROM handler_errors_effects) FROM approvald.approvals WHERE id = '" +
      id + "'");
  if (not_now) {
    EXPECT_EQ(decided.status().code(), code) << decided.status();
    EXPECT_EQ(row, "pending v1 - effects 0");
  } else {
    EXPECT_EQ(decided.status().code(), absl::StatusCode::kFailedPrecondition) << decided.status();
    EXPECT_EQ(db::GetReason(decided.status()), approvals::v1::EXECUTION_FAILED);
    EXPECT_EQ(row, "failed v2 the action says no effects 0");
  }
}

INSTANTIATE_TEST_SUITE_P(
    EveryCode, HandlerErrorsTest,
    ::testing::Values(absl::StatusCode::kCancelled, absl::StatusCode::kUnknown,
                      absl::StatusCode::kInvalidArgument, absl::StatusCode::kDeadlineExceeded,
                      absl::StatusCode::kNotFound, absl::StatusCode::kAlreadyExists,
                      absl::StatusCode::kPermissionDenied, absl::StatusCode::kResourceExhausted,
                      absl::StatusCode::kFailedPrecondition, absl::StatusCode::kAborted,
                      absl::StatusCode::kOutOfRange, absl::StatusCode::kUnimplemented,
                      absl::StatusCode::kInternal, absl::StatusCode::kUnavailable,
                      absl::StatusCode::kDataLoss, absl::StatusCode::kUnauthenticated),
    [](const ::testing::TestParamInfo<absl::StatusCode>& info) {
      std::string name = absl::StatusCodeToString(info.param);
      name.erase(std::remove(name.begin(), name.end(), '_'), name.end());
      return name;
    });

}  // namespace
}  // namespace approvald::testing
