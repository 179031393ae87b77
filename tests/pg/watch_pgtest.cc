// WatchApprovals and expiry through the real gRPC server and PostgreSQL: live delivery, resume
// without gaps or duplicates, the held-open-transaction case, filters, and the sweeper.

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <latch>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "db/pg/connection_pool.h"
#include "db/pg/pg_approval_store.h"
#include "db/pg/pg_events.h"
#include "server/expiry_sweeper.h"
#include "server/watch/event_hub.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_server.h"
#include "tests/testing/watch_stream.h"

namespace approvald::testing {
namespace {

namespace v1 = approvals::v1;

using WatchTest = WatchServerTest;

TEST_F(WatchTest, CreatedThenApprovedArriveWithTheApprovalAsItStood) {
  Watch watch(*ts_, v1::WatchApprovalsRequest());
  ASSERT_TRUE(AwaitWatchers(*ts_, 1));
  v1::Approval a = Create();
  Approve(a.id());
  auto events = watch.Take(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type(), v1::EVENT_TYPE_CREATED);
  EXPECT_EQ(events[0].actor(), "agent");
  EXPECT_EQ(events[0].approval().id(), a.id());
  EXPECT_EQ(events[0].approval().status(), v1::APPROVAL_STATUS_PENDING);
  EXPECT_EQ(events[0].approval().version(), 1);
  EXPECT_EQ(events[1].type(), v1::EVENT_TYPE_APPROVED);
  EXPECT_EQ(events[1].actor(), "alice");
  EXPECT_EQ(events[1].approval().status(), v1::APPROVAL_STATUS_APPROVED);
  EXPECT_EQ(events[1].approval().version(), 2);
  EXPECT_EQ(events[1].approval().decided_by(), "alice");
  EXPECT_TRUE(events[1].approval().has_execute_time());
  EXPECT_LT(events[0].event_id(), events[1].event_id());
  EXPECT_TRUE(events[1].has_event_time());
}

TEST_F(WatchTest, AResumedWatcherGetsWhatItMissedOnceEachInOrder) {
  int64_t last_seen = 0;
  v1::Approval a;
  {
    Watch watch(*ts_, v1::WatchApprovalsRequest());
    ASSERT_TRUE(AwaitWatchers(*ts_, 1));
    a = Create();
    auto first = watch.Take(1);
    ASSERT_EQ(first.size(), 1u);
    last_seen = first[0].event_id();
  }  // disconnects
  ASSERT_TRUE(AwaitWatchers(*ts_, 0));
  v1::Approval b = Create();  // three events while away
  Approve(a.id());
  Reject(b.id());
  v1::WatchApprovalsRequest resume;
  resume.set_after_event_id(last_seen);
  Watch watch(*ts_, resume);
  auto missed = watch.Take(3);
  ASSERT_EQ(missed.size(), 3u);
  EXPECT_EQ(missed[0].type(), v1::EVENT_TYPE_CREATED);
  EXPECT_EQ(missed[0].approval().id(), b.id());
  EXPECT_EQ(missed[1].type(), v1::EVENT_TYPE_APPROVED);
  EXPECT_EQ(missed[1].approval().id(), a.id());
  EXPECT_EQ(missed[2].type(), v1::EVENT_TYPE_REJECTED);
  EXPECT_EQ(missed[2].approval().id(), b.id());
  EXPECT_LT(missed[0].event_id(), missed[1].event_id());
  EXPECT_LT(missed[1].event_id(), missed[2].event_id());
  // Then it continues live, with nothing repeated.
  ASSERT_TRUE(AwaitWatchers(*ts_, 1));
  v1::Approval c = Create();
  auto live = watch.Take(1);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].approval().id(), c.id());
  EXPECT_EQ(watch.Take(1, absl::Milliseconds(300)).size(), 0u);
}

