// Hostile input against the real gRPC server and PostgreSQL: every bad input of the inventory in
// tests/README.md that no other test pins down with its exact answer (gRPC code, ErrorInfo reason,
// BadRequest field). Each test also checks that nothing was written and that the server still
// answers afterwards.
//
// Tests whose comment starts with "Was a bug (fixed)" pinned down a defect that these tests found.

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/slice.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>  // mkdtemp

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "client/approval_client.h"
#include "handlers/action_config.h"
#include "server/api/page_token.h"
#include "server/approval_server.h"
#include "server/auth/token_store.h"
#include "tests/testing/pg_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_handlers.h"
#include "tests/testing/test_server.h"

namespace approvald::testing {
namespace {

namespace v1 = approvals::v1;
namespace pb = google::protobuf;
using Stub = v1::ApprovalService::Stub;

constexpr char kEvilSql[] = "'; DROP TABLE approvald.votes; --";

// A readable label for a (possibly huge or binary) input in failure messages.
std::string Show(const std::string& s) {
  if (s.size() <= 48) return absl::StrCat("\"", absl::CHexEscape(s), "\"");
  return absl::StrCat("\"", absl::CHexEscape(s.substr(0, 48)), "...\" (", s.size(), " bytes)");
}

std::string CodeName(const grpc::Status& st) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(st.error_code()));
}

// INVALID_ARGUMENT whose google.rpc.BadRequest names `field`, with ErrorInfo reason `reason`
// (domain approvald), or with no ErrorInfo at all when `reason` is empty.
::testing::AssertionResult IsFieldError(const grpc::Status& st, const std::string& field,
                                        const std::string& reason = "") {
  const client::RpcError e = client::DecodeError(st);
  if (st.error_code() != grpc::StatusCode::INVALID_ARGUMENT) {
    return ::testing::AssertionFailure()
           << "code " << CodeName(st) << " (" << Show(st.error_message())
           << "), want INVALID_ARGUMENT naming " << Show(field);
  }
  if (!e.bad_request) {
    return ::testing::AssertionFailure()
           << "INVALID_ARGUMENT without a decodable google.rpc.BadRequest (message "
           << Show(st.error_message()) << ", " << st.error_details().size()
           << " bytes of status details)";
  }
  bool named = false;
  std::vector<std::string> fields;
  for (const auto& v : e.bad_request->field_violations()) {
    named = named || v.field() == field;
    fields.push_back(Show(v.field()));
  }
  if (!named) {
    return ::testing::AssertionFailure()
           << "no violation names " << Show(field) << "; got " << absl::StrJoin(fields, ", ");
  }
  if (reason.empty() && e.info) {
    return ::testing::AssertionFailure() << "unexpected ErrorInfo reason " << e.info->reason();
  }
  if (!reason.empty()) {
    if (!e.info) return ::testing::AssertionFailure() << "no ErrorInfo, want reason " << reason;
    if (e.info->reason() != reason || e.info->domain() != "approvald") {
      return ::testing::AssertionFailure() << "ErrorInfo " << e.info->domain() << "/"
                                           << e.info->reason() << ", want approvald/" << reason;
    }
  }
  return ::testing::AssertionSuccess();
}

// `code` with no ErrorInfo (UNAUTHENTICATED, RESOURCE_EXHAUSTED, UNAVAILABLE, NOT_FOUND).
::testing::AssertionResult IsPlainError(const grpc::Status& st, grpc::StatusCode code) {
  if (st.error_code() != code) {
    return ::testing::AssertionFailure()
           << "code " << CodeName(st) << " (" << Show(st.error_message()) << "), want "
           << absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  }
  const client::RpcError e = client::DecodeError(st);
  if (e.info) return ::testing::AssertionFailure() << "unexpected reason " << e.info->reason();
  return ::testing::AssertionSuccess();
}

// Marks a field whose stored and returned value is compared byte for byte.
const std::string kMarker = "@MARKER@";

// `levels` Structs nested below action_data (action_data itself is level 1).
v1::CreateApprovalRequest NestedStructs(int levels) {
  v1::CreateApprovalRequest req;
  req.set_action_type("noop");
  pb::Struct* s = req.mutable_action_data();
  for (int i = 0; i < levels; ++i) s = (*s->mutable_fields())["n"].mutable_struct_value();
  return req;
}

// `levels` lists nested in action_data.l, the innermost holding `true`.
v1::CreateApprovalRequest NestedLists(int levels) {
  v1::CreateApprovalRequest req;
  req.set_action_type("noop");
  pb::Value* v = &(*req.mutable_action_data()->mutable_fields())["l"];
  for (int i = 0; i < levels; ++i) v = v->mutable_list_value()->add_values();
  v->set_bool_value(true);
  return req;
}

class HostileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ts_ = TestServer::Start();
    ASSERT_NE(ts_, nullptr);
    stub_ = v1::ApprovalService::NewStub(ts_->NewChannel());
    agent_ = ts_->Client("agent");
    alice_ = ts_->Client("alice");
    bob_ = ts_->Client("bob");
  }

  static std::string Bearer(const std::string& who) { return "Bearer tok-" + who; }

  // Runs `call` with an `authorization` header (none if empty) and a 30 s deadline.
  template <typename Call>
  grpc::Status With(const std::string& authorization, Call call) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (!authorization.empty()) ctx.AddMetadata("authorization", authorization);
    return call(&ctx);
  }

  grpc::Status Create(const std::string& auth, const v1::CreateApprovalRequest& req,
                      v1::Approval* out = nullptr) {
    v1::Approval ignored;
    return With(auth, [&](grpc::ClientContext* ctx) {
      return stub_->CreateApproval(ctx, req, out ? out : &ignored);
    });
  }
  grpc::Status Get(const std::string& auth, const std::string& id, v1::Approval* out = nullptr) {
    v1::GetApprovalRequest req;
    req.set_id(id);
    v1::Approval ignored;
    return With(auth, [&](grpc::ClientContext* ctx) {
      return stub_->GetApproval(ctx, req, out ? out : &ignored);
    });
  }
  grpc::Status List(const std::string& auth, const v1::ListApprovalsRequest& req,
                    v1::ListApprovalsResponse* out = nullptr) {
    v1::ListApprovalsResponse ignored;
    return With(auth, [&](grpc::ClientContext* ctx) {
      return stub_->ListApprovals(ctx, req, out ? out : &ignored);
    });
  }
  grpc::Status Approve(const std::string& auth, const v1::ApproveRequest& req) {
    v1::Approval out;
    return With(auth, [&](grpc::ClientContext* ctx) { return stub_->Approve(ctx, req, &out); });
  }
  grpc::Status Reject(const std::string& auth, const v1::RejectRequest& req) {
    v1::Approval out;
    return With(auth, [&](grpc::ClientContext* ctx) { return stub_->Reject(ctx, req, &out); });
  }
  grpc::Status Cancel(const std::string& auth, const v1::CancelApprovalRequest& req) {
    v1::Approval out;
    return With(auth,
                [&](grpc::ClientContext* ctx) { return stub_->CancelApproval(ctx, req, &out); });
  }
  grpc::Status ListTypes(const std::string& auth) {
    v1::ListActionTypesResponse out;
    return With(auth, [&](grpc::ClientContext* ctx) {
      return stub_->ListActionTypes(ctx, v1::ListActionTypesRequest(), &out);
    });
  }
  // How a WatchApprovals stream that should be refused at once ends (10 s deadline).
  grpc::Status Watch(const std::string& auth, const v1::WatchApprovalsRequest& req) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!auth.empty()) ctx.AddMetadata("authorization", auth);
    std::unique_ptr<grpc::ClientReader<v1::ApprovalEvent>> reader =
        stub_->WatchApprovals(&ctx, req);
    v1::ApprovalEvent event;
    while (reader->Read(&event)) {
    }
    return reader->Finish();
  }

  // A unary call with a hand-made request body, on a connection of its own.
  grpc::Status RawUnary(const std::string& method, const std::string& wire,
                        const std::string& auth) {
    grpc::GenericStub stub(ts_->NewChannel());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (!auth.empty()) ctx.AddMetadata("authorization", auth);
    grpc::Slice slice(wire);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    std::promise<grpc::Status> done;
    const std::string full_method = absl::StrCat("/approvals.v1.ApprovalService/", method);
    stub.UnaryCall(&ctx, full_method, grpc::StubOptions(), &request, &response,
                   [&](grpc::Status s) { done.set_value(std::move(s)); });
    return done.get_future().get();
  }

  v1::Approval NewApproval(const std::string& type = "noop") {
    v1::CreateApprovalRequest req;
    req.set_action_type(type);
    req.set_summary("a legitimate approval");
    absl::StatusOr<v1::Approval> r = agent_->Create(req);
    EXPECT_OK(r);
    return r.ok() ? *r : v1::Approval();
  }

  // The approval is untouched: pending, version 1, only its `created` event.
  void ExpectUntouched(const std::string& id) {
    v1::Approval got;
    grpc::Status st = Get(Bearer("alice"), id, &got);
    ASSERT_TRUE(st.ok()) << CodeName(st) << ": " << st.error_message();
    EXPECT_EQ(got.status(), v1::APPROVAL_STATUS_PENDING);
    EXPECT_EQ(got.version(), 1);
    EXPECT_EQ(ts_->db().Scalar("SELECT string_agg(type, ',') FROM approvald.events WHERE "
                               "approval_id = '" +
                               id + "'"),
              "created");
  }

  // Reads and the in-memory call still answer, on the shared connection and on a new one.
  void ExpectStillServing() {
    grpc::Status types = ListTypes(Bearer("alice"));
    EXPECT_TRUE(types.ok()) << CodeName(types) << ": " << types.error_message();
    v1::ListApprovalsRequest one;
    one.set_page_size(1);
    grpc::Status list = List(Bearer("alice"), one);
    EXPECT_TRUE(list.ok()) << CodeName(list) << ": " << list.error_message();
    absl::StatusOr<v1::ListActionTypesResponse> fresh = ts_->Client("bob")->ListActionTypes();
    EXPECT_OK(fresh);
  }

  std::string Count(const std::string& table) {
    return ts_->db().Scalar("SELECT count(*) FROM " + table);
  }

  std::unique_ptr<TestServer> ts_;
  std::unique_ptr<Stub> stub_;
  std::unique_ptr<client::ApprovalClient> agent_, alice_, bob_;
};

