// CommitGroup: one-statement transactions of many callers share commits, and each caller still
// gets its own statement's outcome: its rows, its error, its lock wait, or an unknown outcome
// naming the backend that was committing it.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "db/pg/commit_group.h"
#include "db/pg/pg_error.h"
#include "tests/testing/pg_fixture.h"
#include "tests/testing/status_matchers.h"

namespace approvald::testing {
namespace {

using db::pg::CommitGroup;
using db::pg::PgConnection;

constexpr db::Query kInsert{"group_insert",
                            "INSERT INTO group_rows (n) VALUES ($1::int) RETURNING n"};
// Takes a millisecond: batches last long enough for statements to queue behind them.
constexpr db::Query kSlowInsert{
    "group_slow_insert",
    "INSERT INTO group_rows (n) SELECT $1::int FROM pg_sleep(0.001) RETURNING n"};
// Waits for the advisory lock the test's gate connection holds.
constexpr db::Query kGated{"", "SELECT pg_advisory_xact_lock(42)"};
constexpr db::Query kTouch{"", "UPDATE group_rows SET n = n WHERE n = 100"};
constexpr db::Query kDie{"", "SELECT pg_terminate_backend(pg_backend_pid())"};

class CommitGroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    ASSERT_NE(db_, nullptr);
    std::unique_ptr<PgConnection> conn = db_->Connect();
    ASSERT_NE(conn, nullptr);
    ASSERT_OK(conn->ExecScript("CREATE TABLE group_rows (n int NOT NULL CHECK (n > 0))"));
  }

  std::string Count() const { return db_->Scalar("SELECT count(*) FROM group_rows"); }

  // Runs `query` through the group on a connection of its own, in a thread.
  std::future<absl::StatusOr<db::Rows>> Start(const db::Query& query, db::Params params,
                                              PgConnection** conn_out = nullptr) {
    std::shared_ptr<PgConnection> conn = db_->Connect();
    if (conn_out != nullptr) *conn_out = conn.get();
    conns_.push_back(conn);
    return std::async(std::launch::async, [this, conn, &query, params = std::move(params)] {
      return group_.ExecAndCommit(*conn, {&query, params});
    });
  }

  // `threads` callers, each on a connection of its own, insert `each` rows apiece through
  // `group` (rows 1 to threads * each). Returns how many calls failed or got other rows back.
  int InsertFromManyCallers(CommitGroup& group, const db::Query& insert, int threads, int each) {
    std::vector<std::thread> callers;
    std::atomic<int> wrong{0};
    for (int t = 0; t < threads; ++t) {
      callers.emplace_back([&, t] {
        std::unique_ptr<PgConnection> conn = db_->Connect();
        for (int i = 0; i < each; ++i) {
          const std::string n = absl::StrCat(1 + t * each + i);
          absl::StatusOr<db::Rows> rows = group.ExecAndCommit(*conn, {&insert, {n}});
          if (!rows.ok() || rows->size() != 1 || rows->GetString(0, "n") != n) wrong.fetch_add(1);
        }
      });
    }
    for (std::thread& c : callers) c.join();
    return wrong.load();
  }

  // Polls `done` for up to 30 s.
  static bool WaitFor(const std::function<bool()>& done) {
    const absl::Time give_up = absl::Now() + absl::Seconds(30);
    while (!done()) {
      if (absl::Now() > give_up) return false;
      absl::SleepFor(absl::Milliseconds(2));
    }
    return true;
  }

  // Sends a statement that waits for the gate, holding the group's only batch slot: the
  // statements started next wait and go out together in the batch after it.
  std::future<absl::StatusOr<db::Rows>> HoldTheSlot() {
    gate_ = db_->Connect();
    EXPECT_OK(gate_->ExecScript("SELECT pg_advisory_lock(42)"));
    std::future<absl::StatusOr<db::Rows>> gated = Start(kGated, {});
    EXPECT_TRUE(WaitFor([&] { return group_.in_flight() == 1 && group_.queued() == 0; }));
    return gated;
  }

  // Once `queued` statements wait, opens the gate: they go out as the next batch.
  void ReleaseTheSlot(size_t queued) {
    EXPECT_TRUE(WaitFor([&] { return group_.queued() == queued; }));
    EXPECT_OK(gate_->ExecScript("SELECT pg_advisory_unlock(42)"));
  }

