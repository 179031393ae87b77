// Deadlines and overload: a call never hangs on a locked row, and a full work queue answers
// RESOURCE_EXHAUSTED at once.

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "db/query.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_server.h"

namespace approvald::testing {
namespace {

namespace v1 = approvals::v1;

// Holds the approval's row lock on a direct connection until destroyed.
class RowLock {
 public:
  RowLock(TestDatabase& db, const std::string& id) : conn_(db.Connect()) {
    EXPECT_OK(conn_->ExecScript("BEGIN"));
    EXPECT_OK(
        conn_->ExecScript("SELECT 1 FROM approvald.approvals WHERE id = '" + id + "' FOR UPDATE"));
  }
  ~RowLock() { (void)conn_->ExecScript("ROLLBACK"); }

 private:
  std::unique_ptr<db::pg::PgConnection> conn_;
};

// Waits (bounded) until `n` backends of this test's database wait for a row lock. (ctest runs
// tests side by side, each on its own database, so the count must not include the others.)
bool AwaitLockWaiters(TestDatabase& db, int n) {
  for (int i = 0; i < 500; ++i) {
    if (db.Scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND "
                  "datname = current_database()") == std::to_string(n)) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

v1::Approval CreateNoop(TestServer& ts) {
  v1::CreateApprovalRequest req;
  req.set_action_type("test.effect");
  auto r = ts.Client("agent")->Create(req);
  EXPECT_OK(r);
  return r.ok() ? *r : v1::Approval();
}

TEST(OverloadTest, TheClientDeadlineBoundsALockWait) {
  auto ts = TestServer::Start();
  ASSERT_NE(ts, nullptr);
  const v1::Approval a = CreateNoop(*ts);
  {
    RowLock lock(ts->db(), a.id());
    client::ApprovalClient hurried(ts->NewChannel(), "tok-alice", absl::Milliseconds(700));
    v1::ApproveRequest req;
    req.set_id(a.id());
    const absl::Time start = absl::Now();
    auto r = hurried.Approve(req);
    EXPECT_CODE(r, absl::StatusCode::kDeadlineExceeded);
    EXPECT_LT(absl::Now() - start, absl::Seconds(5));
    // The server gave up its lock wait too (cancelled at the deadline), so no backend waits.
    EXPECT_TRUE(AwaitLockWaiters(ts->db(), 0));
  }
  ASSERT_OK_AND_ASSIGN(v1::Approval still, ts->Client("alice")->Get(a.id()));
  EXPECT_EQ(still.status(), v1::APPROVAL_STATUS_PENDING);
  EXPECT_EQ(ts->Effects(a.id()), 0);
  v1::ApproveRequest req;
  req.set_id(a.id());
  EXPECT_OK(ts->Client("alice")->Approve(req));
  EXPECT_EQ(ts->Effects(a.id()), 1);
}

TEST(OverloadTest, AFullQueueAnswersResourceExhaustedAtOnce) {
  auto ts = TestServer::Start(/*pool_size=*/1, /*max_queue=*/1);
  ASSERT_NE(ts, nullptr);
  const v1::Approval a = CreateNoop(*ts);
  const v1::Approval b = CreateNoop(*ts);
  std::future<absl::Status> blocked, queued;
  {
    RowLock lock(ts->db(), a.id());
    auto approve = [&](const std::string& id) {
      return std::async(std::launch::async, [&ts, id] {
        v1::ApproveRequest req;
        req.set_id(id);
        return ts->Client("alice")->Approve(req).status();
      });
    };
    blocked = approve(a.id());  // occupies the only worker, waiting for the row lock
    ASSERT_TRUE(AwaitLockWaiters(ts->db(), 1));
    queued = approve(b.id());  // fills the queue
    for (int i = 0; i < 500 && ts->server().service().queue_depth() < 1; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    auto r = ts->Client("alice")->Get(b.id());
    EXPECT_CODE(r, absl::StatusCode::kResourceExhausted);
  }
  // Once the lock is gone both queued calls complete.
  EXPECT_OK(blocked.get());
  EXPECT_OK(queued.get());
  EXPECT_EQ(ts->Effects(a.id()), 1);
  EXPECT_EQ(ts->Effects(b.id()), 1);
}

}  // namespace
}  // namespace approvald::testing
