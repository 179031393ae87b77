// Waiting for one approval: WatchApprovals filtered by approval ids (from their first event, so
// "create, then watch it" misses nothing) and by requester, and ListApprovals by requester and
// decider.

#include <gtest/gtest.h>

#include "absl/strings/ascii.h"
#include "db/pg/connection_pool.h"
#include "db/pg/pg_approval_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_server.h"
#include "tests/testing/watch_stream.h"

namespace approvald::testing {
namespace {

namespace v1 = approvals::v1;

class WatchFilterTest : public WatchServerTest {
 protected:
  static v1::WatchApprovalsRequest Ids(std::initializer_list<std::string> ids) {
    v1::WatchApprovalsRequest req;
    for (const std::string& id : ids) req.add_approval_ids(id);
    return req;
  }
};

TEST_F(WatchFilterTest, AWatchOfApprovalIdsStartsWithEveryEventTheyAlreadyHave) {
  const v1::Approval decided = Create();
  const v1::Approval other = Create();
  Approve(decided.id());
  const v1::Approval pending = Create();
  // Upper case ids are the same approvals.
  Watch watch(*ts_, Ids({absl::AsciiStrToUpper(decided.id()), pending.id()}));
  auto got = watch.Take(3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].approval().id(), decided.id());
  EXPECT_EQ(got[0].type(), v1::EVENT_TYPE_CREATED);
  EXPECT_EQ(got[1].approval().id(), decided.id());
  EXPECT_EQ(got[1].type(), v1::EVENT_TYPE_APPROVED);
  EXPECT_EQ(got[2].approval().id(), pending.id());
  EXPECT_EQ(got[2].type(), v1::EVENT_TYPE_CREATED);
  // Then live, still only these approvals.
  ASSERT_TRUE(AwaitWatchers(*ts_, 1));
  Approve(other.id());
  Approve(pending.id());
  got = watch.Take(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].approval().id(), pending.id());
  EXPECT_EQ(got[0].type(), v1::EVENT_TYPE_APPROVED);
  EXPECT_EQ(watch.Take(1, absl::Milliseconds(300)).size(), 0u);
}

// The race that the start from the first event closes: the decision lands between the create
// and the watch, and is still delivered.
TEST_F(WatchFilterTest, CreateDecideThenWatchStillSeesTheDecision) {
  for (int round = 0; round < 20; ++round) {
    const v1::Approval a = Create();
    Approve(a.id());
    Watch watch(*ts_, Ids({a.id()}));
    auto got = watch.Take(2);
    ASSERT_EQ(got.size(), 2u) << "round " << round;
    EXPECT_EQ(got[1].approval().status(), v1::APPROVAL_STATUS_APPROVED);
  }
}

TEST_F(WatchFilterTest, AResumedWatchOfApprovalIdsStartsAfterItsResumePoint) {
  const v1::Approval a = Create();
  Approve(a.id());
  Watch first(*ts_, Ids({a.id()}));
  auto got = first.Take(2);
  ASSERT_EQ(got.size(), 2u);
  v1::WatchApprovalsRequest resume = Ids({a.id()});
  resume.set_after_event_id(got[0].event_id());
  Watch second(*ts_, resume);
  auto again = second.Take(2, absl::Seconds(2));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].event_id(), got[1].event_id());
}

TEST_F(WatchFilterTest, AWatchOfAnIdWithNoEventWaitsForIt) {
  // An id nobody created: nothing to replay, and the stream goes live rather than failing.
  Watch watch(*ts_, Ids({"00000000-0000-4000-8000-000000000001"}));
  ASSERT_TRUE(AwaitWatchers(*ts_, 1));
  Create();
  EXPECT_EQ(watch.Take(1, absl::Milliseconds(300)).size(), 0u);
}

