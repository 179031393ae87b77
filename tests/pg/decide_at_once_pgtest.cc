// A decision made in one statement (db/queries/decide_at_once.sql): for a type whose handler has
// a fixed result (noop), approvald decides without a lock round trip and without calling the
// handler. Its answers must be the full path's, and every decision it may not make at once must
// still get the full path's answer.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "client/approval_client.h"
#include "db/pg/connection_pool.h"
#include "db/pg/pg_approval_store.h"
#include "handlers/noop_handler.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_handlers.h"
#include "tests/testing/test_rules.h"
#include "tests/testing/test_server.h"

namespace approvald::testing {
namespace {

namespace v1 = approvals::v1;

// A noop type with a policy of its own.
void RegisterNoop(handlers::HandlerRegistry& registry, const std::string& name,
                  const handlers::ActionPolicy& policy) {
  handlers::ActionType type;
  type.name = name;
  type.handler_kind = "noop";
  type.policy = policy;
  type.handler = std::make_shared<handlers::NoopHandler>();
  ASSERT_OK(registry.Register(std::move(type)));
}

class DecideAtOnceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto registry = MakeTestRegistry(executions_);
    handlers::ActionPolicy self;
    self.allow_self_approval = true;
    RegisterNoop(*registry, "noop.self", self);
    handlers::ActionPolicy finance;
    finance.approver_roles = {"finance"};
    RegisterNoop(*registry, "noop.finance", finance);
    handlers::ActionPolicy quorum;
    quorum.required_approvals = 2;
    RegisterNoop(*registry, "noop.quorum", quorum);
    TestServerOptions options;
    options.registry = registry;
    options.setup_sql = kLogDecisionStatements;
    ts_ = TestServer::Start(options);
    ASSERT_NE(ts_, nullptr);
    agent_ = ts_->Client("agent");
    alice_ = ts_->Client("alice");
    bob_ = ts_->Client("bob");
    pool_ = std::make_unique<db::pg::ConnectionPool>(ts_->db().dsn(), 2);
    store_ = std::make_unique<db::pg::PgApprovalStore>(*pool_);
  }

  // The full path, as approvald took it for every decision before: row lock, handler (here
  // answering `result`), record.
  absl::StatusOr<db::ApprovalRecord> FullPath(db::Decision decision, const std::string& id,
                                              const std::string& actor, const std::string& reason,
                                              const std::string& request_id,
                                              const std::string& result = "") {
    db::DecideInput in;
    in.decision = decision;
    in.id = id;
    in.actor = actor;
    in.reason = reason;
    if (!request_id.empty()) in.request_id = request_id;
    in.deadline = absl::Now() + absl::Seconds(10);
    const TestRules rules(
        [&](db::Tx&, const db::ApprovalRecord&) -> absl::StatusOr<std::string> { return result; });
    return store_->Decide(in, rules);
  }

  v1::Approval Create(const std::string& type) {
    v1::CreateApprovalRequest req;
    req.set_action_type(type);
    req.set_summary("at once");
    auto r = agent_->Create(req);
    EXPECT_OK(r);
    return r.ok() ? *r : v1::Approval();
  }

  absl::StatusOr<v1::Approval> Approve(client::ApprovalClient& c, const std::string& id,
                                       const std::string& request_id = "", int64_t version = 0) {
    v1::ApproveRequest req;
    req.set_id(id);
    req.set_comment("fine");
    req.set_request_id(request_id);
    req.set_expected_version(version);
    return c.Approve(req);
  }

  absl::StatusOr<v1::Approval> Reject(client::ApprovalClient& c, const std::string& id) {
    v1::RejectRequest req;
    req.set_id(id);
    req.set_reason("no");
    return c.Reject(req);
  }

  absl::StatusOr<v1::Approval> Cancel(client::ApprovalClient& c, const std::string& id) {
    v1::CancelApprovalRequest req;
    req.set_id(id);
    req.set_reason("not needed");
    return c.Cancel(req);
  }

  std::string Scalar(const std::string& sql, const std::string& id) {
    std::string q = sql;
    q.replace(q.find("$id"), 3, "'" + id + "'");
    return ts_->db().Scalar(q);
  }

  // "t" if the approval was decided by the one statement, "f" if by the full path.
  std::string AtOnce(const std::string& id) { return Scalar(kDecidedAtOnce, id); }

  // `at_once` was decided by the one statement, `full` by the full path, and both recorded the
  // same row, events and request record.
  void ExpectDecidedAlike(const std::string& at_once, const std::string& full) {
    EXPECT_EQ(Recorded(at_once), Recorded(full));
    EXPECT_EQ(AtOnce(at_once), "t");
    EXPECT_EQ(AtOnce(full), "f");
  }

