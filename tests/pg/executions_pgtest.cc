// External executions on the real database: the decision enqueues exactly one, claims never
// hand one to two workers, the lease token fences every later call, expired leases and failed
// attempts make it due again with the same idempotency key, and attempts run out.

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "db/errors.h"
#include "db/pg/connection_pool.h"
#include "db/pg/pg_approval_store.h"
#include "db/pg/pg_execution_store.h"
#include "tests/testing/pg_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_rules.h"

namespace approvald::testing {
namespace {

const db::MayExecute kAnyone = [](const std::string&) { return absl::OkStatus(); };

class ExecutionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    ASSERT_NE(db_, nullptr);
    pool_ = std::make_unique<db::pg::ConnectionPool>(db_->dsn(), 20);
    store_ = std::make_unique<db::pg::PgApprovalStore>(*pool_);
    executions_ = std::make_unique<db::pg::PgExecutionStore>(*pool_);
    rules_.SetExternal(db::ExternalExecution{3});
  }

  absl::Time Soon() const { return absl::Now() + absl::Seconds(10); }

  // A pending approval of the external type "refund.provider", requested by agent.
  std::string Pending(absl::Duration ttl = absl::Hours(1)) {
    db::CreateInput create;
    create.action_type = "refund.provider";
    create.action_data_json = R"({"order_id": 42})";
    create.requested_by = "agent";
    create.ttl = ttl;
    absl::StatusOr<db::CreateResult> created = store_->Create(create);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->approval.id : "";
  }

  absl::StatusOr<db::ApprovalRecord> Decide(db::Decision decision, const std::string& id,
                                            const std::string& actor) {
    db::DecideInput in;
    in.decision = decision;
    in.id = id;
    in.actor = actor;
    in.reason = "because";
    in.deadline = Soon();
    return store_->Decide(in, rules_);
  }

  // A created and approved approval of the external type "refund.provider".
  std::string Approved() {
    const std::string id = Pending();
    absl::StatusOr<db::ApprovalRecord> approved = Decide(db::Decision::kApprove, id, "alice");
    EXPECT_TRUE(approved.ok()) << approved.status();
    return id;
  }

  absl::StatusOr<db::ClaimResult> Claim(int max, absl::Duration lease = absl::Seconds(30),
                                        const std::string& worker = "worker") {
    db::ClaimInput in;
    in.action_types = {"refund.provider"};
    in.max = max;
    in.lease = lease;
    in.worker = worker;
    in.deadline = Soon();
    return executions_->Claim(in);
  }

  void ClaimRace(int round);

  // As the service makes it: with the types the worker may run (one statement when in order).
  db::LeaseCall Call(const db::ExecutionRecord& x, const std::string& worker = "worker") {
    return {x.id, x.lease_token.value_or(""), worker, Soon(), {"refund.provider"}};
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<db::pg::ConnectionPool> pool_;
  std::unique_ptr<db::pg::PgApprovalStore> store_;
  std::unique_ptr<db::pg::PgExecutionStore> executions_;
  TestRules rules_{[](db::Tx&, const db::ApprovalRecord&) -> absl::StatusOr<std::string> {
    ADD_FAILURE() << "an external action must never run inside the decision";
    return std::string("{}");
  }};
};

TEST_F(ExecutionsTest, ApprovingEnqueuesOneExecutionWithTheDecision) {
  const std::string id = Approved();
  ASSERT_OK_AND_ASSIGN(db::ApprovalRecord a, store_->Get(id, Soon()));
  EXPECT_EQ(a.status, db::kApproved);
  EXPECT_FALSE(a.execute_time.has_value());  // not executed: queued for a worker
  ASSERT_TRUE(a.execution.has_value());
  EXPECT_EQ(a.execution->state, db::kQueued);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM approvald.executions WHERE approval_id = '" + id +
                        "' AND state = 'queued'"),
            "1");
  // A rejected approval never gets one.
  ASSERT_OK(Decide(db::Decision::kReject, Pending(), "alice").status());
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM approvald.executions"), "1");
}

TEST_F(ExecutionsTest, OnlyTheDecisiveVoteEnqueuesAndOtherEndingsNever) {
  rules_.SetRequiredApprovals(2);
  const std::string id = Approved();  // alice's vote: not yet
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM approvald.executions"), "0");
  ASSERT_OK_AND_ASSIGN(db::ApprovalRecord a, Decide(db::Decision::kApprove, id, "bob"));
  EXPECT_EQ(a.status, db::kApproved);
  ASSERT_TRUE(a.execution.has_value());
  EXPECT_EQ(
      db_->Scalar("SELECT count(*) FROM approvald.executions WHERE approval_id = '" + id + "'"),
      "1");
  rules_.SetRequiredApprovals(1);
  // Cancelled by the requester, and expired (a decision finds it past its expiry; the sweeper
  // the same way): no execution.
  ASSERT_OK(Decide(db::Decision::kCancel, Pending(), "agent").status());
  const std::string late = Pending(absl::Milliseconds(1));
  const std::string swept = Pending(absl::Milliseconds(1));
  absl::SleepFor(absl::Milliseconds(20));  // past their expiry by the database clock
  EXPECT_EQ(db::GetReason(Decide(db::Decision::kApprove, late, "alice").status()),
            approvals::v1::EXPIRED);
  ASSERT_OK(store_->ExpireDue(100).status());
  ASSERT_OK_AND_ASSIGN(db::ApprovalRecord expired, store_->Get(swept, Soon()));
  EXPECT_EQ(expired.status, db::kExpired);
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM approvald.executions"), "1");
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM approvald.approvals WHERE execution_id IS NOT NULL"),
            "1");
}