// --- Oversized messages and fields -------------------------------------------------------------

TEST_F(HostileInputTest, MessagesOverMaxMessageBytesAreResourceExhaustedAndChangeNothing) {
  const v1::Approval a = NewApproval("test.effect");
  const std::string huge(5 * 1024 * 1024, 'x');  // the server's --max-message-bytes is 4 MiB

  v1::CreateApprovalRequest summary;
  summary.set_action_type("noop");
  summary.set_summary(huge);
  EXPECT_TRUE(IsPlainError(Create(Bearer("agent"), summary), grpc::StatusCode::RESOURCE_EXHAUSTED));
  // The transport refuses it before approvald even authenticates the caller.
  EXPECT_TRUE(IsPlainError(Create("", summary), grpc::StatusCode::RESOURCE_EXHAUSTED));

  v1::CreateApprovalRequest data;
  data.set_action_type("noop");
  (*data.mutable_action_data()->mutable_fields())["blob"].set_string_value(huge);
  EXPECT_TRUE(IsPlainError(Create(Bearer("agent"), data), grpc::StatusCode::RESOURCE_EXHAUSTED));

  v1::ApproveRequest approve;
  approve.set_id(a.id());
  approve.set_comment(huge);
  EXPECT_TRUE(
      IsPlainError(Approve(Bearer("alice"), approve), grpc::StatusCode::RESOURCE_EXHAUSTED));

  v1::RejectRequest reject;
  reject.set_id(a.id());
  reject.set_reason(huge);
  EXPECT_TRUE(IsPlainError(Reject(Bearer("alice"), reject), grpc::StatusCode::RESOURCE_EXHAUSTED));

  v1::ListApprovalsRequest list;
  list.set_page_token(huge);
  EXPECT_TRUE(IsPlainError(List(Bearer("alice"), list), grpc::StatusCode::RESOURCE_EXHAUSTED));

  v1::WatchApprovalsRequest watch;
  watch.set_action_type(huge);
  EXPECT_TRUE(IsPlainError(Watch(Bearer("alice"), watch), grpc::StatusCode::RESOURCE_EXHAUSTED));

  EXPECT_EQ(Count("approvald.approvals"), "1");
  EXPECT_EQ(ts_->Effects(a.id()), 0);
  ExpectUntouched(a.id());
  ExpectStillServing();
}

TEST_F(HostileInputTest, OversizedFieldsUnderTheMessageLimitNameTheField) {
  const v1::Approval a = NewApproval("test.effect");

  // summary: 2000 bytes is the limit (allowed), one more is not; 3 MiB fits the message limit.
  v1::CreateApprovalRequest create;
  create.set_action_type("noop");
  create.set_summary(std::string(2000, 's'));
  grpc::Status at_limit = Create(Bearer("agent"), create);
  EXPECT_TRUE(at_limit.ok()) << CodeName(at_limit) << ": " << at_limit.error_message();
  create.set_summary(std::string(2001, 's'));
  EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), create), "summary"));
  create.set_summary(std::string(3 * 1024 * 1024, 's'));
  EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), create), "summary"));
  create.clear_summary();

  // idempotency_key: at most 128 bytes.
  create.set_idempotency_key(std::string(128, 'k'));
  grpc::Status key_at_limit = Create(Bearer("agent"), create);
  EXPECT_TRUE(key_at_limit.ok()) << CodeName(key_at_limit) << ": " << key_at_limit.error_message();
  create.set_idempotency_key(std::string(129, 'k'));
  EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), create), "idempotency_key"));
  create.set_idempotency_key(std::string(1024 * 1024, 'k'));
  EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), create), "idempotency_key"));
  create.clear_idempotency_key();

  // action_type: ^[a-z][a-z0-9_.]{0,63}$, checked before the type is looked up.
  create.set_action_type(std::string(65, 'a'));
  EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), create), "action_type"));
  create.set_action_type(std::string(100 * 1024, 'a'));
  EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), create), "action_type"));

  // Decisions: comment / reason at most 2000 bytes, request_id at most 128.
  v1::ApproveRequest approve;
  approve.set_id(a.id());
  approve.set_comment(std::string(2001, 'c'));
  EXPECT_TRUE(IsFieldError(Approve(Bearer("alice"), approve), "comment"));
  approve.set_comment(std::string(3 * 1024 * 1024, 'c'));
  EXPECT_TRUE(IsFieldError(Approve(Bearer("alice"), approve), "comment"));
  approve.clear_comment();
  approve.set_request_id(std::string(129, 'r'));
  EXPECT_TRUE(IsFieldError(Approve(Bearer("alice"), approve), "request_id"));

  v1::RejectRequest reject;
  reject.set_id(a.id());
  reject.set_reason(std::string(2001, 'r'));
  EXPECT_TRUE(IsFieldError(Reject(Bearer("alice"), reject), "reason"));
  reject.set_reason("no");
  reject.set_request_id(std::string(129, 'r'));
  EXPECT_TRUE(IsFieldError(Reject(Bearer("alice"), reject), "request_id"));

  v1::CancelApprovalRequest cancel;
  cancel.set_id(a.id());
  cancel.set_reason(std::string(2001, 'r'));
  EXPECT_TRUE(IsFieldError(Cancel(Bearer("agent"), cancel), "reason"));
  cancel.clear_reason();
  cancel.set_request_id(std::string(129, 'r'));
  EXPECT_TRUE(IsFieldError(Cancel(Bearer("agent"), cancel), "request_id"));

  // Ids: anything but 36 characters of UUID (here 100 KiB).
  EXPECT_TRUE(IsFieldError(Get(Bearer("alice"), std::string(100 * 1024, 'f')), "id"));

  // ListApprovals / WatchApprovals.
  v1::ListApprovalsRequest list;
  list.set_page_token(std::string(1025, 'A'));
  EXPECT_TRUE(IsFieldError(List(Bearer("alice"), list), "page_token"));
  list.clear_page_token();
  list.set_action_type(std::string(100 * 1024, 'a'));
  EXPECT_TRUE(IsFieldError(List(Bearer("alice"), list), "action_type"));
  v1::WatchApprovalsRequest watch;
  watch.set_action_type(std::string(100 * 1024, 'a'));
  EXPECT_TRUE(IsFieldError(Watch(Bearer("alice"), watch), "action_type"));

  // Only the two at-limit creates were written; the target approval is untouched.
  EXPECT_EQ(Count("approvald.approvals"), "3");
  EXPECT_EQ(ts_->Effects(a.id()), 0);
  EXPECT_EQ(Count("approvald.decision_requests"), "0");
  ExpectUntouched(a.id());
  ExpectStillServing();
}