TEST_F(WatchTest, ReplayOfALongHistoryIsBatchedAndGapFree) {
  std::vector<std::string> ids;
  for (int i = 0; i < 30; ++i) ids.push_back(Create("noop").id());
  v1::WatchApprovalsRequest all;
  all.set_after_event_id(0);
  all.set_after_event_id(1);  // everything (ids are far above 1)
  Watch watch(*ts_, all);
  auto events = watch.Take(30);
  ASSERT_EQ(events.size(), 30u);
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(events[i].approval().id(), ids[i]);
}

TEST_F(WatchTest, AnEventIsHeldBackWhileAnOlderTransactionIsOpen) {
  Watch watch(*ts_, v1::WatchApprovalsRequest());
  ASSERT_TRUE(AwaitWatchers(*ts_, 1));
  // T1 starts first (takes its transaction id) and stays open.
  auto t1 = ts_->db().Connect();
  ASSERT_OK(t1->ExecScript("BEGIN; SELECT pg_current_xact_id()"));
  // T2 (a whole CreateApproval) commits while T1 is open.
  v1::Approval later = Create();
  // T1 now writes its event, below T2's, and is still open.
  ASSERT_OK(t1->ExecScript(
      "INSERT INTO approvald.approvals (id, action_type, requested_by, expires_at) VALUES "
      "('11111111-1111-4111-8111-111111111111', 'noop', 'agent', now() + interval '1 hour');"
      "INSERT INTO approvald.events (approval_id, type, actor, version) VALUES "
      "('11111111-1111-4111-8111-111111111111', 'created', 'agent', 1)"));
  // T2's event must not be delivered yet: a reader that resumed after it would lose T1's.
  EXPECT_EQ(watch.Take(1, absl::Milliseconds(500)).size(), 0u);
  ASSERT_OK(t1->ExecScript("COMMIT"));
  auto events = watch.Take(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].approval().id(), "11111111-1111-4111-8111-111111111111");
  EXPECT_EQ(events[1].approval().id(), later.id());
  EXPECT_LT(events[0].event_id(), events[1].event_id());
}

TEST_F(WatchTest, Filters) {
  v1::WatchApprovalsRequest approved_effects;
  approved_effects.add_statuses(v1::APPROVAL_STATUS_APPROVED);
  approved_effects.set_action_type("test.effect");
  Watch filtered(*ts_, approved_effects);
  v1::WatchApprovalsRequest pending;
  pending.add_statuses(v1::APPROVAL_STATUS_PENDING);
  Watch pending_only(*ts_, pending);
  ASSERT_TRUE(AwaitWatchers(*ts_, 2));
  v1::Approval noop = Create("noop");
  v1::Approval effect = Create("test.effect");
  v1::Approval rejected = Create("test.effect");
  Approve(noop.id());
  Reject(rejected.id());
  Approve(effect.id());
  auto got = filtered.Take(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].approval().id(), effect.id());
  EXPECT_EQ(got[0].type(), v1::EVENT_TYPE_APPROVED);
  EXPECT_EQ(filtered.Take(1, absl::Milliseconds(300)).size(), 0u);
  auto created = pending_only.Take(3);
  ASSERT_EQ(created.size(), 3u);
  for (const auto& e : created) EXPECT_EQ(e.type(), v1::EVENT_TYPE_CREATED);
  EXPECT_EQ(pending_only.Take(1, absl::Milliseconds(300)).size(), 0u);
}

