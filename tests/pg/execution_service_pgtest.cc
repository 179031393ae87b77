// ExecutionService through the real gRPC server: roles, long-polling claims woken by the event
// stream and by a backoff's end, the execution as the Approval shows it, and shutdown.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <thread>

#include "approvals/v1/approvals.grpc.pb.h"
#include "client/approval_client.h"
#include "handlers/external_handler.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_handlers.h"
#include "tests/testing/test_server.h"

namespace approvald::testing {
namespace {

namespace v1 = approvals::v1;

google::protobuf::Duration Seconds(double s) {
  google::protobuf::Duration d;
  d.set_seconds(static_cast<int64_t>(s));
  d.set_nanos(static_cast<int32_t>((s - static_cast<double>(d.seconds())) * 1e9));
  return d;
}

class ExecutionServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto registry = MakeTestRegistry();
    handlers::ExecutorPolicy policy;
    policy.executor_roles = {"approver"};  // the test tokens' role for everyone but viewer
    policy.max_attempts = 3;
    policy.backoff.initial = absl::Milliseconds(300);
    policy.backoff.jitter = 0;
    handlers::ActionType type;
    type.name = "refund.provider";
    type.handler_kind = "external";
    type.handler = std::make_shared<handlers::ExternalHandler>(policy);
    ASSERT_OK(registry->Register(std::move(type)));
    TestServerOptions options;
    options.registry = registry;
    ts_ = TestServer::Start(options);
    ASSERT_NE(ts_, nullptr);
    agent_ = ts_->Client("agent");
    alice_ = ts_->Client("alice");
    channel_ = ts_->NewChannel();
    stub_ = v1::ExecutionService::NewStub(channel_);
  }

  std::string Create() {
    v1::CreateApprovalRequest req;
    req.set_action_type("refund.provider");
    absl::StatusOr<v1::Approval> a = agent_->Create(req);
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? a->id() : "";
  }

  void Approve(const std::string& id) {
    v1::ApproveRequest req;
    req.set_id(id);
    absl::StatusOr<v1::Approval> a = alice_->Approve(req);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->status(), v1::APPROVAL_STATUS_APPROVED);
    EXPECT_EQ(a->execution().state(), v1::EXECUTION_STATE_QUEUED);
    EXPECT_FALSE(a->has_execute_time());
  }

  grpc::Status Claim(const std::string& principal, double wait, v1::ClaimExecutionsResponse* resp,
                     const std::string& type = "refund.provider") {
    v1::ClaimExecutionsRequest req;
    req.add_action_types(type);
    if (wait > 0) *req.mutable_wait() = Seconds(wait);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer tok-" + principal);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(90));
    return stub_->ClaimExecutions(&ctx, req, resp);
  }

  std::unique_ptr<TestServer> ts_;
  std::unique_ptr<client::ApprovalClient> agent_, alice_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ExecutionService::Stub> stub_;
};

TEST_F(ExecutionServiceTest, ListActionTypesShowsTheKindAndWhoRunsIt) {
  absl::StatusOr<v1::ListActionTypesResponse> types = agent_->ListActionTypes();
  ASSERT_TRUE(types.ok()) << types.status();
  bool found = false;
  for (const v1::ActionType& t : types->action_types()) {
    if (t.name() == "noop") {
      EXPECT_EQ(t.handler(), "noop");
      EXPECT_FALSE(t.has_executor());
    }
    if (t.name() != "refund.provider") continue;
    found = true;
    EXPECT_EQ(t.handler(), "external");
    ASSERT_EQ(t.executor().executor_roles_size(), 1);
    EXPECT_EQ(t.executor().executor_roles(0), "approver");
    EXPECT_EQ(t.executor().lease().seconds(), 30);
    EXPECT_EQ(t.executor().max_attempts(), 3);
  }
  EXPECT_TRUE(found);
}