  // The row, its events and its request id record, without what differs between two approvals
  // (ids, times, the request id's and the call token's text).
  std::string Recorded(const std::string& id) {
    const std::string drop = "ARRAY['id','created_at','expires_at','decided_at','executed_at']";
    return Scalar(
        "SELECT (to_jsonb(a) - " + drop +
            ")::text || ' events: ' || (SELECT string_agg(type || '/' || actor || '/v' || "
            "version || '/' || (detail - 'request_id' - 'call')::text || '/' || (detail ? "
            "'request_id') || '/' || (detail ? 'call') || '/' || (approval - " +
            drop +
            ")::text, ', ' ORDER BY e.id) FROM approvald.events e WHERE e.approval_id = "
            "a.id) || ' request: ' || coalesce((SELECT string_agg(actor || '/' || "
            "method || '/' || code || '/' || reason || '/' || message || '/' || "
            "metadata::text, ',') FROM approvald.decision_requests d WHERE d.approval_id = a.id), "
            "'none') FROM approvald.approvals a WHERE id = $id",
        id);
  }

  std::shared_ptr<std::atomic<int>> executions_ = std::make_shared<std::atomic<int>>(0);
  std::unique_ptr<TestServer> ts_;
  std::unique_ptr<client::ApprovalClient> agent_, alice_, bob_;
  std::unique_ptr<db::pg::ConnectionPool> pool_;
  std::unique_ptr<db::pg::PgApprovalStore> store_;
};

TEST_F(DecideAtOnceTest, AFixedResultTypeIsApprovedWithoutItsHandlerAndRecordedAsTheFullPathDoes) {
  for (const std::string request_id : {"", "req-1"}) {
    SCOPED_TRACE("request id: " + request_id);
    const v1::Approval at_once = Create("test.fixed");
    const v1::Approval full = Create("test.fixed");
    ASSERT_OK_AND_ASSIGN(v1::Approval a, Approve(*alice_, at_once.id(), request_id));
    EXPECT_EQ(executions_->load(), 0);  // decided in one statement: Execute was not called
    EXPECT_EQ(a.status(), v1::APPROVAL_STATUS_APPROVED);
    EXPECT_EQ(a.version(), 2);
    EXPECT_EQ(a.decided_by(), "alice");
    EXPECT_EQ(a.decision_reason(), "fine");
    EXPECT_TRUE(a.has_decide_time());
    EXPECT_TRUE(a.has_execute_time());
    EXPECT_TRUE(a.execution_result().fields().at("fixed").bool_value());
    ASSERT_OK(FullPath(db::Decision::kApprove, full.id(), "alice", "fine",
                       request_id.empty() ? "" : "req-2", R"({"fixed": true})"));
    // The same row, events and request record, field for field.
    ExpectDecidedAlike(at_once.id(), full.id());
    EXPECT_NE(Recorded(at_once.id()).find("approved/alice/v2"), std::string::npos)
        << Recorded(at_once.id());
  }
  // Rejects and cancels too.
  for (const std::string request_id : {"", "req-3"}) {
    SCOPED_TRACE("request id: " + request_id);
    const v1::Approval r1 = Create("noop");
    const v1::Approval r2 = Create("noop");
    v1::RejectRequest reject;
    reject.set_id(r1.id());
    reject.set_reason("no");
    reject.set_request_id(request_id);
    ASSERT_OK(bob_->Reject(reject));
    ASSERT_OK(
        FullPath(db::Decision::kReject, r2.id(), "bob", "no", request_id.empty() ? "" : "req-4"));
    ExpectDecidedAlike(r1.id(), r2.id());
    const v1::Approval c1 = Create("noop");
    const v1::Approval c2 = Create("noop");
    v1::CancelApprovalRequest cancel;
    cancel.set_id(c1.id());
    cancel.set_reason("not needed");
    cancel.set_request_id(request_id);
    ASSERT_OK_AND_ASSIGN(v1::Approval cancelled, agent_->Cancel(cancel));
    EXPECT_EQ(cancelled.status(), v1::APPROVAL_STATUS_CANCELLED);
    ASSERT_OK(FullPath(db::Decision::kCancel, c2.id(), "agent", "not needed",
                       request_id.empty() ? "" : "req-5"));
    ExpectDecidedAlike(c1.id(), c2.id());
  }
  EXPECT_EQ(executions_->load(), 0);
}

