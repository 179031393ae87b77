// Action types from configuration against a real PostgreSQL, through the gRPC server: sql actions
// in the approval's transaction, per-type policies, parameter validation and quorum.

#include <grpcpp/client_context.h>
#include <gtest/gtest.h>

#include <latch>
#include <thread>

#include "google/rpc/status.pb.h"
#include "handlers/action_config.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_server.h"

namespace approvald::testing {
namespace {

namespace v1 = approvals::v1;
namespace pb = google::protobuf;

constexpr char kSchema[] = R"sql(
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    total_cents bigint NOT NULL,
    refunded_cents bigint NOT NULL DEFAULT 0 CHECK (refunded_cents BETWEEN 0 AND total_cents),
    note text NOT NULL DEFAULT '');
CREATE TABLE refunds (
    id bigserial PRIMARY KEY, order_id bigint NOT NULL, amount_cents bigint NOT NULL,
    reason text NOT NULL, approval_id uuid NOT NULL, approved_by text NOT NULL,
    payload jsonb NOT NULL);
CREATE TABLE grants (id bigserial PRIMARY KEY, approval_id uuid NOT NULL, role text NOT NULL,
                     granted_by text NOT NULL);
INSERT INTO orders (id, total_cents) VALUES (42, 10000), (43, 500);
)sql";

constexpr char kConfig[] = R"yaml(
action_types:
  - name: noop
    handler: noop
  - name: refund.order
    description: Refund part of an order
    handler: sql
    parameters:
      - {name: order_id, type: integer, required: true, minimum: 1}
      - {name: amount_cents, type: integer, required: true, minimum: 1, maximum: 100000}
      - {name: reason, type: string, required: true, max_length: 200}
      - {name: channel, type: string, enum: [email, phone]}
      - {name: ticket, type: string, pattern: "T-[0-9]+"}
    additional_parameters: false
    requester_roles: [requester]
    approver_roles: [approver]
    default_ttl: 2h
    max_ttl: 3h
    sql:
      - statement: |
          UPDATE orders SET refunded_cents = refunded_cents + :amount_cents, note = :reason
          WHERE id = :order_id RETURNING id, refunded_cents, refunded_cents > 0 AS refunded
        expect_rows: {exactly: 1}
      - statement: |
          INSERT INTO refunds (order_id, amount_cents, reason, approval_id, approved_by, payload)
          VALUES (:order_id, :amount_cents, :reason, :approval_id, :decided_by, :action_data)
          RETURNING id, payload
        expect_rows: {exactly: 1}
      - statement: SELECT 1 FROM orders WHERE id = :order_id AND refunded_cents <= 5000
        expect_rows: {exactly: 1}
  - name: self.service
    handler: sql
    allow_self_approval: true
    sql:
      - "INSERT INTO grants (approval_id, role, granted_by) VALUES (:approval_id, 'self', :decided_by)"
  - name: grant.role
    handler: sql
    parameters:
      - {name: role, type: string, required: true}
    approver_roles: [approver]
    required_approvals: 2
    sql:
      - statement: INSERT INTO grants (approval_id, role, granted_by) VALUES (:approval_id, :role, :decided_by)
        expect_rows: {exactly: 1}
  - name: grant.team_role
    handler: sql
    approver_roles: [approver]
    required_approvals: 2
    allow_self_approval: true
    sql:
      - "INSERT INTO grants (approval_id, role, granted_by) VALUES (:approval_id, 'team', :decided_by)"
)yaml";

class ActionTypesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto registry = handlers::ParseActionConfig(kConfig, "test.yaml");
    ASSERT_OK(registry);
    TestServerOptions options;
    options.pool_size = 8;
    options.registry = *registry;
    options.setup_sql = kSchema;
    ts_ = TestServer::Start(options);
    ASSERT_NE(ts_, nullptr);
  }

  absl::StatusOr<v1::Approval> Create(const std::string& who, const std::string& type,
                                      const std::string& json) {
    v1::CreateApprovalRequest req;
    req.set_action_type(type);
    EXPECT_TRUE(pb::util::JsonStringToMessage(json, req.mutable_action_data()).ok()) << json;
    return ts_->Client(who)->Create(req);
  }
  absl::StatusOr<v1::Approval> Approve(const std::string& who, const std::string& id) {
    v1::ApproveRequest req;
    req.set_id(id);
    return ts_->Client(who)->Approve(req);
  }
  std::string Q(const std::string& sql) { return ts_->db().Scalar(sql); }

  std::unique_ptr<TestServer> ts_;
};

TEST_F(ActionTypesTest, SqlActionCommitsWithTheApproval) {
  ASSERT_OK_AND_ASSIGN(v1::Approval a,
                       Create("agent", "refund.order",
                              R"({"order_id": 42, "amount_cents": 3000, "reason": "late"})"));
  EXPECT_EQ(a.expire_time().seconds() - a.create_time().seconds(), 2 * 3600);  // type default_ttl
  EXPECT_EQ(Q("SELECT refunded_cents FROM orders WHERE id = 42"), "0");  // nothing before approval
  ASSERT_OK_AND_ASSIGN(v1::Approval done, Approve("alice", a.id()));
  EXPECT_EQ(done.status(), v1::APPROVAL_STATUS_APPROVED);
  EXPECT_EQ(Q("SELECT refunded_cents FROM orders WHERE id = 42"), "3000");
  EXPECT_EQ(
      Q("SELECT approved_by || ' ' || approval_id || ' ' || (payload->>'reason') FROM refunds"),
      "alice " + a.id() + " late");
  // The result: one entry per statement, typed values.
  const auto& statements = done.execution_result().fields().at("statements").list_value();
  ASSERT_EQ(statements.values_size(), 3);
  const auto& first = statements.values(0).struct_value().fields();
  EXPECT_EQ(first.at("row_count").number_value(), 1);
  const auto& row = first.at("rows").list_value().values(0).struct_value().fields();
  EXPECT_EQ(row.at("refunded_cents").number_value(), 3000);
  EXPECT_TRUE(row.at("refunded").bool_value());
  const auto& second = statements.values(1).struct_value().fields();
  const auto& payload =
      second.at("rows").list_value().values(0).struct_value().fields().at("payload");
  EXPECT_EQ(payload.struct_value().fields().at("order_id").number_value(), 42);
}

TEST_F(ActionTypesTest, FailingSqlActionLeavesNoTrace) {
  // The third statement's expect_rows fails after the first two wrote.
  ASSERT_OK_AND_ASSIGN(
      v1::Approval a,
      Create("agent", "refund.order", R"({"order_id": 42, "amount_cents": 6000, "reason": "x"})"));
  auto r = Approve("alice", a.id());
  EXPECT_CODE(r, absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client::ReasonOf(r.status()), "EXECUTION_FAILED");
  EXPECT_EQ(Q("SELECT refunded_cents FROM orders WHERE id = 42"), "0");
  EXPECT_EQ(Q("SELECT count(*) FROM refunds"), "0");
  ASSERT_OK_AND_ASSIGN(v1::Approval failed, ts_->Client("alice")->Get(a.id()));
  EXPECT_EQ(failed.status(), v1::APPROVAL_STATUS_FAILED);
  EXPECT_NE(failed.execution_error().find("statement 3"), std::string::npos)
      << failed.execution_error();

  // A CHECK violation (refund beyond the order's total).
  ASSERT_OK_AND_ASSIGN(
      v1::Approval b,
      Create("agent", "refund.order", R"({"order_id": 43, "amount_cents": 900, "reason": "x"})"));
  EXPECT_EQ(client::ReasonOf(Approve("alice", b.id()).status()), "EXECUTION_FAILED");
  EXPECT_EQ(Q("SELECT refunded_cents FROM orders WHERE id = 43"), "0");
  ASSERT_OK_AND_ASSIGN(v1::Approval failed_b, ts_->Client("alice")->Get(b.id()));
  EXPECT_NE(failed_b.execution_error().find("23514"), std::string::npos);

  // No such order: the first statement matches no row.
  ASSERT_OK_AND_ASSIGN(
      v1::Approval c,
      Create("agent", "refund.order", R"({"order_id": 999, "amount_cents": 1, "reason": "x"})"));
  EXPECT_EQ(client::ReasonOf(Approve("alice", c.id()).status()), "EXECUTION_FAILED");
  EXPECT_EQ(Q("SELECT count(*) FROM refunds"), "0");
}

