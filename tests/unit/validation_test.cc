#include "server/api/validation.h"

#include <gtest/gtest.h>

#include <cmath>

#include "db/errors.h"
#include "server/api/proto_convert.h"
#include "tests/testing/status_matchers.h"

namespace approvald::server {
namespace {

namespace v1 = approvals::v1;

std::string FirstField(const absl::Status& st) {
  auto bad = db::GetBadRequest(st);
  return bad && bad->field_violations_size() > 0 ? bad->field_violations(0).field() : "";
}

TEST(ValidationTest, Uuids) {
  EXPECT_TRUE(IsUuid("5a3e5ca8-490b-4c47-a759-cd3b19f2f271"));
  EXPECT_TRUE(IsUuid("5A3E5CA8-490B-4C47-A759-CD3B19F2F271"));
  EXPECT_FALSE(IsUuid(""));
  EXPECT_FALSE(IsUuid("5a3e5ca8490b4c47a759cd3b19f2f271"));
  EXPECT_FALSE(IsUuid("5a3e5ca8-490b-4c47-a759-cd3b19f2f27g"));
  EXPECT_FALSE(IsUuid("5a3e5ca8-490b-4c47-a759-cd3b19f2f271 "));
}

TEST(ValidationTest, CreateNamesTheBadField) {
  Limits limits;
  v1::CreateApprovalRequest req;
  EXPECT_EQ(FirstField(ValidateCreate(req, limits)), "action_type");
  req.set_action_type("Refund");
  EXPECT_EQ(FirstField(ValidateCreate(req, limits)), "action_type");
  req.set_action_type("refund.order_v2");
  EXPECT_OK(ValidateCreate(req, limits));
  req.set_summary(std::string(limits.max_summary_bytes + 1, 'x'));
  EXPECT_EQ(FirstField(ValidateCreate(req, limits)), "summary");
  req.clear_summary();
  req.set_idempotency_key("has space");
  EXPECT_EQ(FirstField(ValidateCreate(req, limits)), "idempotency_key");
  req.clear_idempotency_key();
  req.mutable_ttl()->set_seconds(0);
  EXPECT_EQ(FirstField(ValidateCreate(req, limits)), "ttl");
  req.mutable_ttl()->set_seconds(3600);
  EXPECT_OK(ValidateCreate(req, limits));
  req.mutable_expire_time()->set_seconds(1);
  req.mutable_expire_time()->set_nanos(-1);
  EXPECT_EQ(FirstField(ValidateCreate(req, limits)), "expire_time");
}

TEST(ValidationTest, ActionDataBounds) {
  Limits limits;
  google::protobuf::Struct data;
  (*data.mutable_fields())["ok"].set_string_value("fine");
  EXPECT_OK(ValidateActionData(data, limits));

  (*data.mutable_fields())["nan"].set_number_value(std::nan(""));
  absl::Status st = ValidateActionData(data, limits);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(db::GetReason(st), v1::INVALID_ACTION_DATA);
  data.mutable_fields()->erase("nan");
  (*data.mutable_fields())["inf"].set_number_value(INFINITY);
  EXPECT_FALSE(ValidateActionData(data, limits).ok());
  data.mutable_fields()->erase("inf");

  google::protobuf::Struct deep;
  google::protobuf::Struct* s = &deep;
  for (int i = 0; i < limits.max_action_data_depth; ++i) {
    s = (*s->mutable_fields())["n"].mutable_struct_value();
  }
  EXPECT_EQ(FirstField(ValidateActionData(deep, limits)), "action_data");

  google::protobuf::Struct lists;
  google::protobuf::Value* v = &(*lists.mutable_fields())["l"];
  for (int i = 0; i < limits.max_action_data_depth; ++i) v = v->mutable_list_value()->add_values();
  v->set_bool_value(true);
  EXPECT_FALSE(ValidateActionData(lists, limits).ok());

  google::protobuf::Struct big;
  (*big.mutable_fields())["blob"].set_string_value(std::string(limits.max_action_data_bytes, 'x'));
  EXPECT_EQ(FirstField(ValidateActionData(big, limits)), "action_data");

  google::protobuf::Struct nul;
  (*nul.mutable_fields())["s"].set_string_value(std::string("a\0b", 3));
  EXPECT_EQ(FirstField(ValidateActionData(nul, limits)), "action_data");

  google::protobuf::Struct unset;
  (*unset.mutable_fields())["empty"];
  EXPECT_FALSE(ValidateActionData(unset, limits).ok());
}

TEST(ValidationTest, Decisions) {
  Limits limits;
  v1::ApproveRequest approve;
  EXPECT_EQ(FirstField(ValidateApprove(approve, limits)), "id");
  approve.set_id("5a3e5ca8-490b-4c47-a759-cd3b19f2f271");
  EXPECT_OK(ValidateApprove(approve, limits));
  approve.set_expected_version(-1);
  EXPECT_EQ(FirstField(ValidateApprove(approve, limits)), "expected_version");
  approve.set_expected_version(0);
  approve.set_request_id(std::string(200, 'r'));
  EXPECT_EQ(FirstField(ValidateApprove(approve, limits)), "request_id");

  v1::RejectRequest reject;
  reject.set_id("5a3e5ca8-490b-4c47-a759-cd3b19f2f271");
  reject.set_reason("   ");
  EXPECT_EQ(FirstField(ValidateReject(reject, limits)), "reason");
  reject.set_reason(std::string("\0x", 2));
  EXPECT_EQ(FirstField(ValidateReject(reject, limits)), "reason");
  reject.set_reason("duplicate request");
  EXPECT_OK(ValidateReject(reject, limits));

  v1::CancelApprovalRequest cancel;
  cancel.set_id("5a3e5ca8-490b-4c47-a759-cd3b19f2f271");
  EXPECT_OK(ValidateCancel(cancel, limits));
}

TEST(ValidationTest, List) {
  v1::ListApprovalsRequest req;
  EXPECT_OK(ValidateList(req));
  req.add_statuses(v1::APPROVAL_STATUS_UNSPECIFIED);
  EXPECT_EQ(FirstField(ValidateList(req)), "statuses[0]");
  req.clear_statuses();
  req.add_statuses(static_cast<v1::ApprovalStatus>(99));
  EXPECT_FALSE(ValidateList(req).ok());
  req.clear_statuses();
  req.set_page_size(-3);
  EXPECT_EQ(FirstField(ValidateList(req)), "page_size");
}

}  // namespace
}  // namespace approvald::server

namespace approvald::server {
namespace {

// Found by tests/fuzz/fuzz_struct_json: an empty list carrying an unknown field (gRPC keeps them
// from the wire) vanished from the JSON that is stored.
TEST(ValidationTest, UnknownFieldsNeverDropPartsOfActionData) {
  google::protobuf::Struct data;
  google::protobuf::ListValue* tags = (*data.mutable_fields())["tags"].mutable_list_value();
  tags->GetReflection()->MutableUnknownFields(tags)->AddVarint(2, 5);
  google::protobuf::ListValue* items = (*data.mutable_fields())["items"].mutable_list_value();
  items->add_values()->set_number_value(1);
  google::protobuf::ListValue* inner = items->add_values()->mutable_list_value();
  inner->GetReflection()->MutableUnknownFields(inner)->AddVarint(2, 5);
  items->add_values()->set_number_value(3);
  absl::StatusOr<std::string> json = StructToJson(data);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_NE(json->find(R"("tags":[])"), std::string::npos) << *json;  // key order is the map's
  EXPECT_NE(json->find(R"("items":[1,[],3])"), std::string::npos) << *json;
}

}  // namespace
}  // namespace approvald::server
