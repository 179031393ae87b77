// Webhook subscription cursors on the real database: one holder at a time under the lease (many
// replicas racing), fencing of a lost lease, failures that dead-letter after the maximum age,
// and redelivery from the event it stopped at.

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "db/pg/connection_pool.h"
#include "db/pg/pg_approval_store.h"
#include "db/pg/pg_webhook_store.h"
#include "tests/testing/pg_fixture.h"
#include "tests/testing/status_matchers.h"

namespace approvald::testing {
namespace {

class WebhookStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    ASSERT_NE(db_, nullptr);
    pool_ = std::make_unique<db::pg::ConnectionPool>(db_->dsn(), 20);
    approvals_ = std::make_unique<db::pg::PgApprovalStore>(*pool_);
    store_ = std::make_unique<db::pg::PgWebhookStore>(*pool_);
  }

  void CreateApprovals(int n) {
    for (int i = 0; i < n; ++i) {
      db::CreateInput create;
      create.action_type = "noop";
      create.requested_by = "agent";
      create.ttl = absl::Hours(1);
      ASSERT_OK(approvals_->Create(create).status());
    }
  }

  // The events after `after` once `n` are deliverable: an event is, once no older transaction
  // runs anywhere in the cluster (other tests' too).
  std::vector<db::EventRecord> Deliverable(int64_t after, size_t n) {
    std::vector<db::EventRecord> events;
    for (int i = 0; i < 1000 && events.size() < n; ++i) {
      absl::StatusOr<std::vector<db::EventRecord>> read = store_->ReadEvents(after, 100);
      EXPECT_TRUE(read.ok()) << read.status();
      if (!read.ok()) break;
      events = *std::move(read);
      if (events.size() < n) absl::SleepFor(absl::Milliseconds(20));
    }
    return events;
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<db::pg::ConnectionPool> pool_;
  std::unique_ptr<db::pg::PgApprovalStore> approvals_;
  std::unique_ptr<db::pg::PgWebhookStore> store_;
};

TEST_F(WebhookStoreTest, ANewSubscriptionStartsAtTheHeadAndKeepsItsCursor) {
  CreateApprovals(3);
  const std::vector<db::EventRecord> events = Deliverable(0, 3);
  ASSERT_EQ(events.size(), 3u);
  ASSERT_OK(store_->Register("hooks"));
  ASSERT_OK_AND_ASSIGN(auto row, store_->Acquire("hooks", "replica-a", absl::Seconds(30)));
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->cursor, events.back().id);  // what happened before it is not sent
  CreateApprovals(2);
  const std::vector<db::EventRecord> after = Deliverable(row->cursor, 2);
  ASSERT_EQ(after.size(), 2u);
  ASSERT_OK(store_->Advance("hooks", *row->lease_token, after[0].id, 1, absl::Seconds(30)));
  ASSERT_OK(store_->Register("hooks"));  // a restart: the cursor stays
  ASSERT_OK_AND_ASSIGN(auto again, store_->Acquire("hooks", "replica-a", absl::Seconds(30)));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->cursor, after[0].id);
  EXPECT_EQ(again->delivered, 1);
  EXPECT_EQ(*again->lease_token, *row->lease_token);  // a renewal keeps the token
}