TEST_F(ExecutionServiceTest, OnlyExternalTypesAndTheirExecutorsMayClaim) {
  v1::ClaimExecutionsResponse resp;
  grpc::Status st = Claim("viewer", 0, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  st = Claim("bob", 0, &resp, "noop");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  st = Claim("bob", 61, &resp);  // a wait beyond 60 s
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  st = Claim("bob", 0, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.executions_size(), 0);
}

// A claim waiting 60 s answers when the approval comes, not at the end of its wait.
TEST_F(ExecutionServiceTest, AWaitingClaimIsWokenByTheApproval) {
  const std::string id = Create();
  v1::ClaimExecutionsResponse resp;
  grpc::Status st;
  std::thread waiter([&] { st = Claim("bob", 60, &resp); });
  absl::SleepFor(absl::Milliseconds(300));  // most likely waiting by now; either way it works
  const absl::Time approved = absl::Now();
  Approve(id);
  waiter.join();
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.executions_size(), 1);
  EXPECT_LT(absl::Now() - approved, absl::Seconds(30));  // far below the 60 s wait
  const v1::Execution& x = resp.executions(0);
  EXPECT_EQ(x.approval().id(), id);
  EXPECT_EQ(x.attempt(), 1);
  EXPECT_EQ(x.idempotency_key(), x.execution_id());
  EXPECT_FALSE(x.lease_token().empty());
  EXPECT_EQ(x.approval().execution().state(), v1::EXECUTION_STATE_RUNNING);
  EXPECT_EQ(x.approval().execution().lease_holder(), "bob");
  // GetApproval and a filtered list show where it is.
  absl::StatusOr<v1::Approval> got = agent_->Get(id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->execution().state(), v1::EXECUTION_STATE_RUNNING);
  v1::ListApprovalsRequest list;
  list.add_execution_states(v1::EXECUTION_STATE_RUNNING);
  absl::StatusOr<v1::ListApprovalsResponse> running = agent_->List(list);
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_EQ(running->approvals_size(), 1);
  EXPECT_EQ(running->approvals(0).id(), id);
}

// After a retryable failure the execution is due once its backoff ends: a waiting claim gets
// it then, with attempt 2 and the same idempotency key.
TEST_F(ExecutionServiceTest, AWaitingClaimIsWokenWhenABackoffEnds) {
  const std::string id = Create();
  Approve(id);
  v1::ClaimExecutionsResponse first;
  ASSERT_TRUE(Claim("bob", 0, &first).ok());
  ASSERT_EQ(first.executions_size(), 1);
  v1::FailExecutionRequest fail;
  fail.set_execution_id(first.executions(0).execution_id());
  fail.set_lease_token(first.executions(0).lease_token());
  fail.set_error("provider answered 503");
  fail.set_retryable(true);
  v1::Execution failed;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer tok-bob");
    ASSERT_TRUE(stub_->FailExecution(&ctx, fail, &failed).ok());
  }
  EXPECT_EQ(failed.state(), v1::EXECUTION_STATE_QUEUED);
  EXPECT_TRUE(failed.has_next_attempt_time());
  EXPECT_EQ(failed.approval().execution().last_error(), "provider answered 503");
  v1::ClaimExecutionsResponse second;
  ASSERT_TRUE(Claim("carol", 30, &second).ok());
  ASSERT_EQ(second.executions_size(), 1);
  EXPECT_EQ(second.executions(0).attempt(), 2);
  EXPECT_EQ(second.executions(0).idempotency_key(), first.executions(0).idempotency_key());

  v1::CompleteExecutionRequest complete;
  complete.set_execution_id(second.executions(0).execution_id());
  complete.set_lease_token(second.executions(0).lease_token());
  (*complete.mutable_result()->mutable_fields())["refund"].set_string_value("r-1");
  v1::Execution done;
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer tok-carol");
  ASSERT_TRUE(stub_->CompleteExecution(&ctx, complete, &done).ok());
  EXPECT_EQ(done.state(), v1::EXECUTION_STATE_SUCCEEDED);
  absl::StatusOr<v1::Approval> got = agent_->Get(id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status(), v1::APPROVAL_STATUS_APPROVED);
  EXPECT_TRUE(got->has_execute_time());
  EXPECT_EQ(got->execution_result().fields().at("refund").string_value(), "r-1");
  EXPECT_EQ(got->execution().attempts(), 2);
  EXPECT_EQ(got->execution_error(), "");
}

TEST_F(ExecutionServiceTest, ShutdownAnswersWaitingClaimsAtOnce) {
  v1::ClaimExecutionsResponse resp;
  grpc::Status st;
  std::thread waiter([&] { st = Claim("bob", 60, &resp); });
  absl::SleepFor(absl::Milliseconds(300));
  const absl::Time stopping = absl::Now();
  ts_->server().Shutdown(absl::Seconds(5));
  waiter.join();
  EXPECT_LT(absl::Now() - stopping, absl::Seconds(30));  // not the 60 s wait
  EXPECT_TRUE(st.ok() || st.error_code() == grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_EQ(resp.executions_size(), 0);
}

}  // namespace
}  // namespace approvald::testing