TEST_F(ActionTypesTest, ParameterValuesAreBoundNeverSpliced) {
  const std::string evil = "'; DROP TABLE orders; --";
  ASSERT_OK_AND_ASSIGN(
      v1::Approval a,
      Create("agent", "refund.order",
             R"({"order_id": 42, "amount_cents": 10, "reason": "'; DROP TABLE orders; --"})"));
  ASSERT_OK(Approve("alice", a.id()));
  EXPECT_EQ(Q("SELECT note FROM orders WHERE id = 42"), evil);
  EXPECT_EQ(Q("SELECT reason FROM refunds"), evil);
  EXPECT_EQ(Q("SELECT count(*) FROM orders"), "2");
}

TEST_F(ActionTypesTest, ParametersGetOneViolationPerBadField) {
  auto stub = v1::ApprovalService::NewStub(ts_->NewChannel());
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer tok-agent");
  v1::CreateApprovalRequest req;
  req.set_action_type("refund.order");
  ASSERT_TRUE(pb::util::JsonStringToMessage(
                  R"({"order_id": 1.5, "amount_cents": 0, "channel": "fax", "ticket": "X-1",
                      "extra": true, "reason": 7})",
                  req.mutable_action_data())
                  .ok());
  v1::Approval out;
  grpc::Status st = stub->CreateApproval(&ctx, req, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(st.error_details()));
  google::rpc::ErrorInfo info;
  google::rpc::BadRequest bad;
  for (const auto& any : details.details()) {
    any.UnpackTo(&info);
    any.UnpackTo(&bad);
  }
  EXPECT_EQ(info.reason(), "INVALID_ACTION_DATA");
  std::set<std::string> fields;
  for (const auto& v : bad.field_violations()) fields.insert(v.field());
  EXPECT_EQ(fields, (std::set<std::string>{"action_data.order_id", "action_data.amount_cents",
                                           "action_data.reason", "action_data.channel",
                                           "action_data.ticket", "action_data.extra"}));
  EXPECT_EQ(bad.field_violations_size(), 6);

  // Missing required fields, one violation each.
  auto missing = Create("agent", "refund.order", "{}");
  EXPECT_CODE(missing, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client::ReasonOf(missing.status()), "INVALID_ACTION_DATA");
  // Valid with the optional fields.
  EXPECT_OK(Create("agent", "refund.order",
                   R"({"order_id": 42, "amount_cents": 5, "reason": "r", "channel": "phone",
                       "ticket": "T-17"})"));
  // Unknown types.
  auto unknown = Create("agent", "refund.everything", "{}");
  EXPECT_CODE(unknown, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client::ReasonOf(unknown.status()), "UNKNOWN_ACTION_TYPE");
}