TEST_F(WebhookStoreTest, OneOfManyRacingReplicasHoldsTheLease) {
  ASSERT_OK(store_->Register("hooks"));
  constexpr int kReplicas = 12;
  std::atomic<int> holders{0};
  std::set<std::string> tokens;
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int i = 0; i < kReplicas; ++i) {
    threads.emplace_back([&, i] {
      for (int round = 0; round < 5; ++round) {
        auto row = store_->Acquire("hooks", "replica-" + std::to_string(i), absl::Minutes(1));
        ASSERT_TRUE(row.ok()) << row.status();
        if (row->has_value()) {
          holders.fetch_add(1);
          std::lock_guard<std::mutex> lock(mu);
          tokens.insert(*(*row)->lease_token);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(holders.load(), 5);  // one replica, its five renewals
  EXPECT_EQ(tokens.size(), 1u);
}

TEST_F(WebhookStoreTest, ALostLeaseChangesNothing) {
  ASSERT_OK(store_->Register("hooks"));
  ASSERT_OK_AND_ASSIGN(auto a, store_->Acquire("hooks", "replica-a", absl::Milliseconds(200)));
  ASSERT_TRUE(a.has_value());
  absl::SleepFor(absl::Milliseconds(300));  // a's lease runs out
  ASSERT_OK_AND_ASSIGN(auto b, store_->Acquire("hooks", "replica-b", absl::Seconds(30)));
  ASSERT_TRUE(b.has_value());
  EXPECT_NE(*a->lease_token, *b->lease_token);
  EXPECT_EQ(store_->Advance("hooks", *a->lease_token, 999, 1, absl::Seconds(30)).code(),
            absl::StatusCode::kFailedPrecondition);
  db::WebhookFailure f{1, "HTTP 500: x", absl::Seconds(1), absl::Hours(1)};
  EXPECT_EQ(store_->RecordFailure("hooks", *a->lease_token, f).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(auto all, store_->List());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].cursor, b->cursor);
  EXPECT_EQ(all[0].lease_holder.value_or(""), "replica-b");
  // Released, the next replica takes it at once.
  ASSERT_OK(store_->Release("hooks", *b->lease_token));
  ASSERT_OK_AND_ASSIGN(auto c, store_->Acquire("hooks", "replica-c", absl::Seconds(30)));
  EXPECT_TRUE(c.has_value());
}

TEST_F(WebhookStoreTest, FailuresPastTheMaximumAgeDeadLetterUntilRedelivered) {
  ASSERT_OK(store_->Register("hooks"));
  ASSERT_OK_AND_ASSIGN(auto row, store_->Acquire("hooks", "replica-a", absl::Seconds(30)));
  ASSERT_TRUE(row.has_value());
  const std::string token = *row->lease_token;
  db::WebhookFailure f{row->cursor + 7, "HTTP 503: busy", absl::Milliseconds(0),
                       absl::Milliseconds(300)};
  ASSERT_OK_AND_ASSIGN(auto first, store_->RecordFailure("hooks", token, f));
  EXPECT_EQ(first.state, "active");
  EXPECT_EQ(first.attempts, 1);
  EXPECT_EQ(first.failing_event_id.value_or(0), row->cursor + 7);
  ASSERT_OK_AND_ASSIGN(auto second, store_->RecordFailure("hooks", token, f));
  EXPECT_EQ(second.state, "active");  // younger than the maximum age
  EXPECT_EQ(second.attempts, 2);
  absl::SleepFor(absl::Milliseconds(400));
  ASSERT_OK_AND_ASSIGN(auto dead, store_->RecordFailure("hooks", token, f));
  EXPECT_EQ(dead.state, "dead_letter");
  EXPECT_EQ(dead.attempts, 3);
  EXPECT_EQ(dead.last_error.value_or(""), "HTTP 503: busy");
  EXPECT_TRUE(dead.dead_letter_time.has_value());
  // Nothing moves a dead-lettered subscription but a redelivery.
  EXPECT_EQ(store_->Advance("hooks", token, row->cursor + 100, 1, absl::Seconds(30)).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(auto resumed, store_->Redeliver("hooks"));
  EXPECT_EQ(resumed.state, "active");
  EXPECT_EQ(resumed.cursor, row->cursor);  // from the event it stopped at
  EXPECT_EQ(resumed.attempts, 0);
  EXPECT_EQ(store_->Redeliver("hooks").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Redeliver("nope").status().code(), absl::StatusCode::kNotFound);
  // The retry budget is fresh: one more failure does not dead-letter it again at once.
  ASSERT_OK_AND_ASSIGN(auto again, store_->RecordFailure("hooks", token, f));
  EXPECT_EQ(again.state, "active");
  // Delivered at last: the failure streak ends with the cursor past it.
  ASSERT_OK(store_->Advance("hooks", token, row->cursor + 7, 1, absl::Seconds(30)));
  ASSERT_OK_AND_ASSIGN(auto all, store_->List());
  EXPECT_FALSE(all[0].failing_event_id.has_value());
  EXPECT_EQ(all[0].attempts, 0);
}

}  // namespace
}  // namespace approvald::testing
