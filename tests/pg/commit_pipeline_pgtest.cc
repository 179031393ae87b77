// CommitPipeline: one-statement transactions queued with a callback go out in batches from the
// sender threads; each callback is called once, with its statement's rows, or with a status
// saying whether anything of it may have committed.

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "db/pg/commit_pipeline.h"
#include "db/pg/pg_error.h"
#include "tests/testing/pg_fixture.h"
#include "tests/testing/status_matchers.h"

namespace approvald::testing {
namespace {

using db::pg::CommitPipeline;
using db::pg::ConnectionPool;
using Result = absl::StatusOr<db::Rows>;

constexpr db::Query kInsert{"pipeline_insert",
                            "INSERT INTO pipeline_rows (n) VALUES ($1::int) RETURNING n"};
// Keeps its sender busy until the test opens the gate (no lock: the sender's lock_timeout
// would end a lock wait).
constexpr db::Query kGated{"", "SELECT wait_for_gate()"};
constexpr db::Query kTouch{"", "UPDATE pipeline_rows SET n = n WHERE n = 100"};
constexpr db::Query kDie{"", "SELECT pg_terminate_backend(pg_backend_pid())"};

class CommitPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    ASSERT_NE(db_, nullptr);
    std::unique_ptr<db::pg::PgConnection> conn = db_->Connect();
    ASSERT_NE(conn, nullptr);
    ASSERT_OK(conn->ExecScript(
        "CREATE TABLE pipeline_rows (n int NOT NULL CHECK (n > 0));"
        "CREATE TABLE gate (open bool);"
        "CREATE FUNCTION wait_for_gate() RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
        "WHILE NOT EXISTS (SELECT FROM gate) LOOP PERFORM pg_sleep(0.002); END LOOP; END $$"));
    pool_ = std::make_unique<ConnectionPool>(db_->dsn(), 4);
  }

  void TearDown() override {
    if (pipeline_) pipeline_->Shutdown();
  }

  CommitPipeline& Pipeline(int senders) {
    pipeline_ = std::make_unique<CommitPipeline>(*pool_, senders);
    return *pipeline_;
  }

  std::future<Result> Send(const db::Query& query, db::Params params,
                           absl::Time deadline = absl::InfiniteFuture()) {
    auto promise = std::make_shared<std::promise<Result>>();
    std::future<Result> f = promise->get_future();
    EXPECT_TRUE(pipeline_->Submit({&query, std::move(params)}, deadline,
                                  [promise](Result r) { promise->set_value(std::move(r)); }));
    return f;
  }

  std::string Count() const { return db_->Scalar("SELECT count(*) FROM pipeline_rows"); }

  // The single sender is busy with the gated statement: what is sent next is queued. (Other
  // tests run side by side on databases of their own: only this one's sessions count.)
  std::future<Result> CloseTheGate() {
    std::future<Result> gated = Send(kGated, {});
    EXPECT_TRUE(WaitFor([&] {
      return db_->Scalar(
                 "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                 "AND query LIKE 'SELECT wait_for_gate()%'") == "1";
    }));
    return gated;
  }

  // Once `queued` statements wait, lets the gated statement end.
  void OpenTheGate(size_t queued) {
    EXPECT_TRUE(WaitFor([&] { return pipeline_->queued() == queued; }));
    std::unique_ptr<db::pg::PgConnection> conn = db_->Connect();
    ASSERT_OK(conn->ExecScript("INSERT INTO gate VALUES (true)"));
  }

  static bool WaitFor(const std::function<bool()>& done) {
    const absl::Time give_up = absl::Now() + absl::Seconds(30);
    while (!done()) {
      if (absl::Now() > give_up) return false;
      absl::SleepFor(absl::Milliseconds(2));
    }
    return true;
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<ConnectionPool> pool_;
  std::unique_ptr<CommitPipeline> pipeline_;
};

TEST_F(CommitPipelineTest, ManyCallersEachGetTheirOwnRowsOnce) {
  Pipeline(2);
  constexpr int kThreads = 16;
  constexpr int kEach = 50;
  std::atomic<int> calls{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < kThreads; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string n = absl::StrCat(1 + t * kEach + i);
        std::promise<void> answered;
        ASSERT_TRUE(pipeline_->Submit({&kInsert, {n}}, absl::InfiniteFuture(), [&, n](Result r) {
          calls.fetch_add(1);
          if (!r.ok() || r->size() != 1 || r->GetString(0, "n") != n) wrong.fetch_add(1);
          answered.set_value();
        }));
        answered.get_future().wait();
      }
    });
  }
  for (std::thread& c : callers) c.join();
  EXPECT_EQ(calls.load(), kThreads * kEach);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(Count(), absl::StrCat(kThreads * kEach));
  EXPECT_EQ(db_->Scalar("SELECT count(DISTINCT n) FROM pipeline_rows"),
            absl::StrCat(kThreads * kEach));
  EXPECT_GT(pipeline_->grouped_statements(), 0u);
  EXPECT_LT(pipeline_->batches(), static_cast<uint64_t>(kThreads * kEach));
}