TEST_F(HostileInputTest, OversizedActionDataIsInvalidActionData) {
  // One string of 70 000 bytes: more than 64 KiB as JSON.
  v1::CreateApprovalRequest blob;
  blob.set_action_type("noop");
  (*blob.mutable_action_data()->mutable_fields())["blob"].set_string_value(std::string(70000, 'x'));
  EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), blob), "action_data", "INVALID_ACTION_DATA"));

  // 10 000 small fields: about 110 KB as JSON.
  v1::CreateApprovalRequest many;
  many.set_action_type("noop");
  for (int i = 0; i < 10000; ++i) {
    (*many.mutable_action_data()->mutable_fields())[absl::StrFormat("k%05d", i)].set_number_value(
        1);
  }
  EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), many), "action_data", "INVALID_ACTION_DATA"));

  // A 3 MiB key (the message limit is 4 MiB).
  v1::CreateApprovalRequest long_key;
  long_key.set_action_type("noop");
  (*long_key.mutable_action_data()->mutable_fields())[std::string(3 * 1024 * 1024, 'k')]
      .set_bool_value(true);
  EXPECT_TRUE(
      IsFieldError(Create(Bearer("agent"), long_key), "action_data", "INVALID_ACTION_DATA"));

  EXPECT_EQ(Count("approvald.approvals"), "0");
  ExpectStillServing();
}

// --- Deep Structs ------------------------------------------------------------------------------

TEST_F(HostileInputTest, ActionDataNestedDeeperThanTwentyLevelsIsInvalidActionData) {
  // 20 levels are allowed (action_data is level 1).
  v1::Approval ok_structs, ok_lists;
  grpc::Status st = Create(Bearer("agent"), NestedStructs(19), &ok_structs);
  EXPECT_TRUE(st.ok()) << CodeName(st) << ": " << st.error_message();
  st = Create(Bearer("agent"), NestedLists(19), &ok_lists);
  EXPECT_TRUE(st.ok()) << CodeName(st) << ": " << st.error_message();
  // Stored and read back as sent.
  v1::Approval got;
  ASSERT_TRUE(Get(Bearer("alice"), ok_structs.id(), &got).ok());
  EXPECT_EQ(got.action_data().ByteSizeLong(), NestedStructs(19).action_data().ByteSizeLong());

  // Deeper, but still within what protobuf parses (about 33 Struct levels, 48 list levels).
  for (int levels : {20, 25, 30}) {
    SCOPED_TRACE(absl::StrCat(levels, " nested structs"));
    EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), NestedStructs(levels)), "action_data",
                             "INVALID_ACTION_DATA"));
  }
  for (int levels : {20, 40}) {
    SCOPED_TRACE(absl::StrCat(levels, " nested lists"));
    EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), NestedLists(levels)), "action_data",
                             "INVALID_ACTION_DATA"));
  }
  EXPECT_EQ(Count("approvald.approvals"), "2");
  ExpectStillServing();
}

// --- Invalid UTF-8 -----------------------------------------------------------------------------

// The technique of the next test works: hand-serialized bytes reach approvald and are answered.
TEST_F(HostileInputTest, HandSerializedRequestsReachTheServer) {
  v1::CreateApprovalRequest req;
  req.set_action_type("noop");
  req.set_summary(kMarker);
  (*req.mutable_action_data()->mutable_fields())["note"].set_string_value("valid UTF-8: \xC3\xA9");
  grpc::Status st = RawUnary("CreateApproval", req.SerializeAsString(), Bearer("agent"));
  EXPECT_TRUE(st.ok()) << CodeName(st) << ": " << st.error_message();
  v1::GetApprovalRequest get;
  get.set_id("00000000-0000-4000-8000-000000000000");
  EXPECT_TRUE(IsPlainError(RawUnary("GetApproval", get.SerializeAsString(), Bearer("alice")),
                           grpc::StatusCode::NOT_FOUND));
  EXPECT_EQ(ts_->db().Scalar("SELECT summary FROM approvald.approvals"), kMarker);
}

// --- Values PostgreSQL or JSON cannot hold -----------------------------------------------------

TEST_F(HostileInputTest, NonFiniteNumbersInActionDataAreInvalidActionData) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double bad : {nan, inf, -inf}) {
    SCOPED_TRACE(absl::StrCat(bad));
    v1::CreateApprovalRequest top;
    top.set_action_type("noop");
    (*top.mutable_action_data()->mutable_fields())["x"].set_number_value(bad);
    EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), top), "action_data", "INVALID_ACTION_DATA"));

    v1::CreateApprovalRequest nested;
    nested.set_action_type("noop");
    auto& inner = *(*nested.mutable_action_data()->mutable_fields())["outer"]
                       .mutable_struct_value()
                       ->mutable_fields();
    inner["x"].set_number_value(bad);
    EXPECT_TRUE(
        IsFieldError(Create(Bearer("agent"), nested), "action_data", "INVALID_ACTION_DATA"));

    v1::CreateApprovalRequest in_list;
    in_list.set_action_type("noop");
    auto* list = (*in_list.mutable_action_data()->mutable_fields())["l"].mutable_list_value();
    list->add_values()->set_number_value(1);
    list->add_values()->set_number_value(bad);
    EXPECT_TRUE(
        IsFieldError(Create(Bearer("agent"), in_list), "action_data", "INVALID_ACTION_DATA"));
  }
  // The largest finite doubles are fine and come back unchanged.
  v1::CreateApprovalRequest extremes;
  extremes.set_action_type("noop");
  auto& f = *extremes.mutable_action_data()->mutable_fields();
  f["max"].set_number_value(std::numeric_limits<double>::max());
  f["lowest"].set_number_value(std::numeric_limits<double>::lowest());
  f["tiny"].set_number_value(std::numeric_limits<double>::denorm_min());
  v1::Approval created;
  grpc::Status st = Create(Bearer("agent"), extremes, &created);
  ASSERT_TRUE(st.ok()) << CodeName(st) << ": " << st.error_message();
  v1::Approval got;
  ASSERT_TRUE(Get(Bearer("alice"), created.id(), &got).ok());
  EXPECT_EQ(got.action_data().fields().at("max").number_value(),
            std::numeric_limits<double>::max());
  EXPECT_EQ(got.action_data().fields().at("lowest").number_value(),
            std::numeric_limits<double>::lowest());
  EXPECT_EQ(got.action_data().fields().at("tiny").number_value(),
            std::numeric_limits<double>::denorm_min());
  EXPECT_EQ(Count("approvald.approvals"), "1");
  ExpectStillServing();
}

// Was a bug (fixed): validation refuses NUL in action_data string values but not in keys. The key
// is written to JSON as \u0000, which PostgreSQL's jsonb refuses (SQLSTATE 22P05), and approvald
// answers FAILED_PRECONDITION "unsupported Unicode escape sequence". It should be
// INVALID_ARGUMENT / INVALID_ACTION_DATA on action_data, like a NUL in a value.
TEST_F(HostileInputTest, NulInAnActionDataKeyIsInvalidActionData) {
  for (const std::string& key : {std::string("a\0b", 3), std::string("\0", 1)}) {
    SCOPED_TRACE(Show(key));
    v1::CreateApprovalRequest top;
    top.set_action_type("noop");
    (*top.mutable_action_data()->mutable_fields())[key].set_number_value(1);
    EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), top), "action_data", "INVALID_ACTION_DATA"));

    v1::CreateApprovalRequest nested;
    nested.set_action_type("noop");
    auto& inner = *(*nested.mutable_action_data()->mutable_fields())["outer"]
                       .mutable_struct_value()
                       ->mutable_fields();
    inner[key].set_bool_value(true);
    EXPECT_TRUE(
        IsFieldError(Create(Bearer("agent"), nested), "action_data", "INVALID_ACTION_DATA"));
  }
  EXPECT_EQ(Count("approvald.approvals"), "0");
  ExpectStillServing();
}

