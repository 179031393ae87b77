#include "server/api/page_token.h"

#include <gtest/gtest.h>

#include "tests/testing/status_matchers.h"

namespace approvald::server {
namespace {

namespace v1 = approvals::v1;

TEST(PageTokenTest, RoundTripsTheCursor) {
  PageTokenCodec codec("secret-key");
  v1::ListApprovalsRequest filters;
  filters.add_statuses(v1::APPROVAL_STATUS_PENDING);
  filters.set_action_type("noop");
  db::ListCursor cursor{1764290569123456, "5a3e5ca8-490b-4c47-a759-cd3b19f2f271"};
  const std::string token = codec.Encode(cursor, filters);
  ASSERT_OK_AND_ASSIGN(db::ListCursor back, codec.Decode(token, filters));
  EXPECT_EQ(back.create_time_micros, cursor.create_time_micros);
  EXPECT_EQ(back.id, cursor.id);
  // Status order and repeats do not change the filters.
  v1::ListApprovalsRequest same = filters;
  same.add_statuses(v1::APPROVAL_STATUS_PENDING);
  same.set_page_size(7);
  EXPECT_OK(codec.Decode(token, same));
}

TEST(PageTokenTest, RejectsForgedTamperedAndForeignTokens) {
  PageTokenCodec codec("secret-key");
  v1::ListApprovalsRequest filters;
  const std::string token = codec.Encode({42, "5a3e5ca8-490b-4c47-a759-cd3b19f2f271"}, filters);
  for (size_t i = 0; i < token.size(); ++i) {
    std::string tampered = token;
    tampered[i] = tampered[i] == 'A' ? 'B' : 'A';
    EXPECT_CODE(codec.Decode(tampered, filters), absl::StatusCode::kInvalidArgument) << i;
  }
  EXPECT_CODE(codec.Decode("", filters), absl::StatusCode::kInvalidArgument);
  EXPECT_CODE(codec.Decode("!!!", filters), absl::StatusCode::kInvalidArgument);
  EXPECT_CODE(codec.Decode(token.substr(1), filters), absl::StatusCode::kInvalidArgument);
  EXPECT_CODE(PageTokenCodec("other-key").Decode(token, filters),
              absl::StatusCode::kInvalidArgument);
  v1::ListApprovalsRequest other;
  other.set_action_type("noop");
  EXPECT_CODE(codec.Decode(token, other), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace approvald::server