TEST_F(CommitPipelineTest, AFailingStatementRollsBackItsBatchAndEachCallerKnowsNothingCommitted) {
  Pipeline(1);
  auto gated = CloseTheGate();
  auto a = Send(kInsert, {"1"});
  auto bad = Send(kInsert, {"-1"});  // the CHECK fails
  auto b = Send(kInsert, {"2"});
  OpenTheGate(3);
  ASSERT_OK(gated.get());
  for (auto* f : {&a, &bad, &b}) {
    Result r = f->get();
    ASSERT_FALSE(r.ok());
    EXPECT_FALSE(db::pg::LostCommitBackend(r.status()).has_value()) << r.status();
  }
  EXPECT_EQ(Count(), "0");
  // The pipeline goes on: the next statement commits.
  ASSERT_OK(Send(kInsert, {"3"}).get());
  EXPECT_EQ(Count(), "1");
}

TEST_F(CommitPipelineTest, ALockWaitEndsAtTheLockTimeoutWithNothingCommitted) {
  Pipeline(1);
  std::unique_ptr<db::pg::PgConnection> holder = db_->Connect();
  ASSERT_OK(holder->ExecScript("INSERT INTO pipeline_rows VALUES (100)"));
  ASSERT_OK(holder->ExecScript("BEGIN; SELECT * FROM pipeline_rows WHERE n = 100 FOR UPDATE"));
  auto gated = CloseTheGate();
  auto touch = Send(kTouch, {});
  auto a = Send(kInsert, {"1"});
  OpenTheGate(2);
  ASSERT_OK(gated.get());
  // The lock is still held: the batch gave up on it (the session's lock_timeout).
  Result waited = touch.get();
  ASSERT_FALSE(waited.ok());
  EXPECT_FALSE(db::pg::LostCommitBackend(waited.status()).has_value());
  EXPECT_FALSE(a.get().ok());
  // Alone, the same: the caller takes its blocking path, which waits up to its deadline.
  Result alone = Send(kTouch, {}).get();
  EXPECT_FALSE(alone.ok());
  ASSERT_OK(holder->ExecScript("COMMIT"));
  EXPECT_EQ(Count(), "1");
  ASSERT_OK(Send(kTouch, {}).get());
}

TEST_F(CommitPipelineTest, ALostConnectionLeavesTheBatchUnknownAndTheNextOneReconnects) {
  Pipeline(1);
  auto gated = CloseTheGate();
  auto a = Send(kInsert, {"1"});
  auto die = Send(kDie, {});
  auto b = Send(kInsert, {"2"});
  OpenTheGate(3);
  ASSERT_OK(gated.get());
  int pid = 0;
  for (auto* f : {&a, &die, &b}) {
    Result lost = f->get();
    ASSERT_FALSE(lost.ok());
    std::optional<db::pg::BackendIdentity> backend = db::pg::LostCommitBackend(lost.status());
    ASSERT_TRUE(backend.has_value()) << lost.status();
    EXPECT_GT(backend->pid, 0);
    if (pid != 0) {
      EXPECT_EQ(backend->pid, pid);  // the same backend for the whole batch
    }
    pid = backend->pid;
  }
  EXPECT_EQ(Count(), "0");  // the batch died before its COMMIT
  ASSERT_OK(Send(kInsert, {"3"}).get());
  EXPECT_EQ(Count(), "1");
}

TEST_F(CommitPipelineTest, AStatementWhoseDeadlinePassedInTheQueueIsNotSent) {
  Pipeline(1);
  auto gated = CloseTheGate();
  const absl::Time deadline = absl::Now() + absl::Milliseconds(20);
  auto late = Send(kInsert, {"1"}, deadline);
  auto on_time = Send(kInsert, {"2"});
  EXPECT_TRUE(WaitFor([&] { return absl::Now() > deadline; }));
  OpenTheGate(2);
  ASSERT_OK(gated.get());
  EXPECT_EQ(late.get().status().code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_OK(on_time.get());
  EXPECT_EQ(db_->Scalar("SELECT string_agg(n::text, ',') FROM pipeline_rows"), "2");
}

TEST_F(CommitPipelineTest, AFullQueueRefusesAStatementWithoutCallingItsCallback) {
  pipeline_ = std::make_unique<CommitPipeline>(*pool_, 1, /*max_queue=*/1);
  auto gated = CloseTheGate();
  auto a = Send(kInsert, {"1"});
  EXPECT_TRUE(WaitFor([&] { return pipeline_->queued() == 1; }));
  std::atomic<int> called{0};
  // Refused: the caller keeps its statement and runs it another way (approvald: a worker).
  EXPECT_FALSE(pipeline_->Submit({&kInsert, {"2"}}, absl::InfiniteFuture(),
                                 [&](Result) { called.fetch_add(1); }));
  OpenTheGate(1);
  ASSERT_OK(gated.get());
  ASSERT_OK(a.get());
  pipeline_->Shutdown();
  EXPECT_EQ(called.load(), 0);
  EXPECT_EQ(Count(), "1");
}

TEST_F(CommitPipelineTest, ShutdownSendsWhatIsQueuedAndRefusesMore) {
  Pipeline(1);
  auto gated = CloseTheGate();
  auto a = Send(kInsert, {"1"});
  std::thread stopper([&] {
    EXPECT_TRUE(WaitFor([&] { return pipeline_->queued() == 1; }));
    pipeline_->Shutdown();
  });
  OpenTheGate(1);
  stopper.join();
  ASSERT_OK(gated.get());
  ASSERT_OK(a.get());
  EXPECT_FALSE(pipeline_->Submit({&kInsert, {"2"}}, absl::InfiniteFuture(), [](Result) {}));
  EXPECT_EQ(Count(), "1");
}

}  // namespace
}  // namespace approvald::testing