TEST_F(HostileInputTest, NulAndControlCharactersInOtherFieldsNameTheField) {
  const v1::Approval a = NewApproval("test.effect");
  // In an action_data string value (what keys should get too, see the test above).
  for (const std::string& value : {std::string("a\0b", 3), std::string("\0", 1)}) {
    v1::CreateApprovalRequest data;
    data.set_action_type("noop");
    (*data.mutable_action_data()->mutable_fields())["s"].set_string_value(value);
    EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), data), "action_data", "INVALID_ACTION_DATA"));
    v1::CreateApprovalRequest in_list;
    in_list.set_action_type("noop");
    (*in_list.mutable_action_data()->mutable_fields())["l"]
        .mutable_list_value()
        ->add_values()
        ->set_string_value(value);
    EXPECT_TRUE(
        IsFieldError(Create(Bearer("agent"), in_list), "action_data", "INVALID_ACTION_DATA"));
  }
  // Free text: no NUL (PostgreSQL text cannot hold it).
  v1::CreateApprovalRequest summary;
  summary.set_action_type("noop");
  summary.set_summary(std::string("a\0b", 3));
  EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), summary), "summary"));
  v1::ApproveRequest comment;
  comment.set_id(a.id());
  comment.set_comment(std::string("a\0b", 3));
  EXPECT_TRUE(IsFieldError(Approve(Bearer("alice"), comment), "comment"));
  v1::RejectRequest reject;
  reject.set_id(a.id());
  reject.set_reason(std::string("no\0", 3));
  EXPECT_TRUE(IsFieldError(Reject(Bearer("alice"), reject), "reason"));
  v1::CancelApprovalRequest cancel;
  cancel.set_id(a.id());
  cancel.set_reason(std::string("no\0", 3));
  EXPECT_TRUE(IsFieldError(Cancel(Bearer("agent"), cancel), "reason"));
  // Keys: printable ASCII without spaces.
  for (const std::string& key :
       {std::string("k\0", 2), std::string("two words"), std::string("tab\there"),
        std::string("del\x7f"), std::string("new\nline")}) {
    SCOPED_TRACE(Show(key));
    v1::CreateApprovalRequest create;
    create.set_action_type("noop");
    create.set_idempotency_key(key);
    EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), create), "idempotency_key"));
    v1::ApproveRequest approve;
    approve.set_id(a.id());
    approve.set_request_id(key);
    EXPECT_TRUE(IsFieldError(Approve(Bearer("alice"), approve), "request_id"));
    v1::RejectRequest reject_key;
    reject_key.set_id(a.id());
    reject_key.set_reason("no");
    reject_key.set_request_id(key);
    EXPECT_TRUE(IsFieldError(Reject(Bearer("alice"), reject_key), "request_id"));
  }
  EXPECT_EQ(Count("approvald.approvals"), "1");
  EXPECT_EQ(Count("approvald.decision_requests"), "0");
  EXPECT_EQ(ts_->Effects(a.id()), 0);
  ExpectUntouched(a.id());
  ExpectStillServing();
}

// --- Malformed ids -----------------------------------------------------------------------------

TEST_F(HostileInputTest, MalformedIdsAreInvalidArgumentOnEveryCall) {
  const v1::Approval a = NewApproval("test.effect");
  ASSERT_EQ(a.id().size(), 36u);
  const std::vector<std::string> bad_ids = {
      "",
      "not-a-uuid",
      a.id().substr(0, 35),                                      // one short
      a.id() + "0",                                              // one long
      absl::StrReplaceAll(a.id(), {{"-", ""}}),                  // no hyphens (PostgreSQL takes it)
      "{" + a.id() + "}",                                        // braces (PostgreSQL takes it)
      " " + a.id(),                                              // padded
      a.id() + "\n",                                             //
      std::string(a.id()).replace(35, 1, "g"),                   // not hex
      std::string(a.id()).replace(8, 1, "_"),                    // wrong separator
      std::string(a.id()).replace(35, 1, std::string(1, '\0')),  // NUL inside
      kEvilSql,
      std::string(kEvilSql) + "______",  // 36 characters
      "../../../../etc/passwd",
      "%",
      std::string(1024 * 1024, 'a'),
  };
  for (const std::string& id : bad_ids) {
    SCOPED_TRACE(Show(id));
    EXPECT_TRUE(IsFieldError(Get(Bearer("alice"), id), "id"));
    v1::ApproveRequest approve;
    approve.set_id(id);
    EXPECT_TRUE(IsFieldError(Approve(Bearer("alice"), approve), "id"));
    v1::RejectRequest reject;
    reject.set_id(id);
    reject.set_reason("no");
    EXPECT_TRUE(IsFieldError(Reject(Bearer("alice"), reject), "id"));
    v1::CancelApprovalRequest cancel;
    cancel.set_id(id);
    EXPECT_TRUE(IsFieldError(Cancel(Bearer("agent"), cancel), "id"));
  }
  // Well-formed ids of nothing: NOT_FOUND, without a reason.
  for (const std::string id :
       {"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"}) {
    EXPECT_TRUE(IsPlainError(Get(Bearer("alice"), id), grpc::StatusCode::NOT_FOUND)) << id;
    v1::ApproveRequest approve;
    approve.set_id(id);
    EXPECT_TRUE(IsPlainError(Approve(Bearer("alice"), approve), grpc::StatusCode::NOT_FOUND)) << id;
  }
  EXPECT_EQ(Count("approvald.approvals"), "1");
  EXPECT_EQ(ts_->Effects(a.id()), 0);
  ExpectUntouched(a.id());
  ExpectStillServing();
}

// --- Page tokens and page sizes ----------------------------------------------------------------

TEST_F(HostileInputTest, MalformedForgedAndTamperedPageTokensNameThePageToken) {
  for (int i = 0; i < 3; ++i) NewApproval();
  v1::ListApprovalsRequest first;
  first.set_page_size(1);
  v1::ListApprovalsResponse p1;
  ASSERT_TRUE(List(Bearer("alice"), first, &p1).ok());
  ASSERT_EQ(p1.approvals_size(), 1);
  const std::string token = p1.next_page_token();
  ASSERT_FALSE(token.empty());

  std::vector<std::pair<std::string, std::string>> bad = {
      {"not base64", "not base64 at all!"},
      {"padding only", "===="},
      {"too short", "AAAA"},
      {"truncated", token.substr(1)},
      {"extended", token + "AAAA"},
      {"doubled", token + token},
      {"1024 bytes", std::string(1024, 'A')},
      {"1025 bytes", std::string(1025, 'A')},
      {"SQL", "' OR 1=1; --"},
      {"percent", "%00%ff"},
  };
  for (size_t i = 0; i < token.size(); ++i) {  // every character tampered with
    std::string tampered = token;
    tampered[i] = tampered[i] == 'A' ? 'B' : 'A';
    bad.emplace_back(absl::StrCat("tampered at ", i), tampered);
  }
  // Forged: well-formed, for these filters, but signed with another key.
  bad.emplace_back("forged",
                   server::PageTokenCodec("attacker-key").Encode({0, p1.approvals(0).id()}, first));
  // Signed with the server's real key (an insider), but the cursor id is not a UUID.
  const std::string key =
      ts_->db().Scalar("SELECT value FROM approvald.settings WHERE name = 'page_token_key'");
  ASSERT_FALSE(key.empty());
  bad.emplace_back(
      "signed, SQL in the cursor",
      server::PageTokenCodec(key).Encode(
          {0, std::string(kEvilSql) + std::string(36 - sizeof(kEvilSql) + 1, ' ')}, first));
  for (const auto& [what, t] : bad) {
    SCOPED_TRACE(what);
    v1::ListApprovalsRequest req = first;
    req.set_page_token(t);
    EXPECT_TRUE(IsFieldError(List(Bearer("alice"), req), "page_token"));
  }
  // A genuine token presented with other filters.
  v1::ListApprovalsRequest other_type = first;
  other_type.set_action_type("noop");
  other_type.set_page_token(token);
  EXPECT_TRUE(IsFieldError(List(Bearer("alice"), other_type), "page_token"));
  v1::ListApprovalsRequest other_status = first;
  other_status.add_statuses(v1::APPROVAL_STATUS_PENDING);
  other_status.set_page_token(token);
  EXPECT_TRUE(IsFieldError(List(Bearer("alice"), other_status), "page_token"));

  // The genuine token still pages on.
  v1::ListApprovalsRequest next = first;
  next.set_page_token(token);
  v1::ListApprovalsResponse p2;
  ASSERT_TRUE(List(Bearer("alice"), next, &p2).ok());
  ASSERT_EQ(p2.approvals_size(), 1);
  EXPECT_NE(p2.approvals(0).id(), p1.approvals(0).id());
  EXPECT_EQ(Count("approvald.approvals"), "3");
  ExpectStillServing();
}