TEST_F(ActionTypesTest, RolesAndSelfApproval) {
  const std::string ok = R"({"order_id": 42, "amount_cents": 5, "reason": "r"})";
  // requester_roles
  auto denied = Create("viewer", "refund.order", ok);
  EXPECT_CODE(denied, absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(client::ReasonOf(denied.status()), "ROLE_REQUIRED");
  ASSERT_OK_AND_ASSIGN(v1::Approval a, Create("requester", "refund.order", ok));
  // approver_roles: a reviewer without them cannot decide, either way.
  auto not_approver = Approve("requester", a.id());
  EXPECT_EQ(client::ReasonOf(not_approver.status()), "ROLE_REQUIRED");
  v1::RejectRequest reject;
  reject.set_id(a.id());
  reject.set_reason("no");
  EXPECT_EQ(client::ReasonOf(ts_->Client("viewer")->Reject(reject).status()), "ROLE_REQUIRED");
  ASSERT_OK_AND_ASSIGN(v1::Approval done, Approve("approver", a.id()));
  EXPECT_EQ(done.decided_by(), "approver");
  // Types without roles accept anyone authenticated.
  EXPECT_OK(Create("viewer", "noop", "{}"));

  // Self-approval: off by default, on for self.service.
  ASSERT_OK_AND_ASSIGN(v1::Approval mine, Create("agent", "refund.order", ok));
  EXPECT_EQ(client::ReasonOf(Approve("agent", mine.id()).status()), "SELF_APPROVAL");
  ASSERT_OK_AND_ASSIGN(v1::Approval self, Create("agent", "self.service", "{}"));
  ASSERT_OK_AND_ASSIGN(v1::Approval self_done, Approve("agent", self.id()));
  EXPECT_EQ(self_done.status(), v1::APPROVAL_STATUS_APPROVED);
  EXPECT_EQ(Q("SELECT granted_by FROM grants WHERE role = 'self'"), "agent");
}

TEST_F(ActionTypesTest, TtlBoundsPerType) {
  v1::CreateApprovalRequest req;
  req.set_action_type("refund.order");
  ASSERT_TRUE(pb::util::JsonStringToMessage(R"({"order_id": 42, "amount_cents": 5, "reason": "r"})",
                                            req.mutable_action_data())
                  .ok());
  req.mutable_ttl()->set_seconds(4 * 3600);  // beyond the type's max_ttl of 3h
  EXPECT_CODE(ts_->Client("agent")->Create(req), absl::StatusCode::kInvalidArgument);
  req.mutable_expire_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) + 4 * 3600);
  EXPECT_CODE(ts_->Client("agent")->Create(req), absl::StatusCode::kInvalidArgument);
  req.mutable_ttl()->set_seconds(3 * 3600);
  ASSERT_OK_AND_ASSIGN(v1::Approval a, ts_->Client("agent")->Create(req));
  EXPECT_EQ(a.expire_time().seconds() - a.create_time().seconds(), 3 * 3600);
}

TEST_F(ActionTypesTest, ListActionTypesDescribesEveryType) {
  auto stub = v1::ApprovalService::NewStub(ts_->NewChannel());
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer tok-viewer");
  v1::ListActionTypesResponse out;
  ASSERT_TRUE(stub->ListActionTypes(&ctx, v1::ListActionTypesRequest(), &out).ok());
  ASSERT_EQ(out.action_types_size(), 5);  // by name
  const v1::ActionType& refund = out.action_types(3);
  EXPECT_EQ(refund.name(), "refund.order");
  EXPECT_EQ(refund.description(), "Refund part of an order");
  EXPECT_EQ(refund.approver_roles(0), "approver");
  EXPECT_EQ(refund.default_ttl().seconds(), 2 * 3600);
  EXPECT_EQ(refund.max_ttl().seconds(), 3 * 3600);
  EXPECT_EQ(refund.required_approvals(), 1);
  const auto& schema = refund.parameters_schema().fields();
  EXPECT_EQ(schema.at("type").string_value(), "object");
  EXPECT_FALSE(schema.at("additionalProperties").bool_value());
  EXPECT_EQ(schema.at("required").list_value().values_size(), 3);
  const auto& amount =
      schema.at("properties").struct_value().fields().at("amount_cents").struct_value().fields();
  EXPECT_EQ(amount.at("type").string_value(), "integer");
  EXPECT_EQ(amount.at("maximum").number_value(), 100000);
  EXPECT_EQ(out.action_types(0).name(), "grant.role");
  EXPECT_EQ(out.action_types(0).required_approvals(), 2);
}

