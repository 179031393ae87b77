// A COMMIT lost with its connection: the decision's outcome is settled and read back, never
// guessed and never re-run. A TCP proxy loses one COMMIT either after the server ran it (the
// reply is lost) or before (the COMMIT is lost).

#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "absl/strings/numbers.h"
#include "db/errors.h"
#include "db/pg/commit_pipeline.h"
#include "db/pg/connection_pool.h"
#include "db/pg/pg_approval_store.h"
#include "tests/testing/commit_cutting_proxy.h"
#include "tests/testing/pg_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_rules.h"

namespace approvald::testing {
namespace {

using Cut = CommitCuttingProxy::Cut;

constexpr db::Query kEffect{"lost_commit_effect",
                            "INSERT INTO lost_commit_effects (approval_id) VALUES ($1::uuid)"};

class LostCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    ASSERT_NE(db_, nullptr);
    ASSERT_OK(
        db_->Connect()->ExecScript("CREATE TABLE lost_commit_effects (approval_id uuid NOT NULL)"));
    const std::string dsn = db_->dsn();
    const size_t at = dsn.find("port=");
    int port = 0;
    ASSERT_NE(at, std::string::npos) << dsn;
    ASSERT_TRUE(absl::SimpleAtoi(dsn.substr(at + 5, dsn.find(' ', at) - at - 5), &port)) << dsn;
    proxy_ = CommitCuttingProxy::Start("127.0.0.1", port);
    ASSERT_NE(proxy_, nullptr);
    pool_ = std::make_unique<db::pg::ConnectionPool>(
        dsn + " host=127.0.0.1 port=" + std::to_string(proxy_->port()), 4);
    store_ = std::make_unique<db::pg::PgApprovalStore>(*pool_);
  }

  std::string Create(const std::string& requester = "agent") {
    db::CreateInput in;
    in.action_type = "effect";
    in.requested_by = requester;
    auto created = store_->Create(in);
    EXPECT_OK(created);
    return created.ok() ? created->approval.id : "";
  }

  absl::StatusOr<db::ApprovalRecord> Decide(const std::string& id, db::Decision decision,
                                            std::optional<std::string> request_id = {},
                                            bool fail = false) {
    db::DecideInput in;
    in.decision = decision;
    in.id = id;
    in.actor = "alice";
    in.reason = "because";
    in.request_id = std::move(request_id);
    in.deadline = absl::Now() + absl::Seconds(10);
    const TestRules rules(
        [&](db::Tx& tx, const db::ApprovalRecord& a) -> absl::StatusOr<std::string> {
          executions_.fetch_add(1);
          if (absl::Status st = tx.Exec(kEffect, {a.id}).status(); !st.ok()) return st;
          if (fail) return absl::FailedPreconditionError("insufficient funds");
          return std::string("{}");
        });
    absl::StatusOr<db::ApprovalRecord> decided = store_->Decide(in, rules);
    changed_ = rules.changes() > 0;
    return decided;
  }

  static db::DecideInput AtOnceInput(const std::string& id, db::Decision decision) {
    db::DecideInput in;
    in.decision = decision;
    in.id = id;
    in.actor = "alice";
    in.reason = "because";
    in.deadline = absl::Now() + absl::Seconds(30);  // the server's default: no timeouts of its own
    return in;
  }

  // A decision in one statement (DecisionRules::AtOnce), as approvald makes one for a noop type.
  absl::StatusOr<db::ApprovalRecord> DecideAtOnce(const std::string& id,
                                                  db::Decision decision = db::Decision::kApprove) {
    const db::DecideInput in = AtOnceInput(id, decision);
    const TestRules rules(
        [&](db::Tx&, const db::ApprovalRecord&) -> absl::StatusOr<std::string> {
          executions_.fetch_add(1);  // the full path's; never wanted here
          return std::string("{}");
        },
        decision == db::Decision::kCancel
            ? db::DecideAtOnce{{}, {}, true, ""}
            : db::DecideAtOnce{{}, {"effect"}, false, R"({"effect": {"ok": true}})"});
    absl::StatusOr<db::ApprovalRecord> decided = store_->Decide(in, rules);
    changed_ = rules.changes() > 0;
    return decided;
  }