TEST_F(WatchTest, BadRequestsAndShutdown) {
  v1::WatchApprovalsRequest bad;
  bad.set_after_event_id(-1);
  Watch invalid(*ts_, bad);
  EXPECT_EQ(invalid.WaitEnd().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  Watch anonymous(*ts_, v1::WatchApprovalsRequest(), "nobody");
  EXPECT_EQ(anonymous.WaitEnd().error_code(), grpc::StatusCode::UNAUTHENTICATED);

  Watch live(*ts_, v1::WatchApprovalsRequest());
  ASSERT_TRUE(AwaitWatchers(*ts_, 1));
  Create();
  ASSERT_EQ(live.Take(1).size(), 1u);
  ts_->server().Shutdown(absl::Seconds(5));
  grpc::Status end = live.WaitEnd();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(end.error_message().find("after_event_id="), std::string::npos) << end.error_message();
}

// A resume point above every event ever committed was never sent to anyone: refused at once,
// naming the field, rather than a stream that waits for ids that may never come. The newest
// event itself is a valid resume point.
TEST_F(WatchTest, AResumePointBeyondTheNewestEventIsInvalidArgument) {
  Create();
  v1::WatchApprovalsRequest all;
  all.set_after_event_id(1);
  Watch replay(*ts_, all);
  auto events = replay.Take(1);
  ASSERT_EQ(events.size(), 1u);
  const int64_t newest = events[0].event_id();

  v1::WatchApprovalsRequest future;
  future.set_after_event_id(newest + 1'000'000'000'000'000);
  Watch refused(*ts_, future);
  grpc::Status end = refused.WaitEnd();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << end.error_message();
  EXPECT_NE(end.error_message().find("after_event_id"), std::string::npos) << end.error_message();
  EXPECT_NE(end.error_message().find("beyond the newest event"), std::string::npos);

  v1::WatchApprovalsRequest at_newest;
  at_newest.set_after_event_id(newest);
  Watch resumed(*ts_, at_newest);
  ASSERT_TRUE(AwaitWatchers(*ts_, 2));  // `replay` and `resumed`, both live
  const v1::Approval next = Create();
  auto live = resumed.Take(1);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].approval().id(), next.id());
}

TEST_F(WatchTest, ShutdownEndsEveryLiveStreamWithWhereToResume) {
  std::vector<std::unique_ptr<Watch>> watches;
  for (int i = 0; i < 50; ++i) {
    watches.push_back(std::make_unique<Watch>(*ts_, v1::WatchApprovalsRequest()));
  }
  ASSERT_TRUE(AwaitWatchers(*ts_, 50));
  Create();
  for (auto& w : watches) ASSERT_EQ(w->Take(1).size(), 1u);
  ts_->server().Shutdown(absl::Seconds(5));
  for (auto& w : watches) {
    grpc::Status end = w->WaitEnd();
    EXPECT_EQ(end.error_code(), grpc::StatusCode::UNAVAILABLE) << end.error_message();
    EXPECT_NE(end.error_message().find("after_event_id="), std::string::npos)
        << end.error_message();
  }
}

TEST_F(WatchTest, AStreamStillReplayingWhenTheHubStopsEndsAtItsNextBatch) {
  // 1,500 events in the log: three replay batches of 500.
  ts_->db().Scalar(
      "WITH inserted AS (INSERT INTO approvald.approvals (id, action_type, requested_by, "
      "expires_at) "
      "SELECT gen_random_uuid(), 'test.effect', 'agent', now() + interval '1 hour' "
      "FROM generate_series(1, 1500) RETURNING *), events AS (INSERT INTO approvald.events "
      "(approval_id, type, actor, version, approval) SELECT id, 'created', requested_by, version, "
      "to_jsonb(inserted) || '{\"votes\": []}' FROM inserted RETURNING id) "
      "SELECT count(*) FROM events");
  const int64_t first = std::stoll(ts_->db().Scalar("SELECT min(id) FROM approvald.events"));
  ts_->server().hub().Stop();  // shutting down
  v1::WatchApprovalsRequest resume;
  resume.set_after_event_id(first - 1);
  Watch watch(*ts_, resume);
  grpc::Status end = watch.WaitEnd();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::UNAVAILABLE) << end.error_message();
  EXPECT_NE(end.error_message().find("after_event_id="), std::string::npos) << end.error_message();
  // Ended after its first batch, not after replaying the whole log.
  EXPECT_LE(watch.Take(1500, absl::Seconds(1)).size(), 500u);
}

