// A decision made in one statement (db/queries/decide_at_once.sql): for a type whose handler has
// a fixed result (noop), approvald decides without a lock round trip and without calling the
// handler. Its answers must be the full path's, and every decision it may not make at once must
// still get the full path's answer.

#include <gtest/gtest.h>

#include <atomic>
#include <memory>

#include "client/approval_client.h"
#include "handlers/noop_handler.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_handlers.h"
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
    ts_ = TestServer::Start(options);
    ASSERT_NE(ts_, nullptr);
    agent_ = ts_->Client("agent");
    alice_ = ts_->Client("alice");
    bob_ = ts_->Client("bob");
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

  // The row and its events, without what differs between two approvals (ids, times).
  std::string Recorded(const std::string& id) {
    return Scalar(
        "SELECT (to_jsonb(a) - ARRAY['id','created_at','expires_at','decided_at','executed_at'])"
        "::text || ' events: ' || (SELECT string_agg(type || '/' || actor || '/v' || version || "
        "'/' || (detail - 'request_id')::text || '/' || (approval - ARRAY['id','created_at',"
        "'expires_at','decided_at','executed_at'])::text, ', ' ORDER BY e.id) "
        "FROM approval_events e WHERE e.approval_id = a.id) FROM ai_approvals a WHERE id = $id",
        id);
  }

  std::shared_ptr<std::atomic<int>> executions_ = std::make_shared<std::atomic<int>>(0);
  std::unique_ptr<TestServer> ts_;
  std::unique_ptr<client::ApprovalClient> agent_, alice_, bob_;
};

TEST_F(DecideAtOnceTest, AFixedResultTypeIsApprovedWithoutItsHandlerAndRecordedAsTheFullPathDoes) {
  const v1::Approval at_once = Create("test.fixed");
  const v1::Approval full = Create("test.fixed");
  ASSERT_OK_AND_ASSIGN(v1::Approval a, Approve(*alice_, at_once.id()));
  EXPECT_EQ(executions_->load(), 0);  // decided in one statement: Execute was not called
  // A request id takes the full path: row lock, Execute inside the transaction, record.
  ASSERT_OK_AND_ASSIGN(v1::Approval b, Approve(*alice_, full.id(), "req-full"));
  EXPECT_EQ(executions_->load(), 1);

  for (const v1::Approval* r : {&a, &b}) {
    EXPECT_EQ(r->status(), v1::APPROVAL_STATUS_APPROVED);
    EXPECT_EQ(r->version(), 2);
    EXPECT_EQ(r->decided_by(), "alice");
    EXPECT_EQ(r->decision_reason(), "fine");
    EXPECT_TRUE(r->has_decide_time());
    EXPECT_TRUE(r->has_execute_time());
    EXPECT_TRUE(r->execution_result().fields().at("fixed").bool_value());
  }
  // The same row and the same events, field for field.
  EXPECT_EQ(Recorded(at_once.id()), Recorded(full.id()));
  EXPECT_NE(Recorded(at_once.id()).find("approved/alice/v2"), std::string::npos)
      << Recorded(at_once.id());

  // Rejects and cancels at once are recorded as the full path records them too.
  const v1::Approval r1 = Create("noop");
  const v1::Approval r2 = Create("noop");
  ASSERT_OK(Reject(*bob_, r1.id()));
  v1::RejectRequest with_id;
  with_id.set_id(r2.id());
  with_id.set_reason("no");
  with_id.set_request_id("req-reject");
  ASSERT_OK(bob_->Reject(with_id));
  EXPECT_EQ(Recorded(r1.id()), Recorded(r2.id()));
  const v1::Approval c1 = Create("noop");
  ASSERT_OK_AND_ASSIGN(v1::Approval cancelled, Cancel(*agent_, c1.id()));
  EXPECT_EQ(cancelled.status(), v1::APPROVAL_STATUS_CANCELLED);
  EXPECT_EQ(cancelled.version(), 2);
  EXPECT_FALSE(cancelled.has_execute_time());
}

TEST_F(DecideAtOnceTest, EveryDecisionItMayNotMakeGetsTheFullPathsAnswer) {
  // The requester approving their own approval.
  const v1::Approval own = Create("noop");
  auto self = Approve(*agent_, own.id());
  EXPECT_CODE(self, absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(client::ReasonOf(self.status()), "SELF_APPROVAL");
  ASSERT_OK_AND_ASSIGN(v1::Approval allowed, Approve(*agent_, Create("noop.self").id()));
  EXPECT_EQ(allowed.status(), v1::APPROVAL_STATUS_APPROVED);

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

  // Expired by the database clock: EXPIRED, and the expiry is recorded.
  const v1::Approval late = Create("noop");
  Scalar(
      "UPDATE ai_approvals SET expires_at = created_at + interval '1 microsecond' "
      "WHERE id = $id RETURNING 1",
      late.id());
  auto expired = Approve(*alice_, late.id());
  EXPECT_CODE(expired, absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client::ReasonOf(expired.status()), "EXPIRED");
  EXPECT_EQ(Scalar("SELECT status || ' v' || version FROM ai_approvals WHERE id = $id", late.id()),
            "expired v2");

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
  EXPECT_CODE(Approve(*alice_, "00000000-0000-4000-8000-000000000000"),
              absl::StatusCode::kNotFound);

  // Only the requester cancels.
  const v1::Approval other = Create("noop");
  EXPECT_CODE(Cancel(*bob_, other.id()), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Scalar("SELECT status FROM ai_approvals WHERE id = $id", other.id()), "pending");

  // A type whose handler writes is never decided at once.
  ASSERT_OK(Approve(*alice_, Create("test.effect").id()));
  EXPECT_EQ(executions_->load(), 1);
}

}  // namespace
}  // namespace approvald::testing