  std::string Row(const std::string& id) {
    return db_->Scalar(
        "SELECT status || ' v' || version || ' effects ' || (SELECT count(*) "
        "FROM lost_commit_effects WHERE approval_id = a.id) FROM approvald.approvals a "
        "WHERE id = '" +
        id + "'");
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<CommitCuttingProxy> proxy_;
  std::unique_ptr<db::pg::ConnectionPool> pool_;
  std::unique_ptr<db::pg::PgApprovalStore> store_;
  std::atomic<int> executions_{0};
  bool changed_ = false;  ///< the last Decide reported a change (not a repeated answer)
};

TEST_F(LostCommitTest, ApproveWhoseReplyIsLostAnswersTheCommittedApproval) {
  const std::string id = Create();
  proxy_->Arm(Cut::kReplyLost);
  auto approved = Decide(id, db::Decision::kApprove);
  EXPECT_EQ(proxy_->cuts(), 1);
  ASSERT_OK(approved);
  EXPECT_EQ(approved->status, "approved");
  EXPECT_EQ(approved->version, 2);
  EXPECT_EQ(Row(id), "approved v2 effects 1");
  EXPECT_EQ(executions_.load(), 1);  // read back, never re-run
}

TEST_F(LostCommitTest, ApproveWhoseCommitIsLostChangesNothingAndIsRetryable) {
  const std::string id = Create();
  proxy_->Arm(Cut::kCommitLost);
  auto lost = Decide(id, db::Decision::kApprove);
  EXPECT_EQ(proxy_->cuts(), 1);
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  EXPECT_EQ(Row(id), "pending v1 effects 0");
  auto retried = Decide(id, db::Decision::kApprove);
  ASSERT_OK(retried);
  EXPECT_EQ(Row(id), "approved v2 effects 1");
}

TEST_F(LostCommitTest, RequestIdReplaysTheLostCallsAnswer) {
  const std::string id = Create();
  proxy_->Arm(Cut::kReplyLost);
  auto approved = Decide(id, db::Decision::kApprove, "req-1");
  ASSERT_OK(approved);
  EXPECT_EQ(approved->status, "approved");
  EXPECT_TRUE(changed_);  // read back after the lost reply, but this call's own commit
  auto again = Decide(id, db::Decision::kApprove, "req-1");
  ASSERT_OK(again);
  EXPECT_FALSE(changed_);  // the repeat changed nothing (metrics must not count it again)
  EXPECT_EQ(Row(id), "approved v2 effects 1");
  EXPECT_EQ(executions_.load(), 1);

  const std::string other = Create();
  proxy_->Arm(Cut::kCommitLost);
  EXPECT_EQ(Decide(other, db::Decision::kReject, "req-2").status().code(),
            absl::StatusCode::kUnavailable);
  auto rejected = Decide(other, db::Decision::kReject, "req-2");
  ASSERT_OK(rejected);
  EXPECT_EQ(rejected->status, "rejected");
  EXPECT_TRUE(changed_);  // the lost commit changed nothing; the retry decided
}

TEST_F(LostCommitTest, FailedActionWhoseReplyIsLostStillAnswersExecutionFailed) {
  const std::string id = Create();
  proxy_->Arm(Cut::kReplyLost);
  auto failed = Decide(id, db::Decision::kApprove, std::nullopt, /*fail=*/true);
  EXPECT_EQ(proxy_->cuts(), 1);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kFailedPrecondition) << failed.status();
  EXPECT_NE(failed.status().message().find("insufficient funds"), absl::string_view::npos);
  EXPECT_EQ(Row(id), "failed v2 effects 0");
}

TEST_F(LostCommitTest, ADecisionAtOnceWhoseReplyIsLostAnswersTheCommittedApproval) {
  const std::string id = Create();
  proxy_->Arm(Cut::kReplyLost, "decide_at_once");  // its own transaction
  auto approved = DecideAtOnce(id);
  EXPECT_EQ(proxy_->cuts(), 1);
  ASSERT_OK(approved);
  EXPECT_EQ(approved->status, "approved");
  EXPECT_EQ(approved->version, 2);
  EXPECT_EQ(approved->execution_result_json, R"({"ok": true})");
  EXPECT_TRUE(changed_);
  EXPECT_EQ(Row(id), "approved v2 effects 0");
  EXPECT_EQ(executions_.load(), 0);  // read back: no second decision, no handler
}

