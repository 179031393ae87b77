// Webhook signing, config and message formats (no network: the e2e tests post for real).
#include <gtest/gtest.h>
#include <stdlib.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "handlers/action_config.h"
#include "handlers/external_handler.h"
#include "handlers/webhook_target.h"
#include "server/api/proto_convert.h"
#include "server/webhooks/http_post.h"
#include "server/webhooks/signing.h"
#include "server/webhooks/webhook_messages.h"
#include "tests/testing/status_matchers.h"

namespace approvald::server {
namespace {

constexpr char kSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

TEST(WebhookSigningTest, MatchesTheStandardWebhooksVector) {
  // The example of the Standard Webhooks specification's reference libraries.
  std::string key;
  ASSERT_TRUE(absl::Base64Unescape("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &key));
  EXPECT_EQ(WebhookSignature({key}, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                             R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookSigningTest, SignsWithEveryKeyDuringARotation) {
  const std::string header =
      WebhookSignature({"0123456789abcdef", "fedcba9876543210"}, "id", 1, "{}");
  const std::vector<std::string> parts = absl::StrSplit(header, ' ');
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_TRUE(absl::StartsWith(parts[0], "v1,"));
  EXPECT_TRUE(absl::StartsWith(parts[1], "v1,"));
  EXPECT_NE(parts[0], parts[1]);
}

TEST(WebhookHttpTest, ShowsOnlyTheOriginOfAUrl) {
  EXPECT_EQ(UrlOrigin("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com");
  EXPECT_EQ(UrlOrigin("http://user:pw@127.0.0.1:8080/x?token=1"), "http://127.0.0.1:8080");
  EXPECT_EQ(BodyExcerpt("bad\n\x01request\xff\xfe", 100), "bad  request");
  EXPECT_EQ(BodyExcerpt("abcdef", 3), "abc");
}

std::string ConfigError(const std::string& yaml) {
  auto r = handlers::ParseActionConfig(yaml, "cfg.yaml");
  return r.ok() ? "" : std::string(r.status().message());
}

TEST(WebhookConfigTest, ReadsSubscriptionsAndWebhookTypes) {
  ASSERT_EQ(setenv("APPROVALD_TEST_HOOK_SECRET", kSecret, 1), 0);
  ASSERT_OK_AND_ASSIGN(auto registry, handlers::ParseActionConfig(R"yaml(
action_types:
  - name: refund.http
    handler: webhook
    url: https://payments.example/refunds
    secret_env: APPROVALD_TEST_HOOK_SECRET
    timeout: 5s
    lease: 30s
    max_attempts: 4
    backoff: {initial: 1s, max: 1m, jitter: 0}
webhooks:
  - name: slack-approvers
    url: https://hooks.slack.com/services/T/B/X
    secret_env: APPROVALD_TEST_HOOK_SECRET
    format: slack
    events: [created, approved]
    action_types: [refund.http]
    max_age: 1h
)yaml",
                                                                  "cfg.yaml"));
  const handlers::ActionType* t = registry->Find("refund.http");
  ASSERT_NE(t, nullptr);
  ASSERT_NE(t->handler->webhook(), nullptr);
  EXPECT_EQ(t->handler->webhook()->keys.size(), 1u);
  EXPECT_EQ(t->handler->webhook()->timeout, absl::Seconds(5));
  EXPECT_EQ(t->handler->executor()->max_attempts, 4);
  ASSERT_EQ(registry->webhooks().size(), 1u);
  const handlers::WebhookSubscription& s = registry->webhooks()[0];
  EXPECT_EQ(s.name, "slack-approvers");
  EXPECT_EQ(s.format, "slack");
  EXPECT_EQ(s.event_types.count("approved"), 1u);
  EXPECT_EQ(s.max_age, absl::Hours(1));
}

TEST(WebhookConfigTest, ErrorsNameTheSecretsSourceNeverItsValue) {
  ASSERT_EQ(setenv("APPROVALD_TEST_SHORT_SECRET", "tooshort-x1", 1), 0);
  const std::string error = ConfigError(R"yaml(
action_types: [{name: noop}]
webhooks:
  - {name: a, url: "https://x.example/h", secret_env: APPROVALD_TEST_SHORT_SECRET}
)yaml");
  EXPECT_TRUE(absl::StrContains(error, "APPROVALD_TEST_SHORT_SECRET")) << error;
  EXPECT_TRUE(absl::StrContains(error, "shorter than 16 bytes")) << error;
  EXPECT_FALSE(absl::StrContains(error, "tooshort-x1")) << error;
  EXPECT_TRUE(absl::StrContains(
      ConfigError("action_types: [{name: noop}]\nwebhooks:\n  - {name: a, url: \"ftp://x\", "
                  "secret_env: APPROVALD_TEST_SHORT_SECRET}\n"),
      "webhooks[0].url: must be an http:// or https:// URL"));
  EXPECT_TRUE(absl::StrContains(
      ConfigError("action_types: [{name: noop}]\nwebhooks:\n  - {name: a, url: \"http://x/\"}\n"),
      "needs exactly one of secret_env"));
  EXPECT_TRUE(absl::StrContains(
      ConfigError("action_types: [{name: noop}]\nwebhooks:\n  - {name: a, url: \"http://x/\", "
                  "secret_env: NO_SUCH_APPROVALD_VAR}\n"),
      "environment variable NO_SUCH_APPROVALD_VAR is not set"));
  ASSERT_EQ(setenv("APPROVALD_TEST_HOOK_SECRET", kSecret, 1), 0);
  EXPECT_TRUE(absl::StrContains(
      ConfigError("action_types: [{name: noop}]\nwebhooks:\n  - {name: a, url: \"http://x/\", "
                  "secret_env: APPROVALD_TEST_HOOK_SECRET, events: [approve]}\n"),
      "webhooks[0].events[0]: \"approve\" is not an event type"));
  EXPECT_TRUE(absl::StrContains(
      ConfigError("action_types: [{name: noop}]\nwebhooks:\n  - {name: a, url: \"http://x/\", "
                  "secret_env: APPROVALD_TEST_HOOK_SECRET, action_types: [nope]}\n"),
      "\"nope\" is not an action type of this config"));
  EXPECT_TRUE(absl::StrContains(
      ConfigError("action_types:\n  - {name: w, handler: webhook, url: \"http://x/\", "
                  "secret_env: APPROVALD_TEST_HOOK_SECRET, timeout: 20s, lease: 30s}\n"),
      "must be at most half the lease"));
}

db::EventRecord SampleEvent() {
  db::EventRecord e;
  e.id = 42;
  e.type = "approved";
  e.actor = "bob";
  e.time = absl::FromUnixSeconds(1700000000);
  e.version = 2;
  e.approval.id = "0190a0b0-0000-7000-8000-000000000001";
  e.approval.action_type = "refund.order";
  e.approval.status = "approved";
  e.approval.summary = "Refund order 42, 30 \"EUR\"";
  e.approval.requested_by = "agent-7";
  e.approval.decided_by = "bob";
  e.approval.create_time = e.time;
  e.approval.expire_time = e.time + absl::Hours(1);
  return e;
}

TEST(WebhookMessagesTest, JsonIsTheWatchEventAndSlackATextMessage) {
  const db::EventRecord e = SampleEvent();
  ASSERT_OK_AND_ASSIGN(std::string json, EventBody(e, "json"));
  EXPECT_TRUE(absl::StrContains(json, "\"type\":\"EVENT_TYPE_APPROVED\"")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"eventId\":\"42\"")) << json;
  ASSERT_OK_AND_ASSIGN(std::string slack, EventBody(e, "slack"));
  ASSERT_OK_AND_ASSIGN(google::protobuf::Struct message, JsonToStruct(slack));
  const std::string text = message.fields().at("text").string_value();
  for (const char* part : {"refund.order", "approved", "Refund order 42, 30 \"EUR\"", "agent-7",
                           "bob", "0190a0b0-0000-7000-8000-000000000001"}) {
    EXPECT_TRUE(absl::StrContains(text, part)) << part << " in " << text;
  }
  EXPECT_EQ(EventWebhookId("slack", 42), EventWebhookId("slack", 42));
  EXPECT_NE(EventWebhookId("slack", 42), EventWebhookId("ops", 42));
}

TEST(WebhookMessagesTest, SubscriptionsFilterByEventAndActionType) {
  handlers::WebhookSubscription s;
  const db::EventRecord e = SampleEvent();
  EXPECT_TRUE(WantsEvent(s, e));
  s.event_types = {"created"};
  EXPECT_FALSE(WantsEvent(s, e));
  s.event_types = {"approved"};
  s.action_types = {"other"};
  EXPECT_FALSE(WantsEvent(s, e));
  s.action_types = {"refund.order"};
  EXPECT_TRUE(WantsEvent(s, e));
}

}  // namespace
}  // namespace approvald::server