TEST_F(ActionTypesTest, QuorumVotesThenExecutesOnce) {
  ASSERT_OK_AND_ASSIGN(v1::Approval a, Create("agent", "grant.role", R"({"role": "billing"})"));
  ASSERT_OK_AND_ASSIGN(v1::Approval voted, Approve("alice", a.id()));
  EXPECT_EQ(voted.status(), v1::APPROVAL_STATUS_PENDING);
  EXPECT_EQ(voted.version(), 2);
  ASSERT_EQ(voted.votes_size(), 1);
  EXPECT_EQ(voted.votes(0).voter(), "alice");
  EXPECT_EQ(Q("SELECT count(*) FROM grants"), "0");
  auto twice = Approve("alice", a.id());
  EXPECT_CODE(twice, absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client::ReasonOf(twice.status()), "ALREADY_VOTED");
  EXPECT_EQ(client::ReasonOf(Approve("agent", a.id()).status()), "SELF_APPROVAL");
  ASSERT_OK_AND_ASSIGN(v1::Approval done, Approve("bob", a.id()));
  EXPECT_EQ(done.status(), v1::APPROVAL_STATUS_APPROVED);
  EXPECT_EQ(done.decided_by(), "bob");
  EXPECT_EQ(done.votes_size(), 2);
  EXPECT_EQ(Q("SELECT granted_by FROM grants"), "bob");
  EXPECT_EQ(Q("SELECT string_agg(type, ',' ORDER BY id) FROM approvald.events"),
            "created,voted,approved");
  // One reject by an eligible reviewer rejects.
  ASSERT_OK_AND_ASSIGN(v1::Approval b, Create("agent", "grant.role", R"({"role": "admin"})"));
  ASSERT_OK(Approve("alice", b.id()));
  v1::RejectRequest reject;
  reject.set_id(b.id());
  reject.set_reason("not needed");
  ASSERT_OK_AND_ASSIGN(v1::Approval rejected, ts_->Client("bob")->Reject(reject));
  EXPECT_EQ(rejected.status(), v1::APPROVAL_STATUS_REJECTED);
  EXPECT_EQ(Q("SELECT count(*) FROM grants WHERE role = 'admin'"), "0");
}

TEST_F(ActionTypesTest, WithSelfApprovalTheRequestersVoteCountsTowardTheQuorum) {
  // agent holds the approver role too; allow_self_approval lets its own vote count.
  ASSERT_OK_AND_ASSIGN(v1::Approval a, Create("agent", "grant.team_role", "{}"));
  ASSERT_OK_AND_ASSIGN(v1::Approval voted, Approve("agent", a.id()));
  EXPECT_EQ(voted.status(), v1::APPROVAL_STATUS_PENDING);
  ASSERT_EQ(voted.votes_size(), 1);
  EXPECT_EQ(voted.votes(0).voter(), "agent");
  EXPECT_EQ(Q("SELECT count(*) FROM grants"), "0");
  ASSERT_OK_AND_ASSIGN(v1::Approval done, Approve("alice", a.id()));
  EXPECT_EQ(done.status(), v1::APPROVAL_STATUS_APPROVED);
  EXPECT_EQ(done.votes_size(), 2);
  EXPECT_EQ(Q("SELECT string_agg(granted_by, ',') FROM grants"), "alice");
}