// 200 executions, 16 workers claiming up to 5 at a time on their own connections, three
// rounds: each execution is handed out exactly once.
TEST_F(ExecutionsTest, ConcurrentClaimsNeverHandOneExecutionToTwoWorkers) {
  for (int round = 0; round < 3; ++round) ClaimRace(round);
}

void ExecutionsTest::ClaimRace(int round) {
  SCOPED_TRACE(round);
  constexpr int kApprovals = 200;
  for (int i = 0; i < kApprovals; ++i) Approved();
  std::mutex mu;
  std::map<std::string, int> handed;
  std::atomic<int> errors{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 16; ++w) {
    workers.emplace_back([&, w] {
      for (;;) {
        absl::StatusOr<db::ClaimResult> got = Claim(5, absl::Seconds(30), "w" + std::to_string(w));
        if (!got.ok()) {
          ++errors;
          return;
        }
        if (got->claimed.empty()) return;
        std::lock_guard<std::mutex> lock(mu);
        for (const db::ExecutionRecord& x : got->claimed) ++handed[x.id];
      }
    });
  }
  for (std::thread& t : workers) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(handed.size(), static_cast<size_t>(kApprovals));
  for (const auto& [id, n] : handed) EXPECT_EQ(n, 1) << id;
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM approvald.execution_attempts"),
            std::to_string(kApprovals * (round + 1)));
}

TEST_F(ExecutionsTest, CompletionIsFencedByTheLeaseTokenAndRepeatable) {
  const std::string id = Approved();
  ASSERT_OK_AND_ASSIGN(db::ClaimResult got, Claim(1));
  ASSERT_EQ(got.claimed.size(), 1u);
  const db::ExecutionRecord x = got.claimed[0];
  EXPECT_EQ(x.approval.id, id);
  EXPECT_EQ(x.attempt, 1);
  EXPECT_EQ(x.approval.execution->state, db::kRunning);

  db::LeaseCall forged = Call(x);
  forged.lease_token = "00000000-0000-4000-8000-000000000000";
  absl::StatusOr<db::ExecutionRecord> refused = executions_->Complete(forged, "{}", kAnyone);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(db::GetReason(refused.status()), approvals::v1::LEASE_LOST);

  ASSERT_OK_AND_ASSIGN(db::ExecutionRecord done,
                       executions_->Complete(Call(x), R"({"refund": "r1"})", kAnyone));
  EXPECT_EQ(done.state, db::kSucceeded);
  EXPECT_TRUE(done.approval.execute_time.has_value());
  EXPECT_EQ(done.approval.execution->state, db::kSucceeded);
  const std::string events = db_->Scalar(
      "SELECT string_agg(type, ',' ORDER BY id) FROM approvald.events WHERE approval_id = '" + id +
      "'");
  EXPECT_EQ(events, "created,approved,execution_started,executed");
  // A worker that lost the answer asks again: the same outcome, nothing new.
  ASSERT_OK_AND_ASSIGN(db::ExecutionRecord again,
                       executions_->Complete(Call(x), R"({"refund": "r2"})", kAnyone));
  EXPECT_EQ(again.approval.version, done.approval.version);
  EXPECT_EQ(again.result_json, done.result_json);
  // Once succeeded, it is never claimed again, and a failure is refused.
  ASSERT_OK_AND_ASSIGN(db::ClaimResult none, Claim(1));
  EXPECT_TRUE(none.claimed.empty());
  EXPECT_EQ(db::GetReason(executions_->Fail(Call(x), "late", nullptr, kAnyone).status()),
            approvals::v1::LEASE_LOST);
}