TEST_F(DecideAtOnceTest, ARequestIdDecidedAtOnceIsReplayedAndNeverReusedForAnotherApproval) {
  const v1::Approval a = Create("noop");
  ASSERT_OK_AND_ASSIGN(v1::Approval first, Approve(*alice_, a.id(), "req-a"));
  ASSERT_OK_AND_ASSIGN(v1::Approval again, Approve(*alice_, a.id(), "req-a"));
  EXPECT_EQ(again.status(), v1::APPROVAL_STATUS_APPROVED);
  EXPECT_EQ(again.version(), first.version());
  EXPECT_EQ(Scalar("SELECT count(*) FROM approvald.events WHERE approval_id = $id", a.id()), "2");
  // The same request id on another approval, or by the same actor for another method.
  const v1::Approval b = Create("noop");
  auto reused = Approve(*alice_, b.id(), "req-a");
  EXPECT_CODE(reused, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Scalar("SELECT status FROM approvald.approvals WHERE id = $id", b.id()), "pending");
  // Another actor's request id of the same text is theirs.
  ASSERT_OK(Approve(*bob_, b.id(), "req-a"));
  // A first outcome that was an error is replayed too, even once the call could succeed.
  const v1::Approval c = Create("noop");
  auto stale = Approve(*alice_, c.id(), "req-c", /*version=*/7);
  EXPECT_EQ(client::ReasonOf(stale.status()), "VERSION_MISMATCH");
  auto replayed = Approve(*alice_, c.id(), "req-c");
  EXPECT_EQ(client::ReasonOf(replayed.status()), "VERSION_MISMATCH");
  EXPECT_EQ(Scalar("SELECT status FROM approvald.approvals WHERE id = $id", c.id()), "pending");
}