TEST_F(LostCommitTest, ADecisionAtOnceWhoseCommitIsLostChangesNothingAndIsRetryable) {
  const std::string id = Create();
  proxy_->Arm(Cut::kCommitLost, "decide_at_once");
  auto lost = DecideAtOnce(id);
  EXPECT_EQ(proxy_->cuts(), 1);
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  EXPECT_EQ(Row(id), "pending v1 effects 0");
  ASSERT_OK(DecideAtOnce(id));
  EXPECT_EQ(Row(id), "approved v2 effects 0");
  EXPECT_EQ(executions_.load(), 0);
}

// A principal that repeats its own decision, without a request id: the repeat changed nothing,
// so it must never be told OK, even when its reply is lost (its statement commits alone and
// decides nothing). Only the call's own token, written with a decision, makes it the call's.
class LostRepeatTest : public LostCommitTest, public ::testing::WithParamInterface<db::Decision> {
 protected:
  // Cancel: the requester's own approval; approve and reject: another's (as at_once allows).
  std::string CreateToDecide() {
    return Create(GetParam() == db::Decision::kCancel ? "alice" : "agent");
  }
};

TEST_P(LostRepeatTest, ARepeatedDecisionWhoseReplyIsLostIsAlreadyProcessed) {
  const std::string id = CreateToDecide();
  ASSERT_OK(DecideAtOnce(id, GetParam()));
  const std::string decided = Row(id);
  EXPECT_EQ(db::GetReason(DecideAtOnce(id, GetParam()).status()), approvals::v1::ALREADY_PROCESSED);
  proxy_->Arm(Cut::kReplyLost, "decide_at_once");
  absl::StatusOr<db::ApprovalRecord> repeat = DecideAtOnce(id, GetParam());
  EXPECT_EQ(proxy_->cuts(), 1);
  EXPECT_EQ(db::GetReason(repeat.status()), approvals::v1::ALREADY_PROCESSED) << repeat.status();
  EXPECT_EQ(Row(id), decided);
}

TEST_P(LostRepeatTest, AFirstDecisionWhoseReplyIsLostIsStillOk) {
  const std::string id = CreateToDecide();
  proxy_->Arm(Cut::kReplyLost, "decide_at_once");
  absl::StatusOr<db::ApprovalRecord> decided = DecideAtOnce(id, GetParam());
  EXPECT_EQ(proxy_->cuts(), 1);
  ASSERT_OK(decided);
  EXPECT_EQ(decided->version, 2);
}

INSTANTIATE_TEST_SUITE_P(Decisions, LostRepeatTest,
                         ::testing::Values(db::Decision::kApprove, db::Decision::kReject,
                                           db::Decision::kCancel),
                         [](const ::testing::TestParamInfo<db::Decision>& info) {
                           switch (info.param) {
                             case db::Decision::kApprove:
                               return "Approve";
                             case db::Decision::kReject:
                               return "Reject";
                             case db::Decision::kCancel:
                               return "Cancel";
                           }
                           return "Unknown";
                         });

// A create is its insert alone (PostgreSQL's implicit transaction) on any deadline: on the
// session's bound, or on a shorter one that the deadline watch guards; both are lost and
// settled alike.
class LostCreateTest : public LostCommitTest, public ::testing::WithParamInterface<bool> {
 protected:
  bool ShortDeadline() const { return GetParam(); }
  const char* Committing() const { return "insert_approval"; }
  db::CreateInput Input() const {
    db::CreateInput in;
    in.action_type = "effect";
    in.requested_by = "agent";
    if (ShortDeadline()) in.deadline = absl::Now() + absl::Seconds(10);
    return in;
  }
};

TEST_P(LostCreateTest, CreateWhoseReplyIsLostReturnsTheApproval) {
  proxy_->Arm(Cut::kReplyLost, Committing());
  auto created = store_->Create(Input());
  EXPECT_EQ(proxy_->cuts(), 1);
  ASSERT_OK(created);
  EXPECT_TRUE(created->created);
  EXPECT_EQ(Row(created->approval.id), "pending v1 effects 0");
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM approvald.approvals"), "1");
}

TEST_P(LostCreateTest, CreateWhoseCommitIsLostCreatesNothingAndIsRetryable) {
  proxy_->Arm(Cut::kCommitLost, Committing());
  auto lost = store_->Create(Input());
  EXPECT_EQ(proxy_->cuts(), 1);
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM approvald.approvals"), "0");
  EXPECT_OK(store_->Create(Input()));
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM approvald.approvals"), "1");
}

INSTANTIATE_TEST_SUITE_P(DeadlineForms, LostCreateTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "WatchedDeadline" : "SessionBound";
                         });