TEST_F(WatchTest, ManyWatchersShareOneListener) {
  std::vector<std::unique_ptr<Watch>> watches;
  for (int i = 0; i < 50; ++i) {
    watches.push_back(std::make_unique<Watch>(*ts_, v1::WatchApprovalsRequest()));
  }
  ASSERT_TRUE(AwaitWatchers(*ts_, 50));
  // One listener connection (its session is named for it), not fifty. The listener's thread
  // connects on its own after start-up (the streams attach without waiting for it): wait for
  // its session first.
  const std::string listeners =
      "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
      "AND application_name = 'approvald-listener'";
  for (int i = 0; i < 1000 && ts_->db().Scalar(listeners) == "0"; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(ts_->db().Scalar(listeners), "1");
  v1::Approval a = Create();
  for (auto& w : watches) {
    auto e = w->Take(1);
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].approval().id(), a.id());
  }
  watches.clear();  // cancelled streams free their slots promptly
  EXPECT_TRUE(AwaitWatchers(*ts_, 0));
}

TEST_F(WatchTest, SweeperExpiresEachDueApprovalExactlyOnceAcrossReplicas) {
  constexpr int kDue = 150;
  for (int i = 0; i < kDue; ++i) Create("noop");
  Create("noop");  // not due
  ts_->db().Scalar(
      "UPDATE approvald.approvals SET expires_at = created_at + interval '1 microsecond' "
      "WHERE id IN (SELECT id FROM approvald.approvals ORDER BY created_at LIMIT 150)");
  // Two "replicas" sweep the same database at once.
  db::pg::ConnectionPool pool_a(ts_->db().dsn(), 2), pool_b(ts_->db().dsn(), 2);
  db::pg::PgApprovalStore store_a(pool_a), store_b(pool_b);
  server::ExpirySweeper sweeper_a(store_a, absl::Seconds(1), nullptr, 10);
  server::ExpirySweeper sweeper_b(store_b, absl::Seconds(1), nullptr, 10);
  absl::StatusOr<int> ra, rb;
  std::latch start(2);
  std::thread ta([&] {
    start.arrive_and_wait();
    ra = sweeper_a.SweepOnce();
  });
  std::thread tb([&] {
    start.arrive_and_wait();
    rb = sweeper_b.SweepOnce();
  });
  ta.join();
  tb.join();
  ASSERT_OK(ra);
  ASSERT_OK(rb);
  EXPECT_EQ(*ra + *rb, kDue);
  EXPECT_EQ(ts_->db().Scalar("SELECT count(*) FROM approvald.approvals WHERE status = 'expired'"),
            "150");
  EXPECT_EQ(ts_->db().Scalar("SELECT count(*) FROM approvald.events WHERE type = 'expired'"),
            "150");
  EXPECT_EQ(ts_->db().Scalar("SELECT count(DISTINCT approval_id) FROM approvald.events "
                             "WHERE type = 'expired'"),
            "150");
  ASSERT_OK_AND_ASSIGN(int again, sweeper_a.SweepOnce());
  EXPECT_EQ(again, 0);
}

TEST(WatchSweeperTest, TheBackgroundSweeperExpiresByItself) {
  TestServerOptions options;
  options.expiry_interval = absl::Milliseconds(100);
  auto ts = TestServer::Start(options);
  ASSERT_NE(ts, nullptr);
  Watch watch(*ts, v1::WatchApprovalsRequest());
  ASSERT_TRUE(AwaitWatchers(*ts, 1));
  v1::CreateApprovalRequest req;
  req.set_action_type("noop");
  req.mutable_ttl()->set_nanos(200 * 1000 * 1000);  // 200 ms
  ASSERT_OK_AND_ASSIGN(v1::Approval a, ts->Client("agent")->Create(req));
  auto events = watch.Take(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].type(), v1::EVENT_TYPE_EXPIRED);
  EXPECT_EQ(events[1].actor(), "approvald");
  EXPECT_EQ(events[1].approval().status(), v1::APPROVAL_STATUS_EXPIRED);
  v1::ApproveRequest approve;
  approve.set_id(a.id());
  EXPECT_EQ(client::ReasonOf(ts->Client("alice")->Approve(approve).status()), "EXPIRED");
}

