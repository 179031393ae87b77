// ApprovalService through the real gRPC server and a real PostgreSQL.

#include <google/protobuf/util/json_util.h>
#include <grpcpp/client_context.h>
#include <gtest/gtest.h>

#include <set>

#include "google/rpc/status.pb.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_server.h"

namespace approvald::testing {
namespace {

namespace v1 = approvals::v1;

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ts_ = TestServer::Start();
    ASSERT_NE(ts_, nullptr);
    agent_ = ts_->Client("agent");
    alice_ = ts_->Client("alice");
    bob_ = ts_->Client("bob");
  }

  v1::Approval Create(const std::string& type, const std::string& summary = "s",
                      const std::string& key = "") {
    v1::CreateApprovalRequest req;
    req.set_action_type(type);
    req.set_summary(summary);
    req.set_idempotency_key(key);
    (*req.mutable_action_data()->mutable_fields())["order_id"].set_number_value(42);
    auto r = agent_->Create(req);
    EXPECT_OK(r);
    return r.ok() ? *r : v1::Approval();
  }

  absl::StatusOr<v1::Approval> Approve(client::ApprovalClient& c, const std::string& id,
                                       int64_t version = 0, const std::string& request_id = "") {
    v1::ApproveRequest req;
    req.set_id(id);
    req.set_expected_version(version);
    req.set_request_id(request_id);
    return c.Approve(req);
  }

  std::unique_ptr<TestServer> ts_;
  std::unique_ptr<client::ApprovalClient> agent_, alice_, bob_;
};

TEST_F(ServiceTest, CreateGetApproveRoundTrip) {
  v1::Approval a = Create("test.effect", "refund order 42, 30 EUR");
  EXPECT_EQ(a.status(), v1::APPROVAL_STATUS_PENDING);
  EXPECT_EQ(a.requested_by(), "agent");
  EXPECT_EQ(a.version(), 1);
  EXPECT_EQ(a.action_data().fields().at("order_id").number_value(), 42);
  // Default ttl 24 h, by the database clock.
  EXPECT_EQ(a.expire_time().seconds() - a.create_time().seconds(), 24 * 3600);

  ASSERT_OK_AND_ASSIGN(v1::Approval approved, Approve(*alice_, a.id()));
  EXPECT_EQ(approved.status(), v1::APPROVAL_STATUS_APPROVED);
  EXPECT_EQ(approved.decided_by(), "alice");
  EXPECT_EQ(approved.version(), 2);
  EXPECT_TRUE(approved.has_execute_time());
  EXPECT_EQ(approved.execution_result().fields().at("inserted").number_value(), 1);
  EXPECT_EQ(ts_->Effects(a.id()), 1);

  ASSERT_OK_AND_ASSIGN(v1::Approval got, bob_->Get(a.id()));
  EXPECT_EQ(got.SerializeAsString(), approved.SerializeAsString());
  EXPECT_EQ(ts_->db().Scalar("SELECT string_agg(type, ',' ORDER BY id) FROM approvald.events"),
            "created,approved");
}

TEST_F(ServiceTest, SecondDecisionIsAlreadyProcessedWithStateInMetadata) {
  v1::Approval a = Create("noop");
  ASSERT_OK(Approve(*alice_, a.id()));
  v1::RejectRequest reject;
  reject.set_id(a.id());
  reject.set_reason("too late");

  // Read the raw trailer with a plain stub, as any gRPC client would.
  auto stub = v1::ApprovalService::NewStub(ts_->NewChannel());
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer tok-bob");
  v1::Approval out;
  grpc::Status st = stub->Reject(&ctx, reject, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(st.error_details()));
  EXPECT_EQ(details.code(), static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "ALREADY_PROCESSED");
  EXPECT_EQ(info.domain(), "approvald");
  EXPECT_EQ(info.metadata().at("status"), "APPROVAL_STATUS_APPROVED");
  EXPECT_EQ(info.metadata().at("version"), "2");
  // The trailer itself is what non-C++ clients decode.
  auto trailers = ctx.GetServerTrailingMetadata();
  auto it = trailers.find("grpc-status-details-bin");
  ASSERT_NE(it, trailers.end());
  google::rpc::Status from_trailer;
  ASSERT_TRUE(from_trailer.ParseFromString(std::string(it->second.data(), it->second.size())));
  EXPECT_EQ(from_trailer.details(0).type_url(), "type.googleapis.com/google.rpc.ErrorInfo");
}