// The started forms (StartCreate, StartDecideAtOnce through a CommitPipeline), completed as the
// service completes them: a settle runs where blocking is allowed, nullopt takes the blocking
// call.
class StartedLostCommitTest : public LostCommitTest {
 protected:
  void SetUp() override {
    LostCommitTest::SetUp();
    pipeline_ = std::make_unique<db::pg::CommitPipeline>(*pool_, 1);
    store_->SetPipeline(pipeline_.get());
  }
  void TearDown() override { pipeline_->Shutdown(); }

  template <typename T, typename StartFn, typename BlockingFn>
  static absl::StatusOr<T> Complete(StartFn start, BlockingFn blocking) {
    auto promise = std::make_shared<std::promise<db::AsyncOutcome<T>>>();
    std::future<db::AsyncOutcome<T>> f = promise->get_future();
    if (!start([promise](db::AsyncOutcome<T> out) { promise->set_value(std::move(out)); })) {
      return absl::InternalError("not started");
    }
    db::AsyncOutcome<T> out = f.get();
    if (out.settle) return out.settle();
    if (!out.result.ok()) return out.result.status();
    if (!out.result->has_value()) return blocking();
    return **std::move(out.result);
  }

  absl::StatusOr<db::ApprovalRecord> StartDecide(const std::string& id) {
    const db::DecideAtOnce once{{}, {"effect"}, false, R"({"effect": {"ok": true}})"};
    return Complete<db::ApprovalRecord>(
        [&](db::AsyncDone<db::ApprovalRecord> done) {
          return store_->StartDecideAtOnce(AtOnceInput(id, db::Decision::kApprove), once,
                                           std::move(done));
        },
        [&] { return DecideAtOnce(id); });
  }

  absl::StatusOr<db::CreateResult> StartCreate() {
    db::CreateInput in;
    in.action_type = "effect";
    in.requested_by = "agent";
    in.deadline = absl::Now() + absl::Seconds(10);
    return Complete<db::CreateResult>(
        [&](db::AsyncDone<db::CreateResult> done) {
          return store_->StartCreate(in, std::move(done));
        },
        [&] { return store_->Create(in); });
  }

  std::unique_ptr<db::pg::CommitPipeline> pipeline_;
};

TEST_F(StartedLostCommitTest, ADecisionWhoseReplyIsLostAnswersTheCommittedApproval) {
  const std::string id = Create();
  proxy_->Arm(Cut::kReplyLost, "decide_at_once");
  auto approved = StartDecide(id);
  EXPECT_EQ(proxy_->cuts(), 1);
  ASSERT_OK(approved);
  EXPECT_EQ(approved->status, "approved");
  EXPECT_EQ(approved->version, 2);
  EXPECT_EQ(Row(id), "approved v2 effects 0");
  EXPECT_EQ(executions_.load(), 0);
}

TEST_F(StartedLostCommitTest, ADecisionWhoseCommitIsLostChangesNothingAndIsRetryable) {
  const std::string id = Create();
  proxy_->Arm(Cut::kCommitLost, "decide_at_once");
  auto lost = StartDecide(id);
  EXPECT_EQ(proxy_->cuts(), 1);
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  EXPECT_EQ(Row(id), "pending v1 effects 0");
  ASSERT_OK(StartDecide(id));
  EXPECT_EQ(Row(id), "approved v2 effects 0");
  // Decided already: the started form finds nothing to do and the blocking call answers.
  EXPECT_EQ(db::GetReason(StartDecide(id).status()), approvals::v1::ALREADY_PROCESSED);
}

TEST_F(StartedLostCommitTest, ACreateWhoseReplyIsLostReturnsTheApproval) {
  proxy_->Arm(Cut::kReplyLost, "insert_approval");
  auto created = StartCreate();
  EXPECT_EQ(proxy_->cuts(), 1);
  ASSERT_OK(created);
  EXPECT_TRUE(created->created);
  EXPECT_EQ(Row(created->approval.id), "pending v1 effects 0");
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM approvald.approvals"), "1");
}

TEST_F(StartedLostCommitTest, ACreateWhoseCommitIsLostCreatesNothingAndIsRetryable) {
  proxy_->Arm(Cut::kCommitLost, "insert_approval");
  auto lost = StartCreate();
  EXPECT_EQ(proxy_->cuts(), 1);
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM approvald.approvals"), "0");
  EXPECT_OK(StartCreate());
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM approvald.approvals"), "1");
}

}  // namespace
}  // namespace approvald::testing