// The replay of a few approvals reads them by approval: their events only, and how far the log
// holds nothing more for them (read_to), however long the rest of the log is.
TEST_F(WatchFilterTest, TheStoreReadsTheEventsOfSomeApprovalsOnly) {
  const v1::Approval mine = Create();
  for (int i = 0; i < 30; ++i) Create("test.effect", "carol");
  Approve(mine.id());
  db::pg::ConnectionPool pool(ts_->db().dsn(), 1);
  db::pg::PgApprovalStore store(pool);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  // An event is deliverable once every older transaction of the cluster has ended, and other
  // test processes share the cluster: wait (bounded) until both are.
  db::EventsOf all;
  do {
    ASSERT_OK_AND_ASSIGN(all, store.ReadEventsOf({mine.id()}, 0, 10, deadline));
  } while (all.events.size() < 2 && absl::Now() < deadline &&
           (absl::SleepFor(absl::Milliseconds(10)), true));
  ASSERT_EQ(all.events.size(), 2u);
  EXPECT_EQ(all.events[0].type, "created");
  EXPECT_EQ(all.events[1].type, "approved");
  EXPECT_EQ(all.read_to, all.events[1].id);  // the approval is the newest event
  ASSERT_OK_AND_ASSIGN(db::EventsOf first, store.ReadEventsOf({mine.id()}, 0, 1, deadline));
  ASSERT_EQ(first.events.size(), 1u);
  EXPECT_EQ(first.read_to, first.events[0].id);  // a full batch: read up to its last event
  ASSERT_OK_AND_ASSIGN(
      db::EventsOf none,
      store.ReadEventsOf({"00000000-0000-4000-8000-000000000001"}, 0, 10, deadline));
  EXPECT_TRUE(none.events.empty());
  EXPECT_EQ(none.read_to, all.read_to);  // nothing for it up to the newest event
}

TEST_F(WatchFilterTest, ByRequester) {
  v1::WatchApprovalsRequest req;
  req.set_requested_by("agent");
  Watch watch(*ts_, req);
  ASSERT_TRUE(AwaitWatchers(*ts_, 1));
  Create("test.effect", "carol");
  const v1::Approval mine = Create("test.effect", "agent");
  auto got = watch.Take(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].approval().id(), mine.id());
  EXPECT_EQ(watch.Take(1, absl::Milliseconds(300)).size(), 0u);
}

TEST_F(WatchFilterTest, BadFiltersAreInvalidArgumentsNamingTheField) {
  v1::WatchApprovalsRequest too_many;
  for (int i = 0; i < 101; ++i) too_many.add_approval_ids("00000000-0000-4000-8000-000000000001");
  v1::WatchApprovalsRequest not_uuid = Ids({"00000000-0000-4000-8000-000000000001", "nope"});
  v1::WatchApprovalsRequest bad_requester;
  bad_requester.set_requested_by("two words");
  for (const auto& [req, field] : std::vector<std::pair<v1::WatchApprovalsRequest, std::string>>{
           {too_many, "approval_ids"},
           {not_uuid, "approval_ids[1]"},
           {bad_requester, "requested_by"}}) {
    Watch watch(*ts_, req);
    const grpc::Status st = watch.WaitEnd();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field;
    EXPECT_NE(st.error_message().find(field), std::string::npos) << st.error_message();
  }
}

TEST_F(WatchFilterTest, ListByRequesterAndDecider) {
  const v1::Approval agents = Create("test.effect", "agent");
  const v1::Approval carols = Create("test.effect", "carol");
  Approve(carols.id());
  v1::ListApprovalsRequest by_carol;
  by_carol.set_requested_by("carol");
  auto page = ts_->Client("alice")->List(by_carol);
  ASSERT_OK(page);
  ASSERT_EQ(page->approvals_size(), 1);
  EXPECT_EQ(page->approvals(0).id(), carols.id());
  v1::ListApprovalsRequest decided_by_alice;
  decided_by_alice.set_decided_by("alice");
  page = ts_->Client("alice")->List(decided_by_alice);
  ASSERT_OK(page);
  ASSERT_EQ(page->approvals_size(), 1);
  EXPECT_EQ(page->approvals(0).id(), carols.id());
  decided_by_alice.set_requested_by("agent");
  page = ts_->Client("alice")->List(decided_by_alice);
  ASSERT_OK(page);
  EXPECT_EQ(page->approvals_size(), 0);
  (void)agents;
}

TEST_F(WatchFilterTest, APageTokenIsBoundToTheRequesterFilter) {
  for (int i = 0; i < 3; ++i) Create("test.effect", "agent");
  v1::ListApprovalsRequest req;
  req.set_requested_by("agent");
  req.set_page_size(2);
  auto page = ts_->Client("alice")->List(req);
  ASSERT_OK(page);
  ASSERT_FALSE(page->next_page_token().empty());
  req.set_page_token(page->next_page_token());
  req.set_requested_by("carol");
  auto other = ts_->Client("alice")->List(req);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument) << other.status();
}

}  // namespace
}  // namespace approvald::testing