// The service pokes the hub after each call that commits events (create, approve, reject), and
// the expiry sweeper after each batch, so that this daemon's watchers get them at once, not at
// the next poll of the log.
TEST(ServicePokeTest, CallsThatWriteEventsWakeTheListenerWithoutWaitingForItsPoll) {
  TestServerOptions options;
  options.event_poll_interval = absl::Seconds(30);  // a poll that never comes in this test
  options.expiry_interval = absl::Milliseconds(200);
  auto ts = TestServer::Start(options);
  ASSERT_NE(ts, nullptr);
  Watch watch(*ts, v1::WatchApprovalsRequest());
  ASSERT_TRUE(AwaitWatchers(*ts, 1));
  absl::SleepFor(absl::Milliseconds(200));  // the attach's own catch-up read is over
  // Far below the 30 s poll. Not tighter: any transaction open anywhere in the shared test
  // cluster (other tests run alongside) holds delivery back until it ends.
  const absl::Duration prompt = absl::Seconds(10);

  v1::CreateApprovalRequest create;
  create.set_action_type("test.effect");
  auto a = ts->Client("agent")->Create(create);
  ASSERT_OK(a);
  auto events = watch.Take(1, prompt);
  ASSERT_EQ(events.size(), 1u) << "create did not wake the listener";
  EXPECT_EQ(events[0].type(), v1::EVENT_TYPE_CREATED);

  v1::ApproveRequest approve;
  approve.set_id(a->id());
  ASSERT_OK(ts->Client("alice")->Approve(approve));
  events = watch.Take(1, prompt);
  ASSERT_EQ(events.size(), 1u) << "approve did not wake the listener";
  EXPECT_EQ(events[0].type(), v1::EVENT_TYPE_APPROVED);

  auto b = ts->Client("agent")->Create(create);
  ASSERT_OK(b);
  v1::RejectRequest reject;
  reject.set_id(b->id());
  reject.set_reason("no");
  ASSERT_OK(ts->Client("bob")->Reject(reject));
  events = watch.Take(2, prompt);
  ASSERT_EQ(events.size(), 2u) << "reject did not wake the listener";
  EXPECT_EQ(events[1].type(), v1::EVENT_TYPE_REJECTED);

  // The expiry sweeper's EXPIRED events wake it too.
  create.mutable_ttl()->set_seconds(1);
  ASSERT_OK(ts->Client("agent")->Create(create));
  events = watch.Take(2, absl::Seconds(1) + prompt);
  ASSERT_EQ(events.size(), 2u) << "the sweeper did not wake the listener";
  EXPECT_EQ(events[1].type(), v1::EVENT_TYPE_EXPIRED);
}

}  // namespace
}  // namespace approvald::testing