  // Starts `query` and waits until it is queued behind the ones before it.
  std::future<absl::StatusOr<db::Rows>> Queue(const db::Query& query, db::Params params,
                                              PgConnection** conn_out = nullptr) {
    const size_t before = group_.queued();
    auto f = Start(query, std::move(params), conn_out);
    EXPECT_TRUE(WaitFor([&] { return group_.queued() == before + 1; }));
    return f;
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<PgConnection> gate_;
  CommitGroup group_{1};
  std::vector<std::shared_ptr<PgConnection>> conns_;
};

TEST_F(CommitGroupTest, ManyCallersShareCommitsAndEachGetsItsOwnRows) {
  constexpr int kThreads = 8;
  constexpr int kEach = 40;
  EXPECT_EQ(InsertFromManyCallers(group_, kInsert, kThreads, kEach), 0);
  EXPECT_EQ(Count(), absl::StrCat(kThreads * kEach));
  EXPECT_EQ(db_->Scalar("SELECT count(DISTINCT n) FROM group_rows"),
            absl::StrCat(kThreads * kEach));
  // Eight callers on one batch slot: statements waited and went out together.
  EXPECT_GT(group_.grouped_statements(), 0u);
  EXPECT_LT(group_.batches(), static_cast<uint64_t>(kThreads * kEach));
}

TEST_F(CommitGroupTest, AFailingStatementFailsAloneAndItsNeighboursCommit) {
  auto slow = HoldTheSlot();
  auto a = Queue(kInsert, {"1"});
  auto bad = Queue(kInsert, {"-1"});  // the CHECK fails
  auto b = Queue(kInsert, {"2"});
  ReleaseTheSlot(3);
  ASSERT_OK(slow.get());
  ASSERT_OK(a.get());
  ASSERT_OK(b.get());
  absl::StatusOr<db::Rows> refused = bad.get();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("check"), absl::string_view::npos) << refused.status();
  EXPECT_EQ(Count(), "2");
  // The three went out as one batch (rolled back, then each alone).
  EXPECT_EQ(group_.batches(), 2u);
  EXPECT_EQ(group_.grouped_statements(), 3u);
}

TEST_F(CommitGroupTest, AStatementWaitingForALockDoesNotHoldUpItsNeighbours) {
  std::unique_ptr<PgConnection> holder = db_->Connect();
  ASSERT_OK(holder->ExecScript("INSERT INTO group_rows VALUES (100)"));
  ASSERT_OK(holder->ExecScript("BEGIN; SELECT * FROM group_rows WHERE n = 100 FOR UPDATE"));

  auto slow = HoldTheSlot();
  auto touch = Queue(kTouch, {});  // waits for the holder's lock
  auto a = Queue(kInsert, {"1"});
  auto b = Queue(kInsert, {"2"});
  ReleaseTheSlot(3);
  ASSERT_OK(slow.get());
  // The batch gave up on the lock after CommitGroup::kBatchLockTimeoutMs; the inserts then
  // committed alone while the lock is still held.
  ASSERT_EQ(a.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  ASSERT_EQ(b.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_OK(a.get());
  EXPECT_OK(b.get());
  EXPECT_EQ(touch.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  ASSERT_OK(holder->ExecScript("COMMIT"));
  EXPECT_OK(touch.get());  // waited alone, on the session's own lock bound
  EXPECT_EQ(Count(), "3");
  EXPECT_EQ(group_.grouped_statements(), 3u);
}

TEST_F(CommitGroupTest, ALostConnectionLeavesEveryStatementOfTheBatchUnknown) {
  auto slow = HoldTheSlot();
  PgConnection* leader = nullptr;
  auto a = Queue(kInsert, {"1"}, &leader);  // first in the queue: it sends the next batch
  auto die = Queue(kDie, {});
  auto b = Queue(kInsert, {"2"});
  ReleaseTheSlot(3);
  ASSERT_OK(slow.get());
  for (auto* f : {&a, &die, &b}) {
    absl::StatusOr<db::Rows> lost = f->get();
    ASSERT_FALSE(lost.ok());
    std::optional<db::pg::BackendIdentity> backend = db::pg::LostCommitBackend(lost.status());
    ASSERT_TRUE(backend.has_value()) << lost.status();
    EXPECT_EQ(backend->pid, leader->backend_pid());
  }
  EXPECT_TRUE(leader->broken());
  EXPECT_EQ(Count(), "0");  // the batch died before its COMMIT
}

TEST_F(CommitGroupTest, EveryBatchSlotIsGivenBackWhenTheCallersAreDone) {
  // Several slots, and batches that end at nearly the same time: each ending batch hands its
  // slot to a waiting statement or gives it back, and no slot is handed twice to the same one.
  // A lost slot would leave in_flight() above zero here (the group would then run fewer
  // batches at once than it was given).
  CommitGroup group(4);
  constexpr int kThreads = 12;
  constexpr int kEach = 100;
  EXPECT_EQ(InsertFromManyCallers(group, kSlowInsert, kThreads, kEach), 0);
  EXPECT_EQ(Count(), absl::StrCat(kThreads * kEach));
  EXPECT_EQ(group.in_flight(), 0);
  EXPECT_EQ(group.queued(), 0u);
  EXPECT_GT(group.grouped_statements(), 0u);
}

TEST_F(CommitGroupTest, WithoutBatchSlotsEveryStatementGoesAlone) {
  CommitGroup alone(0);
  std::unique_ptr<PgConnection> conn = db_->Connect();
  ASSERT_OK(alone.ExecAndCommit(*conn, {&kInsert, {"5"}}));
  EXPECT_EQ(alone.batches(), 0u);
  EXPECT_EQ(Count(), "1");
}

}  // namespace
}  // namespace approvald::testing