TEST_F(HostileInputTest, PageSizesAreCappedAt500AndNegativeOnesNameThePageSize) {
  ts_->db().Scalar(
      "INSERT INTO approvald.approvals (action_type, requested_by, expires_at) "
      "SELECT 'noop', 'agent', now() + interval '1 day' FROM generate_series(1, 510)");
  ASSERT_EQ(Count("approvald.approvals"), "510");
  for (int size : {std::numeric_limits<int32_t>::max(), 100000, 501}) {
    SCOPED_TRACE(size);
    v1::ListApprovalsRequest req;
    req.set_page_size(size);
    v1::ListApprovalsResponse page;
    grpc::Status st = List(Bearer("alice"), req, &page);
    ASSERT_TRUE(st.ok()) << CodeName(st) << ": " << st.error_message();
    EXPECT_EQ(page.approvals_size(), 500);
    ASSERT_FALSE(page.next_page_token().empty());
    req.set_page_token(page.next_page_token());
    v1::ListApprovalsResponse rest;
    ASSERT_TRUE(List(Bearer("alice"), req, &rest).ok());
    EXPECT_EQ(rest.approvals_size(), 10);
    EXPECT_TRUE(rest.next_page_token().empty());
  }
  v1::ListApprovalsResponse default_page;
  ASSERT_TRUE(List(Bearer("alice"), v1::ListApprovalsRequest(), &default_page).ok());
  EXPECT_EQ(default_page.approvals_size(), 50);
  for (int size : {-1, -500, std::numeric_limits<int32_t>::min()}) {
    SCOPED_TRACE(size);
    v1::ListApprovalsRequest req;
    req.set_page_size(size);
    EXPECT_TRUE(IsFieldError(List(Bearer("alice"), req), "page_size"));
  }
  ExpectStillServing();
}

// Was a bug (fixed): a page is bounded by count (50 by default, at most 500), never by bytes. An
// approval whose action_data is under the 64 KiB JSON limit can be ~220 KB as protobuf (a list of
// 20 000 small numbers: 2 bytes each as JSON, 11 as protobuf), so about 20 of them make the
// DEFAULT page larger than 4 MiB, the receive limit of every gRPC client with default settings
// (approvalctl, the Python client, grpcurl). One requester can so make ListApprovals fail with
// RESOURCE_EXHAUSTED for everybody. A page should stop short (with a next_page_token) before it
// outgrows 4 MiB.
TEST_F(HostileInputTest, APageOfApprovalsAtTheSizeLimitsFitsADefaultClient) {
  v1::CreateApprovalRequest req;
  req.set_action_type("noop");
  auto* numbers = (*req.mutable_action_data()->mutable_fields())["l"].mutable_list_value();
  for (int i = 0; i < 20000; ++i) numbers->add_values()->set_number_value(1);
  ASSERT_GT(req.action_data().ByteSizeLong(), 200000u);
  std::set<std::string> created;
  for (int i = 0; i < 24; ++i) {
    absl::StatusOr<v1::Approval> a = agent_->Create(req);  // accepted: ~40 KB as JSON
    ASSERT_OK(a);
    created.insert(a->id());
  }
  for (int page_size : {0, 500}) {
    SCOPED_TRACE(absl::StrCat("page_size ", page_size));
    v1::ListApprovalsRequest list;
    list.set_page_size(page_size);
    std::set<std::string> seen;
    for (int pages = 0; pages < 30; ++pages) {
      absl::StatusOr<v1::ListApprovalsResponse> page = bob_->List(list);  // default 4 MiB limit
      ASSERT_OK(page);
      for (const auto& a : page->approvals()) seen.insert(a.id());
      if (page->next_page_token().empty()) break;
      list.set_page_token(page->next_page_token());
    }
    EXPECT_EQ(seen, created);
  }
}

// --- SQL-looking strings -----------------------------------------------------------------------

TEST_F(HostileInputTest, SqlLookingStringsAreStoredAndReturnedVerbatim) {
  const std::string evil = kEvilSql;
  const std::string bobby = "Robert'); DROP TABLE approvald.events;--";
  const std::string dollars = "$$; DROP TABLE approvald.approvals; $$ \\x00 E'\\'' :order_id $1";
  const std::string key = "';DROP_TABLE_ai_approvals;--";  // printable, no spaces: a valid key

  v1::CreateApprovalRequest req;
  req.set_action_type("test.effect");  // its handler writes the summary to test_effects.note
  req.set_summary(evil);
  req.set_idempotency_key(key);
  auto& f = *req.mutable_action_data()->mutable_fields();
  f["note"].set_string_value(evil);
  f[evil].set_string_value("a key that looks like SQL");
  (*f["nested"].mutable_struct_value()->mutable_fields())["q"].set_string_value(bobby);
  f["list"].mutable_list_value()->add_values()->set_string_value("1 OR 1=1");
  f["dollars"].set_string_value(dollars);
  v1::Approval a;
  grpc::Status st = Create(Bearer("agent"), req, &a);
  ASSERT_TRUE(st.ok()) << CodeName(st) << ": " << st.error_message();
  EXPECT_EQ(a.summary(), evil);
  EXPECT_EQ(a.idempotency_key(), key);
  // The SQL-looking key is a key like any other: a retry returns the same approval.
  v1::Approval again;
  ASSERT_TRUE(Create(Bearer("agent"), req, &again).ok());
  EXPECT_EQ(again.id(), a.id());

  // Stored verbatim (read with psql-like SQL, not through approvald).
  const std::string where = " FROM approvald.approvals WHERE id = '" + a.id() + "'";
  EXPECT_EQ(ts_->db().Scalar("SELECT summary" + where), evil);
  EXPECT_EQ(ts_->db().Scalar("SELECT idempotency_key" + where), key);
  EXPECT_EQ(ts_->db().Scalar("SELECT action_data->>'note'" + where), evil);
  EXPECT_EQ(ts_->db().Scalar("SELECT action_data->'nested'->>'q'" + where), bobby);
  EXPECT_EQ(ts_->db().Scalar("SELECT action_data->>'dollars'" + where), dollars);
  EXPECT_EQ(
      ts_->db().Scalar("SELECT count(*) FROM approvald.approvals, jsonb_object_keys(action_data) k "
                       "WHERE k = '''; DROP TABLE approvald.votes; --'"),
      "1");
  // Returned verbatim.
  v1::Approval got;
  ASSERT_TRUE(Get(Bearer("alice"), a.id(), &got).ok());
  EXPECT_EQ(got.summary(), evil);
  EXPECT_EQ(got.action_data().fields().at(evil).string_value(), "a key that looks like SQL");
  EXPECT_EQ(got.action_data().fields().at("nested").struct_value().fields().at("q").string_value(),
            bobby);
  EXPECT_EQ(got.action_data().fields().at("dollars").string_value(), dollars);

  // A handler that writes the summary writes it verbatim too.
  v1::ApproveRequest approve;
  approve.set_id(a.id());
  approve.set_comment(bobby);
  ASSERT_TRUE(Approve(Bearer("alice"), approve).ok());
  EXPECT_EQ(ts_->db().Scalar("SELECT note FROM test_effects WHERE approval_id = '" + a.id() + "'"),
            evil);
  EXPECT_EQ(ts_->db().Scalar("SELECT decision_reason" + where), bobby);

  // A reject reason, verbatim.
  const v1::Approval b = NewApproval();
  v1::RejectRequest reject;
  reject.set_id(b.id());
  reject.set_reason(evil);
  ASSERT_TRUE(Reject(Bearer("alice"), reject).ok());
  EXPECT_EQ(ts_->db().Scalar("SELECT decision_reason FROM approvald.approvals WHERE id = '" +
                             b.id() + "'"),
            evil);

  // Where the value is an identifier, it is refused by its pattern before any SQL runs.
  v1::CreateApprovalRequest bad_type;
  bad_type.set_action_type(evil);
  EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), bad_type), "action_type"));
  v1::ListApprovalsRequest list;
  list.set_action_type("noop' OR '1'='1");
  EXPECT_TRUE(IsFieldError(List(Bearer("alice"), list), "action_type"));
  v1::WatchApprovalsRequest watch;
  watch.set_action_type(evil);
  EXPECT_TRUE(IsFieldError(Watch(Bearer("alice"), watch), "action_type"));

  // Every table is still there, with exactly what was written.
  EXPECT_EQ(Count("approvald.approvals"), "2");
  EXPECT_EQ(Count("approvald.events"), "4");  // created, approved, created, rejected
  EXPECT_EQ(Count("test_effects"), "1");
  ExpectStillServing();
}