namespace approvald::testing {
namespace {

TEST(WatchOverflowTest, ASlowWatcherIsToldWhereToResumeAndLosesNothingWhileAFastOneGoesOn) {
  TestServerOptions options;
  options.watch_buffer = 4;
  auto ts = TestServer::Start(options);
  ASSERT_NE(ts, nullptr);
  // A reader that does not read: with a small HTTP/2 window, flow control soon stops the
  // server's writes.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 4096);
  auto stub = v1::ApprovalService::NewStub(
      grpc::CreateCustomChannel(ts->target(), grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer tok-alice");
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::WatchApprovalsRequest from_start;
  from_start.set_after_event_id(1);
  auto reader = stub->WatchApprovals(&ctx, from_start);
  ASSERT_TRUE(AwaitWatchers(*ts, 1));  // nothing to replay after event 1: live at once
  // A fast watcher alongside, reading as events come.
  Watch fast(*ts, v1::WatchApprovalsRequest());
  ASSERT_TRUE(AwaitWatchers(*ts, 2));
  constexpr int kCreates = 150;
  auto agent = ts->Client("agent");
  std::vector<std::string> ids;
  for (int i = 0; i < kCreates; ++i) {
    v1::CreateApprovalRequest req;
    req.set_action_type("noop");
    req.set_summary(std::string(1500, 'a' + i % 26));  // ~2 KB per event
    auto r = agent->Create(req);
    ASSERT_OK(r);
    ids.push_back(r->id());
    // The fast watcher gets each event while the slow one's buffer fills and overflows.
    std::vector<v1::ApprovalEvent> got = fast.Take(1);
    ASSERT_EQ(got.size(), 1u) << "the fast watcher stalled at event " << i;
    EXPECT_EQ(got[0].approval().id(), r->id());
  }
  std::vector<std::string> seen;
  int64_t last = 0;
  v1::ApprovalEvent e;
  while (reader->Read(&e)) {
    seen.push_back(e.approval().id());
    last = e.event_id();
  }
  grpc::Status st = reader->Finish();
  ASSERT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  // The server names the last event it knows was written; the client may have one more.
  const size_t at = st.error_message().find("resume with after_event_id=");
  ASSERT_NE(at, std::string::npos) << st.error_message();
  EXPECT_LE(std::stoll(st.error_message().substr(at + 27)), last);
  EXPECT_LT(seen.size(), ids.size());
  // The fast watcher's stream goes on after the slow one was cut off.
  v1::CreateApprovalRequest one_more;
  one_more.set_action_type("noop");
  auto more = agent->Create(one_more);
  ASSERT_OK(more);
  std::vector<v1::ApprovalEvent> after = fast.Take(1);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].approval().id(), more->id());
  ids.push_back(more->id());  // the resumed slow watcher gets it too
  // Resuming where it stopped delivers the rest: nothing lost, nothing twice.
  grpc::ClientContext ctx2;
  ctx2.AddMetadata("authorization", "Bearer tok-alice");
  ctx2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::WatchApprovalsRequest resume;
  resume.set_after_event_id(last);
  auto reader2 = stub->WatchApprovals(&ctx2, resume);
  while (seen.size() < ids.size() && reader2->Read(&e)) seen.push_back(e.approval().id());
  ctx2.TryCancel();
  grpc::Status end2 = reader2->Finish();
  EXPECT_EQ(seen.size(), ids.size())
      << "the resumed stream ended with " << end2.error_code() << ": " << end2.error_message();
  for (size_t i = 0; i < std::min(seen.size(), ids.size()); ++i) {
    ASSERT_EQ(seen[i], ids[i]) << "at " << i << " of " << ids.size() << " (resumed after event "
                               << last << ")";
  }
}

// The hub without a gRPC server: a sink that counts what it gets.
class CountingSink : public server::EventSink {
 public:
  void OnEvent(const std::shared_ptr<const v1::ApprovalEvent>& event, size_t) override {
    std::lock_guard<std::mutex> lock(mu_);
    ids_.push_back(event->approval().id());
    changed_.notify_all();
  }
  void OnHubStopped(int64_t) override {}
  // Waits up to `timeout` for `n` events; how many there are.
  size_t Await(size_t n, absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] { return ids_.size() >= n; });
    return ids_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<std::string> ids_ ABSL_GUARDED_BY(mu_);
};

// Commits one approval and its 'created' event on a connection of its own (as another replica).
void CommitEvent(TestDatabase& db, const std::string& id) {
  auto conn = db.Connect();
  ASSERT_OK(conn->ExecScript(absl::StrCat(
      "BEGIN; INSERT INTO approvald.approvals (id, action_type, requested_by, expires_at) VALUES "
      "('",
      id,
      "', 'noop', 'agent', now() + interval '1 hour'); INSERT INTO approvald.events (approval_id, "
      "type, actor, version) VALUES ('",
      id, "', 'created', 'agent', 1); COMMIT")));
}

TEST(EventHubTest, NoNotifyTriggerSlowsCommitsAndTheListenerPollsTheLog) {
  auto db = TestDatabase::Create();
  ASSERT_NE(db, nullptr);
  // No trigger on the event log calls pg_notify (its commit-time lock serialises commits).
  ASSERT_OK_AND_ASSIGN(
      db::Rows rows,
      db->Connect()->Exec(
          db::Query{
              "notify_triggers",
              "SELECT count(*)::int AS n FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
              "WHERE t.tgrelid = 'approvald.events'::regclass AND p.prosrc LIKE '%pg_notify%'"},
          {}));
  EXPECT_EQ(rows.GetInt(0, "n").value_or(-1), 0);

  server::EventHub hub(db::pg::PgEventLogConnector(db->dsn()), nullptr, absl::Milliseconds(50));
  ASSERT_OK(hub.Start());
  CountingSink sink;
  ASSERT_TRUE(hub.AttachAtHead(&sink));
  CommitEvent(*db, "21111111-1111-4111-8111-111111111111");
  EXPECT_EQ(sink.Await(1, absl::Seconds(5)), 1u);  // found by the next poll
  hub.Detach(&sink);
  hub.Stop();
}

// A hub whose poll never comes within a test (30 s), with one sink attached and its attach's
// own catch-up read over: whatever arrives was read because of a poke.
class PokedHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    ASSERT_NE(db_, nullptr);
    hub_ = std::make_unique<server::EventHub>(db::pg::PgEventLogConnector(db_->dsn()), nullptr,
                                              absl::Seconds(30));
    ASSERT_OK(hub_->Start());
    hub_->Poke();  // nobody watches: does nothing
    ASSERT_TRUE(hub_->AttachAtHead(&sink_));
    absl::SleepFor(absl::Milliseconds(200));
  }
  void TearDown() override {
    if (hub_ == nullptr) return;
    hub_->Detach(&sink_);
    hub_->Stop();
  }
  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<server::EventHub> hub_;
  CountingSink sink_;
};