TEST_F(ExecutionsTest, AnExpiredLeaseMakesItDueAgainWithTheSameKeyAndFencesTheFirstWorker) {
  Approved();
  ASSERT_OK_AND_ASSIGN(db::ClaimResult first, Claim(1, absl::Milliseconds(100), "slow"));
  ASSERT_EQ(first.claimed.size(), 1u);
  const db::ExecutionRecord x1 = first.claimed[0];
  // Claimed again once the lease has run out (bounded: the database clock decides).
  std::optional<db::ExecutionRecord> x2;
  for (int i = 0; i < 200 && !x2; ++i) {
    ASSERT_OK_AND_ASSIGN(db::ClaimResult next, Claim(1, absl::Seconds(30), "fast"));
    if (!next.claimed.empty()) {
      x2 = next.claimed[0];
    } else {
      ASSERT_TRUE(next.next_due.has_value());  // the running lease says when
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  ASSERT_TRUE(x2.has_value());
  EXPECT_EQ(x2->id, x1.id);  // the idempotency key: the same for every attempt
  EXPECT_EQ(x2->attempt, 2);
  EXPECT_NE(x2->lease_token, x1.lease_token);
  EXPECT_EQ(db::GetReason(executions_->Complete(Call(x1, "slow"), "{}", kAnyone).status()),
            approvals::v1::LEASE_LOST);
  EXPECT_EQ(
      db::GetReason(executions_->Extend(Call(x1, "slow"), absl::Seconds(5), kAnyone).status()),
      approvals::v1::LEASE_LOST);
  ASSERT_OK(executions_->Complete(Call(*x2, "fast"), "{}", kAnyone).status());
  EXPECT_EQ(db_->Scalar("SELECT string_agg(outcome, ',' ORDER BY attempt) FROM "
                        "approvald.execution_attempts"),
            "lease_expired,succeeded");
}

TEST_F(ExecutionsTest, FailedAttemptsAreRetriedUntilMaxAttemptsThenTheApprovalFails) {
  const std::string id = Approved();  // max_attempts 3
  const db::RetryDelay now = [](int) { return absl::ZeroDuration(); };
  for (int attempt = 1; attempt <= 3; ++attempt) {
    ASSERT_OK_AND_ASSIGN(db::ClaimResult got, Claim(1));
    ASSERT_EQ(got.claimed.size(), 1u) << attempt;
    EXPECT_EQ(got.claimed[0].attempt, attempt);
    ASSERT_OK_AND_ASSIGN(
        db::ExecutionRecord failed,
        executions_->Fail(Call(got.claimed[0]), "provider said 503", now, kAnyone));
    EXPECT_EQ(failed.state, attempt < 3 ? db::kQueued : std::string("failed")) << attempt;
    // Repeated: the recorded outcome, no second failure.
    ASSERT_OK_AND_ASSIGN(db::ExecutionRecord again,
                         executions_->Fail(Call(got.claimed[0]), "again", now, kAnyone));
    EXPECT_EQ(again.approval.version, failed.approval.version);
  }
  ASSERT_OK_AND_ASSIGN(db::ApprovalRecord a, store_->Get(id, Soon()));
  EXPECT_EQ(a.status, db::kFailed);
  EXPECT_EQ(a.execution_error.value_or(""), "provider said 503");
  EXPECT_EQ(a.execution->attempts, 3);
  ASSERT_OK_AND_ASSIGN(db::ClaimResult none, Claim(1));
  EXPECT_TRUE(none.claimed.empty());
  EXPECT_FALSE(none.next_due.has_value());
}

TEST_F(ExecutionsTest, ABackoffDelaysTheNextAttemptAndANonRetryableFailureEndsIt) {
  const std::string id = Approved();
  ASSERT_OK_AND_ASSIGN(db::ClaimResult got, Claim(1));
  ASSERT_OK(executions_
                ->Fail(
                    Call(got.claimed[0]), "busy", [](int) { return absl::Hours(1); }, kAnyone)
                .status());
  ASSERT_OK_AND_ASSIGN(db::ClaimResult later, Claim(1));
  EXPECT_TRUE(later.claimed.empty());
  ASSERT_TRUE(later.next_due.has_value());
  EXPECT_GT(*later.next_due, absl::Minutes(59));

  const std::string other = Approved();
  ASSERT_OK_AND_ASSIGN(db::ClaimResult second, Claim(1));
  ASSERT_EQ(second.claimed.size(), 1u);
  EXPECT_EQ(second.claimed[0].approval.id, other);
  ASSERT_OK(
      executions_->Fail(Call(second.claimed[0]), "400: no such order", nullptr, kAnyone).status());
  ASSERT_OK_AND_ASSIGN(db::ApprovalRecord a, store_->Get(other, Soon()));
  EXPECT_EQ(a.status, db::kFailed);
  EXPECT_EQ(a.execution_error.value_or(""), "400: no such order");
}

TEST_F(ExecutionsTest, OnlyTheTypesAWorkerMayRunAreTouched) {
  Approved();
  ASSERT_OK_AND_ASSIGN(db::ClaimResult got, Claim(1));
  const db::MayExecute nobody = [](const std::string& type) {
    return absl::PermissionDeniedError("not for " + type);
  };
  db::LeaseCall other_types = Call(got.claimed[0]);
  other_types.types = {"email.send"};
  EXPECT_EQ(executions_->Complete(other_types, "{}", nobody).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(executions_->Extend(other_types, absl::Seconds(5), nobody).status().code(),
            absl::StatusCode::kPermissionDenied);
  db::LeaseCall judged = Call(got.claimed[0]);  // no types: always under the lock
  judged.types.clear();
  EXPECT_EQ(executions_->Complete(judged, "{}", nobody).status().code(),
            absl::StatusCode::kPermissionDenied);
  db::LeaseCall unknown = Call(got.claimed[0]);
  unknown.execution_id = "00000000-0000-4000-8000-000000000000";
  EXPECT_EQ(executions_->Complete(unknown, "{}", kAnyone).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace approvald::testing