// --- Other out-of-range numbers and enums ------------------------------------------------------

TEST_F(HostileInputTest, OutOfRangeNumbersAndEnumsNameTheField) {
  const v1::Approval a = NewApproval("test.effect");
  for (int status : {0, 7, 99, -1}) {
    SCOPED_TRACE(absl::StrCat("status ", status));
    v1::ListApprovalsRequest list;
    list.add_statuses(v1::APPROVAL_STATUS_PENDING);
    list.add_statuses(static_cast<v1::ApprovalStatus>(status));
    EXPECT_TRUE(IsFieldError(List(Bearer("alice"), list), "statuses[1]"));
    v1::WatchApprovalsRequest watch;
    watch.add_statuses(static_cast<v1::ApprovalStatus>(status));
    EXPECT_TRUE(IsFieldError(Watch(Bearer("alice"), watch), "statuses[0]"));
  }
  v1::WatchApprovalsRequest watch;
  watch.set_after_event_id(std::numeric_limits<int64_t>::min());
  EXPECT_TRUE(IsFieldError(Watch(Bearer("alice"), watch), "after_event_id"));

  for (int64_t version : {int64_t{-1}, std::numeric_limits<int64_t>::min()}) {
    v1::ApproveRequest approve;
    approve.set_id(a.id());
    approve.set_expected_version(version);
    EXPECT_TRUE(IsFieldError(Approve(Bearer("alice"), approve), "expected_version"));
    v1::RejectRequest reject;
    reject.set_id(a.id());
    reject.set_reason("no");
    reject.set_expected_version(version);
    EXPECT_TRUE(IsFieldError(Reject(Bearer("alice"), reject), "expected_version"));
    v1::CancelApprovalRequest cancel;
    cancel.set_id(a.id());
    cancel.set_expected_version(version);
    EXPECT_TRUE(IsFieldError(Cancel(Bearer("agent"), cancel), "expected_version"));
  }

  v1::CreateApprovalRequest create;
  create.set_action_type("noop");
  create.mutable_ttl()->set_seconds(-5);
  EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), create), "ttl"));
  create.mutable_ttl()->set_seconds(60);
  create.mutable_ttl()->set_nanos(2000000000);
  EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), create), "ttl"));
  create.mutable_ttl()->set_nanos(0);
  create.mutable_ttl()->set_seconds(std::numeric_limits<int64_t>::max());
  EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), create), "ttl"));
  create.mutable_expire_time()->set_seconds(std::numeric_limits<int64_t>::max());
  EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), create), "expire_time"));
  create.mutable_expire_time()->set_seconds(std::numeric_limits<int64_t>::min());
  EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), create), "expire_time"));
  create.mutable_expire_time()->set_seconds(absl::ToUnixSeconds(absl::Now()) + 3600);
  create.mutable_expire_time()->set_nanos(-1);
  EXPECT_TRUE(IsFieldError(Create(Bearer("agent"), create), "expire_time"));

  EXPECT_EQ(Count("approvald.approvals"), "1");
  ExpectUntouched(a.id());
  ExpectStillServing();
}

// --- Authentication ----------------------------------------------------------------------------

TEST_F(HostileInputTest, MissingAuthorizationIsUnauthenticatedOnEveryCallBeforeValidation) {
  const v1::Approval a = NewApproval("test.effect");
  // Valid requests...
  v1::CreateApprovalRequest create;
  create.set_action_type("noop");
  EXPECT_TRUE(IsPlainError(Create("", create), grpc::StatusCode::UNAUTHENTICATED));
  EXPECT_TRUE(IsPlainError(Get("", a.id()), grpc::StatusCode::UNAUTHENTICATED));
  EXPECT_TRUE(
      IsPlainError(List("", v1::ListApprovalsRequest()), grpc::StatusCode::UNAUTHENTICATED));
  v1::ApproveRequest approve;
  approve.set_id(a.id());
  EXPECT_TRUE(IsPlainError(Approve("", approve), grpc::StatusCode::UNAUTHENTICATED));
  v1::RejectRequest reject;
  reject.set_id(a.id());
  reject.set_reason("no");
  EXPECT_TRUE(IsPlainError(Reject("", reject), grpc::StatusCode::UNAUTHENTICATED));
  v1::CancelApprovalRequest cancel;
  cancel.set_id(a.id());
  EXPECT_TRUE(IsPlainError(Cancel("", cancel), grpc::StatusCode::UNAUTHENTICATED));
  EXPECT_TRUE(IsPlainError(ListTypes(""), grpc::StatusCode::UNAUTHENTICATED));
  EXPECT_TRUE(
      IsPlainError(Watch("", v1::WatchApprovalsRequest()), grpc::StatusCode::UNAUTHENTICATED));

  // ...and invalid ones: authentication comes first, so an anonymous caller learns nothing
  // about what would be valid.
  create.set_action_type("Not A Type");
  create.set_summary(std::string(5000, 's'));
  EXPECT_TRUE(IsPlainError(Create("", create), grpc::StatusCode::UNAUTHENTICATED));
  create.set_action_type("no.such.type");
  create.clear_summary();
  EXPECT_TRUE(IsPlainError(Create("", create), grpc::StatusCode::UNAUTHENTICATED));
  EXPECT_TRUE(IsPlainError(Get("", "not-a-uuid"), grpc::StatusCode::UNAUTHENTICATED));
  v1::ListApprovalsRequest list;
  list.set_page_size(-1);
  list.set_page_token("forged");
  EXPECT_TRUE(IsPlainError(List("", list), grpc::StatusCode::UNAUTHENTICATED));
  reject.set_reason("");
  EXPECT_TRUE(IsPlainError(Reject("", reject), grpc::StatusCode::UNAUTHENTICATED));
  v1::WatchApprovalsRequest watch;
  watch.set_after_event_id(-1);
  EXPECT_TRUE(IsPlainError(Watch("", watch), grpc::StatusCode::UNAUTHENTICATED));

  EXPECT_EQ(Count("approvald.approvals"), "1");
  EXPECT_EQ(ts_->Effects(a.id()), 0);
  ExpectUntouched(a.id());
  ExpectStillServing();
}

