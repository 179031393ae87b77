#include "server/status_conversion.h"

#include <gtest/gtest.h>

#include "db/errors.h"
#include "google/rpc/status.pb.h"

namespace approvald::server {
namespace {

TEST(StatusConversionTest, KeepsCodeAndPacksErrorInfoAndBadRequest) {
  absl::Status st = db::ReasonError(absl::StatusCode::kFailedPrecondition,
                                    approvals::v1::ALREADY_PROCESSED, "already approved",
                                    {{"status", "APPROVAL_STATUS_APPROVED"}, {"version", "2"}});
  grpc::Status g = ToGrpcStatus(st);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(g.error_message(), "already approved");
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(g.error_details()));
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "ALREADY_PROCESSED");
  EXPECT_EQ(info.domain(), "approvald");
  EXPECT_EQ(info.metadata().at("version"), "2");

  grpc::Status field =
      ToGrpcStatus(db::FieldError("action_data", "too deep", approvals::v1::INVALID_ACTION_DATA));
  EXPECT_EQ(field.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(details.ParseFromString(field.error_details()));
  ASSERT_EQ(details.details_size(), 2);
  google::rpc::BadRequest bad;
  ASSERT_TRUE(details.details(1).UnpackTo(&bad));
  EXPECT_EQ(bad.field_violations(0).field(), "action_data");
}

TEST(StatusConversionTest, OkAndPlainErrors) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  grpc::Status g = ToGrpcStatus(absl::UnavailableError("database down"));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::UNAVAILABLE);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(g.error_details()));
  EXPECT_EQ(details.details_size(), 0);
  // Long messages are truncated.
  EXPECT_LE(ToGrpcStatus(absl::InternalError(std::string(10000, 'x'))).error_message().size(),
            1024u);
}

}  // namespace
}  // namespace approvald::server
