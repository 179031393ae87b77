// The gateway's routes, read from the proto's google.api.http options, and the requests and
// errors it makes of HTTP.

#include "server/gateway/http_routes.h"

#include "absl/strings/match.h"
#include "approvals/v1/approvals.grpc.pb.h"
#include "gtest/gtest.h"
#include "server/gateway/transcoding.h"
#include "server/status_conversion.h"

namespace approvald::server {
namespace {

namespace v1 = approvals::v1;

const HttpRoutes& Routes() {
  static const HttpRoutes* routes = [] {
    const auto* pool = google::protobuf::DescriptorPool::generated_pool();
    auto r = HttpRoutes::ForServices({pool->FindServiceByName("approvals.v1.ApprovalService"),
                                      pool->FindServiceByName("approvals.v1.ExecutionService")});
    EXPECT_TRUE(r.ok()) << r.status();
    return new HttpRoutes(std::move(*r));
  }();
  return *routes;
}

std::string MethodOf(absl::string_view verb, absl::string_view path) {
  absl::StatusOr<RouteMatch> m = Routes().Match(verb, path);
  return m.ok() ? m->route->method->name()
                : std::string(absl::StatusCodeToString(m.status().code()));
}

TEST(HttpRoutesTest, EveryMethodHasItsResourcePath) {
  EXPECT_EQ(Routes().routes().size(), 12u);
  EXPECT_EQ(MethodOf("POST", "/v1/executions:claim"), "ClaimExecutions");
  EXPECT_EQ(MethodOf("POST", "/v1/executions/abc:extendLease"), "ExtendLease");
  EXPECT_EQ(MethodOf("POST", "/v1/executions/abc:complete"), "CompleteExecution");
  EXPECT_EQ(MethodOf("POST", "/v1/executions/abc:fail"), "FailExecution");
  EXPECT_EQ(MethodOf("POST", "/v1/approvals"), "CreateApproval");
  EXPECT_EQ(MethodOf("GET", "/v1/approvals"), "ListApprovals");
  EXPECT_EQ(MethodOf("GET", "/v1/approvals/abc"), "GetApproval");
  EXPECT_EQ(MethodOf("POST", "/v1/approvals/abc:approve"), "Approve");
  EXPECT_EQ(MethodOf("POST", "/v1/approvals/abc:reject"), "Reject");
  EXPECT_EQ(MethodOf("POST", "/v1/approvals/abc:cancel"), "CancelApproval");
  EXPECT_EQ(MethodOf("GET", "/v1/events"), "WatchApprovals");
  EXPECT_EQ(MethodOf("GET", "/v1/actionTypes"), "ListActionTypes");
}

TEST(HttpRoutesTest, OtherPathsAndVerbsAreRefusedAsSuch) {
  EXPECT_EQ(MethodOf("GET", "/v1/approvals/abc:approve"), "UNIMPLEMENTED");  // 405
  EXPECT_EQ(Routes().Match("DELETE", "/v1/approvals").status().message(), "POST, GET");
  EXPECT_EQ(MethodOf("POST", "/v1/approvals/abc:explode"), "NOT_FOUND");
  EXPECT_EQ(MethodOf("GET", "/v1/approvals/"), "NOT_FOUND");
  EXPECT_EQ(MethodOf("GET", "/v1/approvals/a/b"), "NOT_FOUND");
  EXPECT_EQ(MethodOf("GET", "v1/approvals"), "NOT_FOUND");
  EXPECT_EQ(MethodOf("GET", ""), "NOT_FOUND");
  EXPECT_EQ(MethodOf("POST", "/v1/approvals/:approve"), "NOT_FOUND");
}

TEST(HttpRoutesTest, TheRequestComesFromBodyQueryAndPath) {
  auto approve = Routes().Match("POST", "/v1/approvals/ID-1:approve");
  ASSERT_TRUE(approve.ok());
  auto req = BuildRequest(*approve, R"({"comment":"fine","expectedVersion":"3"})", {});
  ASSERT_TRUE(req.ok()) << req.status();
  const auto& a = static_cast<const v1::ApproveRequest&>(**req);
  EXPECT_EQ(a.id(), "ID-1");
  EXPECT_EQ(a.comment(), "fine");
  EXPECT_EQ(a.expected_version(), 3);

  auto list = Routes().Match("GET", "/v1/approvals");
  ASSERT_TRUE(list.ok());
  req = BuildRequest(*list, "",
                     {{"statuses", "pending"},
                      {"statuses", "APPROVAL_STATUS_REJECTED"},
                      {"statuses", "5"},
                      {"page_size", "7"},
                      {"requestedBy", "agent"}});
  ASSERT_TRUE(req.ok()) << req.status();
  const auto& l = static_cast<const v1::ListApprovalsRequest&>(**req);
  ASSERT_EQ(l.statuses_size(), 3);
  EXPECT_EQ(l.statuses(0), v1::APPROVAL_STATUS_PENDING);
  EXPECT_EQ(l.statuses(1), v1::APPROVAL_STATUS_REJECTED);
  EXPECT_EQ(l.page_size(), 7);
  EXPECT_EQ(l.requested_by(), "agent");

  auto watch = Routes().Match("GET", "/v1/events");
  req = BuildRequest(*watch, "", {{"after", "12"}}, {{"after", "after_event_id"}});
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(static_cast<const v1::WatchApprovalsRequest&>(**req).after_event_id(), 12);
}

std::string ErrorOf(absl::string_view verb, absl::string_view path, const std::string& body,
                    std::vector<std::pair<std::string, std::string>> query = {}) {
  auto m = Routes().Match(verb, path);
  if (!m.ok()) return "no route";
  auto req = BuildRequest(*m, body, query);
  return req.ok() ? "OK" : std::string(req.status().message());
}

TEST(HttpRoutesTest, BadRequestsNameTheFieldOrParameter) {
  EXPECT_TRUE(absl::StrContains(ErrorOf("POST", "/v1/approvals", "{nope"), "body"));
  EXPECT_TRUE(absl::StrContains(ErrorOf("POST", "/v1/approvals", R"({"colour":1})"), "colour"));
  EXPECT_TRUE(absl::StrContains(ErrorOf("POST", "/v1/approvals", "[]"), "body"));
  EXPECT_TRUE(
      absl::StrContains(ErrorOf("POST", "/v1/approvals", "{}", {{"summary", "x"}}), "JSON body"));
  EXPECT_TRUE(absl::StrContains(ErrorOf("GET", "/v1/approvals", "{}"), "takes no body"));
  EXPECT_TRUE(
      absl::StrContains(ErrorOf("GET", "/v1/approvals", "", {{"page_size", "x"}}), "integer"));
  EXPECT_TRUE(absl::StrContains(ErrorOf("GET", "/v1/approvals", "", {{"page_size", "9999999999"}}),
                                "integer"));
  EXPECT_TRUE(absl::StrContains(ErrorOf("GET", "/v1/approvals", "", {{"statuses", "meh"}}),
                                "ApprovalStatus"));
  EXPECT_TRUE(absl::StrContains(ErrorOf("GET", "/v1/approvals", "", {{"x", "1"}}), "not a field"));
  EXPECT_TRUE(
      absl::StrContains(ErrorOf("POST", "/v1/approvals/A:approve", R"({"id":"B"})"), "differs"));
  EXPECT_EQ(ErrorOf("POST", "/v1/approvals/A:approve", R"({"id":"A"})"), "OK");
  EXPECT_EQ(ErrorOf("POST", "/v1/approvals/A:cancel", "  "), "OK");
}

TEST(HttpRoutesTest, ErrorsAreGoogleRpcStatusJsonWithTheHttpStatusOfTheirCode) {
  const HttpAnswer a = ErrorAnswer(absl::NotFoundError("no approval abc"));
  EXPECT_EQ(a.code, 404);
  EXPECT_EQ(a.content_type, "application/json");
  EXPECT_EQ(a.body, "{\"code\":5,\"message\":\"no approval abc\"}\n");
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::FAILED_PRECONDITION), 400);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::ABORTED), 409);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::RESOURCE_EXHAUSTED), 429);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::UNAVAILABLE), 503);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::DEADLINE_EXCEEDED), 504);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::UNAUTHENTICATED), 401);
  const HttpAnswer unauthenticated = ErrorAnswer(absl::UnauthenticatedError("who"));
  ASSERT_EQ(unauthenticated.headers.size(), 1u);
  EXPECT_EQ(unauthenticated.headers[0].first, "WWW-Authenticate");
}

}  // namespace
}  // namespace approvald::server