TEST_F(HostileInputTest, ForgedAndMalformedBearerTokensAreUnauthenticated) {
  const v1::Approval a = NewApproval("test.effect");
  const std::vector<std::string> headers = {
      "Bearer not-a-token",
      "Bearer " + server::Sha256Hex("tok-alice"),  // the stored hash instead of the token
      "Bearer tok-alic",                           // a prefix
      "Bearer tok-alice-",                         // an extension
      "Bearer TOK-ALICE",                          // tokens are case-sensitive
      "Bearer tok-alice tok-bob",                  // two tokens
      "Bearer",                                    // no token
      "Bearer ",                                   //
      "tok-alice",                                 // no scheme
      "Basic dG9rLWFsaWNlOg==",                    // another scheme
      "Bearer " + std::string(4000, 'A'),          // long
      "Bearer ' OR '1'='1",                        //
  };
  for (const std::string& header : headers) {
    SCOPED_TRACE(Show(header));
    v1::CreateApprovalRequest create;
    create.set_action_type("noop");
    EXPECT_TRUE(IsPlainError(Create(header, create), grpc::StatusCode::UNAUTHENTICATED));
    v1::ApproveRequest approve;
    approve.set_id(a.id());
    EXPECT_TRUE(IsPlainError(Approve(header, approve), grpc::StatusCode::UNAUTHENTICATED));
    EXPECT_TRUE(IsPlainError(ListTypes(header), grpc::StatusCode::UNAUTHENTICATED));
    EXPECT_TRUE(IsPlainError(Watch(header, v1::WatchApprovalsRequest()),
                             grpc::StatusCode::UNAUTHENTICATED));
  }
  EXPECT_EQ(Count("approvald.approvals"), "1");
  EXPECT_EQ(ts_->Effects(a.id()), 0);
  ExpectUntouched(a.id());
  ExpectStillServing();
}

// Tokens do not expire by themselves: a token stops working when it leaves the tokens file and
// approvald reloads it (SIGHUP calls SetTokens, as here).
TEST_F(HostileInputTest, ARevokedTokenIsUnauthenticatedAfterAReload) {
  const v1::Approval a = NewApproval("test.effect");
  std::string tokens;
  for (const char* name : {"alice", "bob"}) {
    absl::StrAppend(&tokens, server::Sha256Hex(absl::StrCat("tok-", name)), " ", name,
                    " approver,requester\n");
  }
  absl::StatusOr<server::TokenStore> reloaded = server::TokenStore::Parse(tokens, "reloaded");
  ASSERT_OK(reloaded);
  ts_->server().service().SetTokens(
      std::make_shared<const server::TokenStore>(std::move(*reloaded)));

  // agent's token is refused on every call, also on the connection agent_ used before.
  v1::CreateApprovalRequest create;
  create.set_action_type("noop");
  EXPECT_TRUE(IsPlainError(Create(Bearer("agent"), create), grpc::StatusCode::UNAUTHENTICATED));
  absl::StatusOr<v1::Approval> old_connection = agent_->Get(a.id());
  EXPECT_CODE(old_connection, absl::StatusCode::kUnauthenticated);
  v1::CancelApprovalRequest cancel;
  cancel.set_id(a.id());
  EXPECT_TRUE(IsPlainError(Cancel(Bearer("agent"), cancel), grpc::StatusCode::UNAUTHENTICATED));
  EXPECT_TRUE(IsPlainError(Watch(Bearer("agent"), v1::WatchApprovalsRequest()),
                           grpc::StatusCode::UNAUTHENTICATED));
  // The tokens that stayed still work.
  v1::Approval got;
  grpc::Status st = Get(Bearer("bob"), a.id(), &got);
  EXPECT_TRUE(st.ok()) << CodeName(st) << ": " << st.error_message();
  EXPECT_EQ(Count("approvald.approvals"), "1");
  ExpectUntouched(a.id());
  ExpectStillServing();
}

TEST_F(HostileInputTest, AnInsaneXRequestIdIsReplacedNotEchoed) {
  const v1::Approval a = NewApproval();
  const std::vector<std::pair<std::string, bool>> sent = {
      {std::string(128, 'r'), true},   // sane: echoed
      {std::string(129, 'r'), false},  // too long
      {"two words", false},            // a space
      {"", false},                     // none
  };
  for (const auto& [value, echoed] : sent) {
    SCOPED_TRACE(Show(value));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    ctx.AddMetadata("authorization", Bearer("alice"));
    if (!value.empty()) ctx.AddMetadata("x-request-id", value);
    v1::GetApprovalRequest req;
    req.set_id(a.id());
    v1::Approval out;
    ASSERT_TRUE(stub_->GetApproval(&ctx, req, &out).ok());
    const auto md = ctx.GetServerInitialMetadata();
    auto it = md.find("x-request-id");
    ASSERT_NE(it, md.end());
    const std::string got(it->second.data(), it->second.size());
    if (echoed) {
      EXPECT_EQ(got, value);
    } else {
      EXPECT_EQ(got.size(), 16u) << got;
      EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
      })) << got;
    }
  }
}

// --- Action types that refuse undeclared fields: hostile key names -----------------------------

constexpr char kStrictConfig[] = R"yaml(
action_types:
  - name: noop
    handler: noop
  - name: strict.type
    handler: noop
    parameters:
      - {name: note, type: string, max_length: 100}
    additional_parameters: false
)yaml";

std::unique_ptr<TestServer> StartStrict() {
  auto registry = handlers::ParseActionConfig(kStrictConfig, "strict.yaml");
  EXPECT_OK(registry);
  if (!registry.ok()) return nullptr;
  TestServerOptions options;
  options.registry = *registry;
  return TestServer::Start(options);
}

// Was a bug (fixed): an undeclared key is echoed in the error message ("action_data.<key> is not a
// parameter of ..."). ToGrpcStatus cuts messages at 1024 bytes without regard to UTF-8, so a long
// non-ASCII key leaves google.rpc.Status.message ending in half a character: the status details
// (grpc-status-details-bin) are then invalid proto3, which client::DecodeError (protobuf's parser)
// refuses: the caller gets neither the ErrorInfo nor the BadRequest. The cut should end on a
// character boundary (or the key should not be echoed).
TEST(HostileKeyTest, ALongNonAsciiKeyKeepsTheErrorDetailsDecodable) {
  std::unique_ptr<TestServer> ts = StartStrict();
  ASSERT_NE(ts, nullptr);
  auto stub = v1::ApprovalService::NewStub(ts->NewChannel());
  for (const std::string prefix : {"", "x"}) {  // one of the two cuts falls inside a character
    std::string key = prefix;
    for (int i = 0; i < 490; ++i) key += "\xC3\xA9";  // é
    SCOPED_TRACE(absl::StrCat("prefix \"", prefix, "\", key of ", key.size(), " bytes"));
    v1::CreateApprovalRequest req;
    req.set_action_type("strict.type");
    (*req.mutable_action_data()->mutable_fields())[key].set_bool_value(true);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    ctx.AddMetadata("authorization", "Bearer tok-agent");
    v1::Approval out;
    const grpc::Status st = stub->CreateApproval(&ctx, req, &out);
    EXPECT_TRUE(IsFieldError(st, "action_data." + key, "INVALID_ACTION_DATA"));
  }
  EXPECT_EQ(ts->db().Scalar("SELECT count(*) FROM approvald.approvals"), "0");
  EXPECT_OK(ts->Client("alice")->ListActionTypes());
}

// Sends approvald's log (the default logger it is started with) to `out` while alive.
class CaptureLog {
 public:
  explicit CaptureLog(std::ostream& out) : previous_(spdlog::default_logger()) {
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "hostile-test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out)));
  }
  ~CaptureLog() { spdlog::set_default_logger(previous_); }
  CaptureLog(const CaptureLog&) = delete;
  CaptureLog& operator=(const CaptureLog&) = delete;

 private:
  std::shared_ptr<spdlog::logger> previous_;
};