TEST_F(ServiceTest, ExpiryIsJudgedByTheDatabaseClockAndRecorded) {
  v1::Approval a = Create("test.effect");
  // Make it expire by the database's clock (the daemon's clock is never consulted).
  ts_->db().Scalar(
      "UPDATE approvald.approvals SET expires_at = created_at + interval '1 microsecond' "
      "WHERE id = '" +
      a.id() + "'");
  auto r = Approve(*alice_, a.id());
  EXPECT_CODE(r, absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client::ReasonOf(r.status()), "EXPIRED");
  EXPECT_EQ(ts_->Effects(a.id()), 0);
  ASSERT_OK_AND_ASSIGN(v1::Approval got, agent_->Get(a.id()));
  EXPECT_EQ(got.status(), v1::APPROVAL_STATUS_EXPIRED);
  EXPECT_EQ(got.version(), 2);
  EXPECT_TRUE(got.has_decide_time());
  // Once expired, every decision answers EXPIRED.
  v1::RejectRequest reject;
  reject.set_id(a.id());
  reject.set_reason("x");
  auto rejected = bob_->Reject(reject);
  EXPECT_EQ(client::ReasonOf(rejected.status()), "EXPIRED");
  EXPECT_EQ(ts_->db().Scalar("SELECT string_agg(type || ':' || actor, ',' ORDER BY id) FROM "
                             "approvald.events"),
            "created:agent,expired:approvald");
}

TEST_F(ServiceTest, ExpirationInputs) {
  v1::CreateApprovalRequest req;
  req.set_action_type("noop");
  req.mutable_ttl()->set_seconds(90);
  ASSERT_OK_AND_ASSIGN(v1::Approval a, agent_->Create(req));
  EXPECT_EQ(a.expire_time().seconds() - a.create_time().seconds(), 90);

  req.mutable_ttl()->set_seconds(31 * 24 * 3600);  // beyond --max-ttl (30 days)
  EXPECT_CODE(agent_->Create(req), absl::StatusCode::kInvalidArgument);
  req.mutable_ttl()->set_seconds(-5);
  EXPECT_CODE(agent_->Create(req), absl::StatusCode::kInvalidArgument);

  req.mutable_expire_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) - 60);  // the past
  EXPECT_CODE(agent_->Create(req), absl::StatusCode::kInvalidArgument);
  req.mutable_expire_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) + 40 * 24 * 3600);
  EXPECT_CODE(agent_->Create(req), absl::StatusCode::kInvalidArgument);
  req.mutable_expire_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) + 3600);
  ASSERT_OK_AND_ASSIGN(v1::Approval b, agent_->Create(req));
  EXPECT_EQ(b.expire_time().seconds(), req.expire_time().seconds());
}

TEST_F(ServiceTest, VersionMismatchIsAborted) {
  v1::Approval a = Create("noop");
  auto r = Approve(*alice_, a.id(), /*version=*/7);
  EXPECT_CODE(r, absl::StatusCode::kAborted);
  EXPECT_EQ(client::ReasonOf(r.status()), "VERSION_MISMATCH");
  ASSERT_OK_AND_ASSIGN(v1::Approval approved, Approve(*alice_, a.id(), /*version=*/1));
  EXPECT_EQ(approved.version(), 2);
}