// The bounds below are far under the 30 s poll, and not tighter: any transaction open anywhere
// in the shared test cluster (other tests run alongside) holds delivery back until it ends.
TEST_F(PokedHubTest, APokeReadsTheLogAtOnceInsteadOfAtTheNextPoll) {
  CommitEvent(*db_, "31111111-1111-4111-8111-111111111111");
  EXPECT_EQ(sink_.Await(1, absl::Milliseconds(500)), 0u);  // no notification, no poll yet
  const absl::Time poked = absl::Now();
  hub_->Poke();
  EXPECT_EQ(sink_.Await(1, absl::Seconds(10)), 1u);
  EXPECT_LT(absl::Now() - poked, absl::Seconds(8));
}

TEST_F(PokedHubTest, APokedEventHeldBackByAnOlderTransactionArrivesSoonAfterItEnds) {
  auto older = db_->Connect();
  ASSERT_OK(older->ExecScript("BEGIN; SELECT pg_current_xact_id()"));  // holds delivery back
  CommitEvent(*db_, "41111111-1111-4111-8111-111111111111");
  hub_->Poke();
  EXPECT_EQ(sink_.Await(1, absl::Milliseconds(500)), 0u);  // held back: not deliverable yet
  ASSERT_OK(older->ExecScript("COMMIT"));
  const absl::Time ended = absl::Now();
  EXPECT_EQ(sink_.Await(1, absl::Seconds(10)), 1u);  // the hub chased it, with no other poke
  EXPECT_LT(absl::Now() - ended, absl::Seconds(8));
}

}  // namespace
}  // namespace approvald::testing