// Was a bug (fixed): the same echoed key reaches the text log (the default --log-format) unescaped,
// in the `message=` of the call's log line. A key with a newline forges whole log lines, for
// example a successful Approve by someone else. --log-format json escapes it; text should too.
TEST(HostileKeyTest, ControlCharactersInAKeyCannotForgeALogLine) {
  std::ostringstream log;
  CaptureLog capture(log);
  std::unique_ptr<TestServer> ts = StartStrict();
  ASSERT_NE(ts, nullptr);
  v1::CreateApprovalRequest req;
  req.set_action_type("strict.type");
  (*req.mutable_action_data()->mutable_fields())
      ["x\nFORGED [approvald] [info] rpc method=Approve code=OK reason=- ms=1.00 principal=alice"]
          .set_bool_value(true);
  absl::StatusOr<v1::Approval> r = ts->Client("agent")->Create(req);
  EXPECT_CODE(r, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client::ReasonOf(r.status()), "INVALID_ACTION_DATA");
  EXPECT_EQ(ts->db().Scalar("SELECT count(*) FROM approvald.approvals"), "0");
  ts.reset();  // every server thread is gone: the log is complete and nobody writes to it
  const std::string text = log.str();
  ASSERT_NE(text.find("rpc method=CreateApproval code=INVALID_ARGUMENT"), std::string::npos)
      << text;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    EXPECT_FALSE(absl::StartsWith(line, "FORGED")) << "a forged log line: " << line;
  }
}

// --- Wrong TLS ---------------------------------------------------------------------------------

constexpr char kAgentIdentity[] = "spiffe://approvald.test/agent";

bool Shell(const std::string& command) { return std::system(command.c_str()) == 0; }

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// With openssl, as tests/e2e/tls_e2e.py does: a CA, a server certificate and a client certificate
// that it signed, and two impostors for the same identity: one signed by a rogue CA, one
// self-signed.
bool MakeCertificates(const std::string& dir) {
  const std::string in = "cd '" + dir + "' && ";
  const std::string quiet = " >/dev/null 2>&1";
  auto make_ca = [&](const std::string& name, const std::string& cn) {
    return Shell(in + "openssl req -x509 -newkey rsa:2048 -nodes -keyout " + name + ".key -out " +
                 name + ".pem -days 2 -subj '/CN=" + cn + "'" + quiet);
  };
  auto make_leaf = [&](const std::string& name, const std::string& issuer, const std::string& cn,
                       const std::string& san) {
    return Shell(in + "openssl req -newkey rsa:2048 -nodes -keyout " + name + ".key -out " + name +
                 ".csr -subj '/CN=" + cn + "'" + quiet) &&
           Shell(in + "echo 'subjectAltName=" + san + "' > " + name + ".ext") &&
           Shell(in + "openssl x509 -req -in " + name + ".csr -CA " + issuer + ".pem -CAkey " +
                 issuer + ".key -CAcreateserial -out " + name + ".pem -days 2 -extfile " + name +
                 ".ext" + quiet);
  };
  const std::string agent_san = std::string("URI:") + kAgentIdentity;
  return make_ca("ca", "approvald test CA") && make_ca("rogue_ca", "rogue CA") &&
         make_leaf("server", "ca", "localhost", "DNS:localhost,IP:127.0.0.1") &&
         make_leaf("client", "ca", "agent", agent_san) &&
         make_leaf("impostor", "rogue_ca", "agent", agent_san) &&
         Shell(in +
               "openssl req -x509 -newkey rsa:2048 -nodes -keyout selfsigned.key -out "
               "selfsigned.pem -days 2 -subj '/CN=agent' -addext 'subjectAltName=" +
               agent_san + "'" + quiet);
}

// approvald with mTLS and --principal-from-cert: the client certificate names the principal.
class MutualTlsHostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/approvald-hostile-tls-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    ASSERT_TRUE(MakeCertificates(dir_)) << "openssl failed in " << dir_;
    db_ = TestDatabase::Create();
    ASSERT_NE(db_, nullptr);
    std::unique_ptr<db::pg::PgConnection> conn = db_->Connect();
    ASSERT_NE(conn, nullptr);
    const absl::Status effects = conn->ExecScript(kCreateEffectsTable);
    ASSERT_OK(effects);
    absl::StatusOr<server::TokenStore> tokens =
        server::TokenStore::Parse(absl::StrCat("cert ", kAgentIdentity, " requester\n"), "tokens");
    ASSERT_OK(tokens);
    server::ServerConfig config;
    config.listen = "127.0.0.1:0";
    config.dsn = db_->dsn();
    config.pool_size = 2;
    config.tokens = std::make_shared<const server::TokenStore>(std::move(*tokens));
    config.service.logger = spdlog::default_logger();
    config.service.principal_from_cert = true;
    config.tls.cert_file = dir_ + "/server.pem";
    config.tls.key_file = dir_ + "/server.key";
    config.tls.client_ca_file = dir_ + "/ca.pem";
    config.expiry_interval = absl::ZeroDuration();
    absl::StatusOr<std::unique_ptr<server::ApprovalServer>> started =
        server::ApprovalServer::Start(config, MakeTestRegistry());
    ASSERT_OK(started);
    server_ = std::move(*started);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(5));
    server_.reset();
    db_.reset();
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  // A TLS channel that trusts the test CA, presenting `cert` (none if empty).
  std::shared_ptr<grpc::Channel> TlsChannel(const std::string& target,
                                            const std::string& cert) const {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = ReadAll(dir_ + "/ca.pem");
    if (!cert.empty()) {
      tls.pem_private_key = ReadAll(dir_ + "/" + cert + ".key");
      tls.pem_cert_chain = ReadAll(dir_ + "/" + cert + ".pem");
    }
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetSslTargetNameOverride("localhost");
    return grpc::CreateCustomChannel(target, grpc::SslCredentials(tls), args);
  }
  std::string Target() const { return absl::StrCat("127.0.0.1:", server_->port()); }

  static grpc::Status CreateNoop(const std::shared_ptr<grpc::Channel>& channel, v1::Approval* out,
                                 const std::string& authorization = "") {
    auto stub = v1::ApprovalService::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!authorization.empty()) ctx.AddMetadata("authorization", authorization);
    v1::CreateApprovalRequest req;
    req.set_action_type("noop");
    return stub->CreateApproval(&ctx, req, out);
  }

  std::string dir_;
  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<server::ApprovalServer> server_;
};

TEST_F(MutualTlsHostileTest, ClientCertificatesTheCaDidNotSignAreRefusedAtTheHandshake) {
  ASSERT_NE(server_, nullptr);
  v1::Approval mine;
  grpc::Status st = CreateNoop(TlsChannel(Target(), "client"), &mine);
  ASSERT_TRUE(st.ok()) << CodeName(st) << ": " << st.error_message();
  EXPECT_EQ(mine.requested_by(), kAgentIdentity);

  // The same identity from a rogue CA, self-signed, or no certificate at all.
  for (const std::string cert : {"impostor", "selfsigned", ""}) {
    SCOPED_TRACE(cert.empty() ? "no client certificate" : cert);
    v1::Approval out;
    EXPECT_TRUE(
        IsPlainError(CreateNoop(TlsChannel(Target(), cert), &out), grpc::StatusCode::UNAVAILABLE));
  }
  // Plaintext to the TLS port.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  v1::Approval out;
  EXPECT_TRUE(IsPlainError(
      CreateNoop(grpc::CreateCustomChannel(Target(), grpc::InsecureChannelCredentials(), args),
                 &out),
      grpc::StatusCode::UNAVAILABLE));

  // The trusted certificate still works, and only its approvals exist.
  st = CreateNoop(TlsChannel(Target(), "client"), &mine);
  EXPECT_TRUE(st.ok()) << CodeName(st) << ": " << st.error_message();
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM approvald.approvals"), "2");
  EXPECT_EQ(db_->Scalar("SELECT string_agg(DISTINCT requested_by, ',') FROM approvald.approvals"),
            kAgentIdentity);
}

TEST_F(MutualTlsHostileTest, ATlsClientOnAPlaintextPortIsUnavailable) {
  std::unique_ptr<TestServer> plain = TestServer::Start();
  ASSERT_NE(plain, nullptr);
  v1::Approval out;
  EXPECT_TRUE(IsPlainError(CreateNoop(TlsChannel(plain->target(), ""), &out, "Bearer tok-agent"),
                           grpc::StatusCode::UNAVAILABLE));
  EXPECT_EQ(plain->db().Scalar("SELECT count(*) FROM approvald.approvals"), "0");
  absl::StatusOr<v1::ListActionTypesResponse> types = plain->Client("agent")->ListActionTypes();
  EXPECT_OK(types);
}

}  // namespace
}  // namespace approvald::testing