// A request id whose first use commits while the statement waits for it (another approval):
// the statement fails on the request records' key, and the full path answers as it would
// have, INVALID_ARGUMENT, rather than the raw constraint violation.
TEST_F(DecideAtOnceTest, ARequestIdFirstUsedConcurrentlyElsewhereGetsTheFullPathsAnswer) {
  const v1::Approval first = Create("noop");
  const v1::Approval second = Create("noop");
  auto holder = ts_->db().Connect();
  ASSERT_NE(holder, nullptr);
  ASSERT_OK(
      holder->ExecScript("BEGIN; INSERT INTO approvald.decision_requests (actor, request_id, "
                         "approval_id, method, code) "
                         "VALUES ('alice', 'req-x', '" +
                         first.id() + "', 'approve', 0)"));
  absl::StatusOr<v1::Approval> answer;
  std::thread call([&] { answer = Approve(*alice_, second.id(), "req-x"); });
  // The statement waits on the key the open transaction inserted.
  bool waiting = false;
  for (int i = 0; i < 1000 && !waiting; ++i) {
    waiting = ts_->db().Scalar(
                  "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                  "'Lock' AND datname = current_database() AND query LIKE "
                  "'-- Decides approval%'") == "1";
    if (!waiting) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(waiting);
  ASSERT_OK(holder->ExecScript("COMMIT"));
  call.join();
  EXPECT_CODE(answer, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Scalar("SELECT status FROM approvald.approvals WHERE id = $id", second.id()),
            "pending");
}

TEST_F(DecideAtOnceTest, EveryDecisionItMayNotMakeGetsTheFullPathsAnswer) {
  // The requester approving their own approval.
  const v1::Approval own = Create("noop");
  auto self = Approve(*agent_, own.id());
  EXPECT_CODE(self, absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(client::ReasonOf(self.status()), "SELF_APPROVAL");
  ASSERT_OK_AND_ASSIGN(v1::Approval allowed, Approve(*agent_, Create("noop.self").id()));
  EXPECT_EQ(allowed.status(), v1::APPROVAL_STATUS_APPROVED);
  EXPECT_EQ(AtOnce(allowed.id()), "t");

  // A reviewer without the type's approver role, approving or rejecting.
  const v1::Approval finance = Create("noop.finance");
  auto role = Approve(*alice_, finance.id());
  EXPECT_CODE(role, absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(client::ReasonOf(role.status()), "ROLE_REQUIRED");
  EXPECT_EQ(client::ReasonOf(Reject(*alice_, finance.id()).status()), "ROLE_REQUIRED");

  // A quorum: the first approval is a vote, the second runs the action.
  const v1::Approval quorum = Create("noop.quorum");
  ASSERT_OK_AND_ASSIGN(v1::Approval voted, Approve(*alice_, quorum.id()));
  EXPECT_EQ(voted.status(), v1::APPROVAL_STATUS_PENDING);
  EXPECT_EQ(voted.version(), 2);
  auto again = Approve(*alice_, quorum.id());
  EXPECT_EQ(client::ReasonOf(again.status()), "ALREADY_VOTED");
  ASSERT_OK_AND_ASSIGN(v1::Approval done, Approve(*bob_, quorum.id()));
  EXPECT_EQ(done.status(), v1::APPROVAL_STATUS_APPROVED);
  EXPECT_EQ(done.version(), 3);
  EXPECT_TRUE(done.execution_result().fields().at("ok").bool_value());
  EXPECT_EQ(AtOnce(quorum.id()), "f");  // a quorum is counted under the row lock

  // Expired by the database clock: EXPIRED, and the expiry is recorded.
  const v1::Approval late = Create("noop");
  Scalar(
      "UPDATE approvald.approvals SET expires_at = created_at + interval '1 microsecond' "
      "WHERE id = $id RETURNING 1",
      late.id());
  auto expired = Approve(*alice_, late.id());
  EXPECT_CODE(expired, absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client::ReasonOf(expired.status()), "EXPIRED");
  EXPECT_EQ(
      Scalar("SELECT status || ' v' || version FROM approvald.approvals WHERE id = $id", late.id()),
      "expired v2");
  EXPECT_EQ(AtOnce(late.id()), "f");

  // Already decided, another version, not found.
  const v1::Approval decided = Create("noop");
  ASSERT_OK(Approve(*alice_, decided.id()));
  auto twice = Reject(*bob_, decided.id());
  EXPECT_CODE(twice, absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client::ReasonOf(twice.status()), "ALREADY_PROCESSED");
  const v1::Approval versioned = Create("noop");
  auto mismatch = Approve(*alice_, versioned.id(), "", /*version=*/5);
  EXPECT_CODE(mismatch, absl::StatusCode::kAborted);
  EXPECT_EQ(client::ReasonOf(mismatch.status()), "VERSION_MISMATCH");
  ASSERT_OK(Approve(*alice_, versioned.id(), "", /*version=*/1));
  EXPECT_EQ(AtOnce(versioned.id()), "t");
  // A version beyond PostgreSQL's integer range is another version, not an error of its own.
  const v1::Approval huge = Create("noop");
  auto too_big = Approve(*alice_, huge.id(), "", /*version=*/INT64_MAX);
  EXPECT_CODE(too_big, absl::StatusCode::kAborted);
  EXPECT_EQ(client::ReasonOf(too_big.status()), "VERSION_MISMATCH");
  EXPECT_CODE(Approve(*alice_, "00000000-0000-4000-8000-000000000000"),
              absl::StatusCode::kNotFound);

  // Only the requester cancels.
  const v1::Approval other = Create("noop");
  EXPECT_CODE(Cancel(*bob_, other.id()), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Scalar("SELECT status FROM approvald.approvals WHERE id = $id", other.id()), "pending");

  // A type whose handler writes is never decided at once.
  const v1::Approval effect = Create("test.effect");
  ASSERT_OK(Approve(*alice_, effect.id()));
  EXPECT_EQ(executions_->load(), 1);
  EXPECT_EQ(AtOnce(effect.id()), "f");
}

// A vote cast while the type needed two, then the type lowered to one: the next approval is
// decided in one statement, and its answer and its event both carry the earlier vote (the
// statement reads the votes once for both).
TEST_F(DecideAtOnceTest, VotesCastBeforeTheQuorumWasLoweredAreInTheAnswerAndTheEvent) {
  const v1::Approval quorum = Create("noop.quorum");
  ASSERT_OK_AND_ASSIGN(v1::Approval voted, Approve(*alice_, quorum.id()));
  ASSERT_EQ(voted.status(), v1::APPROVAL_STATUS_PENDING);
  auto lowered = MakeTestRegistry(executions_);
  RegisterNoop(*lowered, "noop.quorum", handlers::ActionPolicy{});  // one approval is enough
  ASSERT_OK(ts_->server().SetActionTypes(lowered));

  ASSERT_OK_AND_ASSIGN(v1::Approval done, Approve(*bob_, quorum.id()));
  EXPECT_EQ(done.status(), v1::APPROVAL_STATUS_APPROVED);
  EXPECT_EQ(done.decided_by(), "bob");
  EXPECT_EQ(AtOnce(quorum.id()), "t");
  ASSERT_EQ(done.votes_size(), 1);
  EXPECT_EQ(done.votes(0).voter(), "alice");
  EXPECT_EQ(Scalar("SELECT string_agg(v->>'voter', ',') FROM approvald.events e, "
                   "jsonb_array_elements(e.approval->'votes') v "
                   "WHERE e.approval_id = $id AND e.type = 'approved'",
                   quorum.id()),
            "alice");
}

}  // namespace
}  // namespace approvald::testing