TEST_F(ActionTypesTest, QuorumTwoOfThreeRacingExecutesOnceAtTheSecondVote) {
  constexpr int kRounds = 50;
  const std::vector<std::string> voters = {"alice", "bob", "carol", "agent"};  // agent requested
  std::vector<std::unique_ptr<client::ApprovalClient>> clients;
  for (const auto& v : voters) clients.push_back(ts_->Client(v));
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_OK_AND_ASSIGN(v1::Approval a, Create("agent", "grant.role", R"({"role": "support"})"));
    std::vector<absl::StatusOr<v1::Approval>> results(voters.size());
    std::latch start(static_cast<std::ptrdiff_t>(voters.size()));
    std::vector<std::thread> threads;
    for (size_t i = 0; i < voters.size(); ++i) {
      threads.emplace_back([&, i] {
        v1::ApproveRequest req;
        req.set_id(a.id());
        start.arrive_and_wait();
        results[i] = clients[i]->Approve(req);
      });
    }
    for (auto& t : threads) t.join();
    int pending_ok = 0, approved_ok = 0, processed = 0;
    std::string executor;
    for (size_t i = 0; i < voters.size(); ++i) {
      if (voters[i] == "agent") {
        // The requester never votes: refused by policy, or too late to matter.
        const std::string reason = client::ReasonOf(results[i].status());
        EXPECT_TRUE(reason == "SELF_APPROVAL" || reason == "ALREADY_PROCESSED")
            << results[i].status();
        continue;
      }
      if (!results[i].ok()) {
        EXPECT_EQ(client::ReasonOf(results[i].status()), "ALREADY_PROCESSED")
            << results[i].status();
        ++processed;
      } else if (results[i]->status() == v1::APPROVAL_STATUS_PENDING) {
        ++pending_ok;
      } else {
        ++approved_ok;
        executor = voters[i];
        EXPECT_EQ(results[i]->votes_size(), 2);
      }
    }
    EXPECT_EQ(pending_ok, 1) << "round " << round;
    EXPECT_EQ(approved_ok, 1) << "round " << round;
    EXPECT_EQ(processed, 1) << "round " << round;
    EXPECT_EQ(Q("SELECT count(*) FROM grants WHERE approval_id = '" + a.id() + "'"), "1");
    EXPECT_EQ(Q("SELECT granted_by FROM grants WHERE approval_id = '" + a.id() + "'"), executor);
    EXPECT_EQ(Q("SELECT count(*) FROM approvald.votes WHERE approval_id = '" + a.id() +
                "' AND voter = 'agent'"),
              "0");
  }
  EXPECT_EQ(Q("SELECT count(*) FROM grants"), std::to_string(kRounds));
}

TEST_F(ActionTypesTest, AReloadWithABrokenStatementKeepsTheOldTypes) {
  auto broken = handlers::ParseActionConfig(R"yaml(
action_types:
  - name: broken
    handler: sql
    sql: ["UPDATE no_such_table SET x = 1"]
)yaml",
                                            "reload.yaml");
  ASSERT_OK(broken);
  absl::Status st = ts_->server().SetActionTypes(*broken);
  EXPECT_CODE(st, absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("broken"), absl::string_view::npos) << st;
  ASSERT_OK_AND_ASSIGN(v1::Approval orphan, Create("agent", "noop", "{}"));  // still the old config
  ASSERT_OK_AND_ASSIGN(v1::Approval orphan2, Create("agent", "noop", "{}"));
  auto fresh = handlers::ParseActionConfig("action_types: [{name: fresh}]", "reload.yaml");
  ASSERT_OK(fresh);
  ASSERT_OK(ts_->server().SetActionTypes(*fresh));
  EXPECT_OK(Create("agent", "fresh", "{}"));
  EXPECT_EQ(client::ReasonOf(Create("agent", "noop", "{}").status()), "UNKNOWN_ACTION_TYPE");
  // Pending approvals of a type that left the config: nobody decides them under unknown rules;
  // their requester may still cancel.
  auto approve = Approve("alice", orphan.id());
  EXPECT_CODE(approve, absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client::ReasonOf(approve.status()), "UNKNOWN_ACTION_TYPE");
  v1::RejectRequest reject;
  reject.set_id(orphan.id());
  reject.set_reason("no");
  EXPECT_EQ(client::ReasonOf(ts_->Client("alice")->Reject(reject).status()), "UNKNOWN_ACTION_TYPE");
  v1::CancelApprovalRequest cancel;
  cancel.set_id(orphan2.id());
  ASSERT_OK_AND_ASSIGN(v1::Approval cancelled, ts_->Client("agent")->Cancel(cancel));
  EXPECT_EQ(cancelled.status(), v1::APPROVAL_STATUS_CANCELLED);
}

}  // namespace
}  // namespace approvald::testing