TEST_F(ServiceTest, RequesterCannotApproveOwnRequest) {
  v1::Approval a = Create("test.effect");
  auto r = Approve(*agent_, a.id());
  EXPECT_CODE(r, absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(client::ReasonOf(r.status()), "SELF_APPROVAL");
  EXPECT_EQ(ts_->Effects(a.id()), 0);
  ASSERT_OK_AND_ASSIGN(v1::Approval still, agent_->Get(a.id()));
  EXPECT_EQ(still.status(), v1::APPROVAL_STATUS_PENDING);
}

TEST_F(ServiceTest, MissingOrUnknownTokenIsUnauthenticated) {
  v1::Approval a = Create("noop");
  EXPECT_CODE(ts_->Client("")->Get(a.id()), absl::StatusCode::kUnauthenticated);
  client::ApprovalClient forged(ts_->NewChannel(), "not-a-token");
  EXPECT_CODE(forged.Get(a.id()), absl::StatusCode::kUnauthenticated);
  EXPECT_CODE(forged.Approve([&] {
    v1::ApproveRequest r;
    r.set_id(a.id());
    return r;
  }()),
              absl::StatusCode::kUnauthenticated);
}

TEST_F(ServiceTest, FailingHandlerRollsBackItsWritesAndRecordsFailed) {
  v1::Approval a = Create("test.fail");
  auto r = Approve(*alice_, a.id(), 0, "req-fail-1");
  EXPECT_CODE(r, absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client::ReasonOf(r.status()), "EXECUTION_FAILED");
  EXPECT_EQ(ts_->Effects(a.id()), 0);  // the handler's insert was rolled back
  ASSERT_OK_AND_ASSIGN(v1::Approval failed, alice_->Get(a.id()));
  EXPECT_EQ(failed.status(), v1::APPROVAL_STATUS_FAILED);
  EXPECT_EQ(failed.decided_by(), "alice");
  EXPECT_TRUE(failed.has_decide_time());
  EXPECT_FALSE(failed.has_execute_time());
  EXPECT_EQ(failed.execution_error(), "insufficient funds");
  // A retry with the same request id answers the same error, not ALREADY_PROCESSED.
  auto replay = Approve(*alice_, a.id(), 0, "req-fail-1");
  EXPECT_CODE(replay, absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client::ReasonOf(replay.status()), "EXECUTION_FAILED");
  // Without it, the approval is simply already processed.
  EXPECT_EQ(client::ReasonOf(Approve(*bob_, a.id()).status()), "ALREADY_PROCESSED");
}

TEST_F(ServiceTest, HandlerSqlErrorIsAPermanentFailure) {
  v1::Approval a = Create("test.sqlerror");
  auto r = Approve(*alice_, a.id());
  EXPECT_EQ(client::ReasonOf(r.status()), "EXECUTION_FAILED") << r.status();
  ASSERT_OK_AND_ASSIGN(v1::Approval failed, alice_->Get(a.id()));
  EXPECT_EQ(failed.status(), v1::APPROVAL_STATUS_FAILED);
  EXPECT_NE(failed.execution_error().find("23502"), std::string::npos) << failed.execution_error();
}

TEST_F(ServiceTest, ExpiredErrorCarriesTheStateInMetadata) {
  v1::Approval a = Create("test.effect");
  ts_->db().Scalar(
      "UPDATE approvald.approvals SET expires_at = created_at + interval '1 microsecond' WHERE id "
      "= '" +
      a.id() + "'");
  auto stub = v1::ApprovalService::NewStub(ts_->NewChannel());
  auto decode = [&](const std::string& who) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer tok-" + who);
    v1::ApproveRequest req;
    req.set_id(a.id());
    v1::Approval out;
    return client::DecodeError(stub->Approve(&ctx, req, &out));
  };
  // The call that finds it due expires it: its metadata also names the action type.
  client::RpcError first = decode("alice");
  EXPECT_EQ(first.code, absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(first.info.has_value());
  EXPECT_EQ(first.info->reason(), "EXPIRED");
  EXPECT_EQ(first.info->metadata().at("status"), "APPROVAL_STATUS_EXPIRED");
  EXPECT_EQ(first.info->metadata().at("version"), "2");
  EXPECT_EQ(first.info->metadata().at("action_type"), "test.effect");
  // A later call finds it expired: the same state.
  client::RpcError later = decode("bob");
  ASSERT_TRUE(later.info.has_value());
  EXPECT_EQ(later.info->reason(), "EXPIRED");
  EXPECT_EQ(later.info->metadata().at("status"), "APPROVAL_STATUS_EXPIRED");
  EXPECT_EQ(later.info->metadata().at("version"), "2");
  EXPECT_EQ(ts_->Effects(a.id()), 0);
}

TEST_F(ServiceTest, AHandlersUnknownErrorIsAPermanentFailure) {
  v1::Approval a = Create("test.unknown");
  auto r = Approve(*alice_, a.id());
  EXPECT_EQ(client::ReasonOf(r.status()), "EXECUTION_FAILED") << r.status();
  ASSERT_OK_AND_ASSIGN(v1::Approval failed, alice_->Get(a.id()));
  EXPECT_EQ(failed.status(), v1::APPROVAL_STATUS_FAILED);
  EXPECT_EQ(failed.execution_error(), "the payment provider answered something unexpected");
}

TEST_F(ServiceTest, ASerializationFailureRunsTheWholeTransactionAgain) {
  v1::Approval a = Create("test.conflict_once");
  // The first attempt meets a real 40001 from the database; the retry runs the handler anew.
  ASSERT_OK_AND_ASSIGN(v1::Approval approved, Approve(*alice_, a.id()));
  EXPECT_EQ(approved.status(), v1::APPROVAL_STATUS_APPROVED);
  EXPECT_EQ(approved.version(), 2);
  EXPECT_EQ(ts_->db().Scalar("SELECT last_value FROM test_conflict_probe"), "2");
  EXPECT_EQ(ts_->Effects(a.id()), 1);
  EXPECT_EQ(ts_->db().Scalar("SELECT string_agg(type, ',' ORDER BY id) FROM approvald.events "
                             "WHERE approval_id = '" +
                             a.id() + "'"),
            "created,approved");
}

TEST_F(ServiceTest, TransientHandlerErrorLeavesItPending) {
  v1::Approval a = Create("test.transient");
  auto r = Approve(*alice_, a.id());
  EXPECT_CODE(r, absl::StatusCode::kUnavailable);
  ASSERT_OK_AND_ASSIGN(v1::Approval still, alice_->Get(a.id()));
  EXPECT_EQ(still.status(), v1::APPROVAL_STATUS_PENDING);
  EXPECT_EQ(still.version(), 1);
}

TEST_F(ServiceTest, IdempotentCreate) {
  v1::Approval first = Create("noop", "refund", "key-1");
  v1::Approval again = Create("noop", "refund", "key-1");
  EXPECT_EQ(first.id(), again.id());
  EXPECT_EQ(first.idempotency_key(), "key-1");
  // Another payload under the same key conflicts.
  v1::CreateApprovalRequest other;
  other.set_action_type("noop");
  other.set_summary("a different refund");
  other.set_idempotency_key("key-1");
  auto conflict = agent_->Create(other);
  EXPECT_CODE(conflict, absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(client::ReasonOf(conflict.status()), "IDEMPOTENCY_KEY_CONFLICT");
  // The expiry is not part of the payload: the same request with another ttl is the same one.
  v1::CreateApprovalRequest longer;
  longer.set_action_type("noop");
  longer.set_summary("refund");
  longer.set_idempotency_key("key-1");
  (*longer.mutable_action_data()->mutable_fields())["order_id"].set_number_value(42);
  longer.mutable_ttl()->set_seconds(7200);
  ASSERT_OK_AND_ASSIGN(v1::Approval same, agent_->Create(longer));
  EXPECT_EQ(same.id(), first.id());
  EXPECT_EQ(same.expire_time().seconds(), first.expire_time().seconds());
  // Keys are scoped to the requester.
  other.set_summary("refund");
  (*other.mutable_action_data()->mutable_fields())["order_id"].set_number_value(42);
  ASSERT_OK_AND_ASSIGN(v1::Approval bobs, bob_->Create(other));
  EXPECT_NE(bobs.id(), first.id());
  EXPECT_EQ(ts_->db().Scalar("SELECT count(*) FROM approvald.events WHERE type = 'created'"), "2");
}

TEST_F(ServiceTest, RequestIdReplaysTheFirstAnswer) {
  v1::Approval a = Create("test.effect");
  ASSERT_OK_AND_ASSIGN(v1::Approval first, Approve(*alice_, a.id(), 0, "retry-me"));
  ASSERT_OK_AND_ASSIGN(v1::Approval replay, Approve(*alice_, a.id(), 0, "retry-me"));
  EXPECT_EQ(replay.id(), first.id());
  EXPECT_EQ(replay.version(), first.version());
  EXPECT_EQ(ts_->Effects(a.id()), 1);
  // The same request id from another caller is a different request.
  EXPECT_EQ(client::ReasonOf(Approve(*bob_, a.id(), 0, "retry-me").status()), "ALREADY_PROCESSED");
  // Reusing a request id for another approval is a client bug.
  v1::Approval b = Create("noop");
  EXPECT_CODE(Approve(*alice_, b.id(), 0, "retry-me"), absl::StatusCode::kInvalidArgument);
}

TEST_F(ServiceTest, RejectAndCancel) {
  v1::Approval a = Create("test.effect");
  v1::RejectRequest reject;
  reject.set_id(a.id());
  EXPECT_CODE(bob_->Reject(reject), absl::StatusCode::kInvalidArgument);  // reason required
  reject.set_reason("not this order");
  ASSERT_OK_AND_ASSIGN(v1::Approval rejected, bob_->Reject(reject));
  EXPECT_EQ(rejected.status(), v1::APPROVAL_STATUS_REJECTED);
  EXPECT_EQ(rejected.decision_reason(), "not this order");
  EXPECT_EQ(ts_->Effects(a.id()), 0);

  v1::Approval b = Create("noop");
  v1::CancelApprovalRequest cancel;
  cancel.set_id(b.id());
  EXPECT_CODE(bob_->Cancel(cancel), absl::StatusCode::kPermissionDenied);  // not the requester
  ASSERT_OK_AND_ASSIGN(v1::Approval cancelled, agent_->Cancel(cancel));
  EXPECT_EQ(cancelled.status(), v1::APPROVAL_STATUS_CANCELLED);
  EXPECT_EQ(cancelled.decided_by(), "agent");
  EXPECT_EQ(client::ReasonOf(Approve(*alice_, b.id()).status()), "ALREADY_PROCESSED");
}

// Rejecting is the safe direction: a requester who also holds one of the type's approver roles
// may reject their own approval (self-approval rules only stop approving). It ends REJECTED by
// them, with their reason. (Without such a role it is ROLE_REQUIRED, as for anyone:
// ActionTypesTest.)
TEST_F(ServiceTest, ARequesterWithAnApproverRoleMayRejectTheirOwnApproval) {
  v1::Approval a = Create("test.effect");  // by agent, who holds approver and requester
  v1::RejectRequest reject;
  reject.set_id(a.id());
  reject.set_reason("asked by mistake");
  ASSERT_OK_AND_ASSIGN(v1::Approval rejected, agent_->Reject(reject));
  EXPECT_EQ(rejected.status(), v1::APPROVAL_STATUS_REJECTED);
  EXPECT_EQ(rejected.decided_by(), "agent");
  EXPECT_EQ(rejected.decision_reason(), "asked by mistake");
  EXPECT_EQ(ts_->Effects(a.id()), 0);
}

TEST_F(ServiceTest, NotFound) {
  EXPECT_CODE(alice_->Get("00000000-0000-4000-8000-000000000000"), absl::StatusCode::kNotFound);
  EXPECT_CODE(Approve(*alice_, "00000000-0000-4000-8000-000000000000"),
              absl::StatusCode::kNotFound);
}

TEST_F(ServiceTest, PaginationReturnsEveryRowExactlyOnce) {
  std::set<std::string> created;
  for (int i = 0; i < 23; ++i) created.insert(Create(i % 3 == 0 ? "test.effect" : "noop").id());
  // Same created_at for several rows exercises the id tie-breaker.
  ts_->db().Scalar("UPDATE approvald.approvals SET created_at = date_trunc('second', created_at)");
  v1::ListApprovalsRequest req;
  req.set_page_size(5);
  std::set<std::string> seen;
  int pages = 0;
  int64_t last_seconds = INT64_MAX;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(v1::ListApprovalsResponse page, alice_->List(req));
    ++pages;
    EXPECT_LE(page.approvals_size(), 5);
    for (const auto& a : page.approvals()) {
      EXPECT_TRUE(seen.insert(a.id()).second) << "duplicate " << a.id();
      EXPECT_LE(a.create_time().seconds(), last_seconds);  // newest first
      last_seconds = a.create_time().seconds();
    }
    if (page.next_page_token().empty()) break;
    req.set_page_token(page.next_page_token());
    ASSERT_LT(pages, 20);
  }
  EXPECT_EQ(seen, created);
  EXPECT_EQ(pages, 5);

  // Filters.
  v1::ListApprovalsRequest effects;
  effects.set_action_type("test.effect");
  effects.add_statuses(v1::APPROVAL_STATUS_PENDING);
  ASSERT_OK_AND_ASSIGN(v1::ListApprovalsResponse only, alice_->List(effects));
  EXPECT_EQ(only.approvals_size(), 8);

  // A forged token, or one issued for other filters, is INVALID_ARGUMENT.
  v1::ListApprovalsRequest first;
  first.set_page_size(5);
  ASSERT_OK_AND_ASSIGN(v1::ListApprovalsResponse p1, alice_->List(first));
  std::string forged = p1.next_page_token();
  forged[forged.size() / 2] = forged[forged.size() / 2] == 'A' ? 'B' : 'A';
  first.set_page_token(forged);
  EXPECT_CODE(alice_->List(first), absl::StatusCode::kInvalidArgument);
  effects.set_page_token(p1.next_page_token());
  EXPECT_CODE(alice_->List(effects), absl::StatusCode::kInvalidArgument);
  first.set_page_token("not base64 at all!");
  EXPECT_CODE(alice_->List(first), absl::StatusCode::kInvalidArgument);
  // page_size is capped, not rejected; negative is rejected.
  v1::ListApprovalsRequest big;
  big.set_page_size(100000);
  ASSERT_OK_AND_ASSIGN(v1::ListApprovalsResponse all, alice_->List(big));
  EXPECT_EQ(all.approvals_size(), 23);
  big.set_page_size(-1);
  EXPECT_CODE(alice_->List(big), absl::StatusCode::kInvalidArgument);
}

TEST_F(ServiceTest, BadInputIsInvalidArgumentAndTheServerKeepsServing) {
  EXPECT_CODE(alice_->Get("not-a-uuid"), absl::StatusCode::kInvalidArgument);
  EXPECT_CODE(Approve(*alice_, "'; DROP TABLE approvald.approvals; --"),
              absl::StatusCode::kInvalidArgument);

  v1::CreateApprovalRequest bad_type;
  bad_type.set_action_type("Refund-Order");
  EXPECT_CODE(agent_->Create(bad_type), absl::StatusCode::kInvalidArgument);
  bad_type.set_action_type("no.such.type");
  auto unknown = agent_->Create(bad_type);
  EXPECT_CODE(unknown, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client::ReasonOf(unknown.status()), "UNKNOWN_ACTION_TYPE");

  v1::CreateApprovalRequest big;
  big.set_action_type("noop");
  (*big.mutable_action_data()->mutable_fields())["blob"].set_string_value(std::string(100000, 'x'));
  auto too_big = agent_->Create(big);
  EXPECT_CODE(too_big, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client::ReasonOf(too_big.status()), "INVALID_ACTION_DATA");

  v1::CreateApprovalRequest deep;
  deep.set_action_type("noop");
  google::protobuf::Struct* s = deep.mutable_action_data();
  for (int i = 0; i < 25; ++i) s = (*s->mutable_fields())["n"].mutable_struct_value();
  EXPECT_CODE(agent_->Create(deep), absl::StatusCode::kInvalidArgument);
  // Far deeper than protobuf parses: refused by gRPC itself, never a crash.
  for (int i = 0; i < 200; ++i) s = (*s->mutable_fields())["n"].mutable_struct_value();
  EXPECT_FALSE(agent_->Create(deep).ok());

  v1::CreateApprovalRequest nan;
  nan.set_action_type("noop");
  (*nan.mutable_action_data()->mutable_fields())["x"].set_number_value(std::nan(""));
  EXPECT_CODE(agent_->Create(nan), absl::StatusCode::kInvalidArgument);

  v1::CreateApprovalRequest handler_says_no;
  handler_says_no.set_action_type("test.effect");
  (*handler_says_no.mutable_action_data()->mutable_fields())["reject_me"].set_bool_value(true);
  auto refused = agent_->Create(handler_says_no);
  EXPECT_CODE(refused, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client::ReasonOf(refused.status()), "INVALID_ACTION_DATA");

  v1::CreateApprovalRequest huge;  // beyond the server's 4 MiB message limit
  huge.set_action_type("noop");
  huge.set_summary(std::string(5 * 1024 * 1024, 's'));
  EXPECT_CODE(agent_->Create(huge), absl::StatusCode::kResourceExhausted);

  v1::CreateApprovalRequest long_summary;
  long_summary.set_action_type("noop");
  long_summary.set_summary(std::string(5000, 's'));
  EXPECT_CODE(agent_->Create(long_summary), absl::StatusCode::kInvalidArgument);

  // Still serving.
  v1::Approval ok = Create("noop");
  EXPECT_OK(alice_->Get(ok.id()));
  EXPECT_EQ(ts_->db().Scalar("SELECT count(*) FROM approvald.approvals"), "1");
}

TEST_F(ServiceTest, FieldViolationsNameTheField) {
  auto stub = v1::ApprovalService::NewStub(ts_->NewChannel());
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer tok-alice");
  v1::ApproveRequest req;
  req.set_id("nope");
  v1::Approval out;
  grpc::Status st = stub->Approve(&ctx, req, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(st.error_details()));
  google::rpc::BadRequest bad;
  bool found = false;
  for (const auto& any : details.details()) {
    if (any.UnpackTo(&bad)) found = true;
  }
  ASSERT_TRUE(found);
  ASSERT_EQ(bad.field_violations_size(), 1);
  EXPECT_EQ(bad.field_violations(0).field(), "id");
}

TEST_F(ServiceTest, RequestIdIsEchoedOrGenerated) {
  auto stub = v1::ApprovalService::NewStub(ts_->NewChannel());
  v1::Approval a = Create("noop");
  for (const std::string sent : {"trace-abc-123", ""}) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer tok-alice");
    if (!sent.empty()) ctx.AddMetadata("x-request-id", sent);
    v1::GetApprovalRequest req;
    req.set_id(a.id());
    v1::Approval out;
    ASSERT_TRUE(stub->GetApproval(&ctx, req, &out).ok());
    auto md = ctx.GetServerInitialMetadata();
    auto it = md.find("x-request-id");
    ASSERT_NE(it, md.end());
    const std::string got(it->second.data(), it->second.size());
    if (sent.empty()) {
      EXPECT_EQ(got.size(), 16u);
    } else {
      EXPECT_EQ(got, sent);
    }
  }
}

}  // namespace
}  // namespace approvald::testing
