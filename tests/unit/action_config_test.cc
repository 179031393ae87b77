#include "handlers/action_config.h"

#include <gtest/gtest.h>

#include "handlers/external_handler.h"
#include "handlers/sql_template.h"
#include "tests/testing/status_matchers.h"

namespace approvald::handlers {
namespace {

std::string ErrorOf(const std::string& yaml) {
  auto r = ParseActionConfig(yaml, "cfg.yaml");
  return r.ok() ? "" : std::string(r.status().message());
}

TEST(ActionConfigTest, ParsesTypesPoliciesAndParameters) {
  ASSERT_OK_AND_ASSIGN(auto registry, ParseActionConfig(R"yaml(
action_types:
  - name: refund.order
    description: Refund
    handler: sql
    parameters:
      - {name: order_id, type: integer, required: true, minimum: 1}
      - {name: channel, type: string, enum: [email, phone], max_length: 10, pattern: "[a-z]+"}
    additional_parameters: false
    approver_roles: [approver]
    requester_roles: [agent]
    default_ttl: 2h
    max_ttl: 7d
    allow_self_approval: true
    required_approvals: 2
    sql:
      - statement: UPDATE orders SET x = 1 WHERE id = :order_id
        expect_rows: {at_least: 1}
      - "SELECT :approval_id, :decided_by"
  - name: noop
)yaml",
                                                        "cfg.yaml"));
  const handlers::ActionType* t = registry->Find("refund.order");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->handler_kind, "sql");
  EXPECT_EQ(t->parameters.size(), 2u);
  EXPECT_TRUE(t->parameters[0].required);
  EXPECT_EQ(t->parameters[1].enum_values.size(), 2u);
  EXPECT_FALSE(t->additional_parameters);
  EXPECT_EQ(t->policy.max_ttl, absl::Hours(24 * 7));
  EXPECT_EQ(t->policy.default_ttl, absl::Hours(2));
  EXPECT_TRUE(t->policy.allow_self_approval);
  EXPECT_EQ(t->policy.required_approvals, 2);
  ASSERT_EQ(t->handler->Statements().size(), 2u);
  EXPECT_EQ(t->handler->Statements()[0].text, "UPDATE orders SET x = 1 WHERE id = $1");
  EXPECT_NE(registry->Find("noop"), nullptr);
}

TEST(ActionConfigTest, AnExternalTypeHasItsExecutorPolicy) {
  auto registry = ParseActionConfig(
      "action_types:\n"
      "  - name: refund.provider\n"
      "    handler: external\n"
      "    executor_roles: [executor]\n"
      "    lease: 45s\n"
      "    max_attempts: 7\n"
      "    backoff: {initial: 2s, max: 1m, jitter: 0}\n",
      "cfg.yaml");
  ASSERT_TRUE(registry.ok()) << registry.status();
  const ExecutorPolicy* p = (*registry)->Find("refund.provider")->handler->executor();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->executor_roles, std::vector<std::string>{"executor"});
  EXPECT_EQ(p->lease, absl::Seconds(45));
  EXPECT_EQ(p->max_attempts, 7);
  EXPECT_EQ(p->backoff.Delay(1, 0.5), absl::Seconds(2));
  EXPECT_EQ(p->backoff.Delay(3, 0.5), absl::Seconds(8));
  EXPECT_EQ(p->backoff.Delay(30, 0.5), absl::Minutes(1));  // capped
  EXPECT_EQ((*registry)->Find("noop"), nullptr);
  EXPECT_NE(ErrorOf("action_types:\n  - name: a\n    handler: external\n").find("executor_roles"),
            std::string::npos);
  EXPECT_NE(ErrorOf("action_types:\n  - name: a\n    lease: 5s\n").find("lease"),
            std::string::npos);  // only with handler: external
}

TEST(ActionConfigTest, ErrorsNameFileLineAndKey) {
  EXPECT_EQ(
      ErrorOf("action_types:\n  - name: a\n    handlr: noop\n"),
      "cfg.yaml:3:5: action_types[0].handlr: unknown key (allowed: additional_parameters, "
      "allow_self_approval, approver_roles, backoff, ca_file, default_ttl, description, "
      "executor_roles, handler, lease, max_attempts, max_ttl, name, parameters, requester_roles, "
      "required_approvals, secret_env, secret_file, sql, timeout, url, url_env)");
  EXPECT_EQ(ErrorOf("action_types:\n  - name: a\n    parameters:\n      - {name: p, type: text}\n"),
            "cfg.yaml:4:25: action_types[0].parameters[0].type: must be one of string, integer, "
            "number, boolean, object, array");
  EXPECT_EQ(ErrorOf("action_types:\n  - name: a\n    required_approvals: 0\n"),
            "cfg.yaml:3:25: action_types[0].required_approvals: must be from 1 to 100");
  EXPECT_NE(ErrorOf("action_types:\n  - name: a\n    default_ttl: soon\n")
                .find("cfg.yaml:3:18: action_types[0].default_ttl"),
            std::string::npos);
  EXPECT_NE(ErrorOf("action_types:\n  - name: a\n  - name: a\n").find("cfg.yaml:3:11"),
            std::string::npos);
  EXPECT_NE(ErrorOf("action_types:\n  - name: Bad\n").find("action_types[0].name"),
            std::string::npos);
  EXPECT_NE(ErrorOf("action_types:\n  - name: a\n    handler: sql\n").find("action_types[0].sql"),
            std::string::npos);
  EXPECT_NE(ErrorOf("action_types:\n  - name: a\n    handler: sql\n    sql: [\"select :x\"]\n")
                .find("placeholder :x"),
            std::string::npos);
  EXPECT_NE(ErrorOf("action_types:\n  - name: a\n    handler: sql\n    sql: [\"select $1\"]\n")
                .find("positional"),
            std::string::npos);
  EXPECT_NE(ErrorOf("action_types:\n  - name: a\n    handler: magic\n").find("unknown handler"),
            std::string::npos);
  EXPECT_NE(ErrorOf("action_types:\n  - name: a\n    parameters:\n      - {name: p, type: string, "
                    "pattern: \"(\"}\n")
                .find("pattern"),
            std::string::npos);
  EXPECT_NE(ErrorOf("action_types: [\n").find("cfg.yaml:2:1"), std::string::npos);
  EXPECT_NE(ErrorOf("just a string").find("(top level)"), std::string::npos);
  EXPECT_NE(ErrorOf("version: 1\n").find("action_types: is required"), std::string::npos);
  EXPECT_CODE(LoadActionConfig("/nonexistent.yaml"), absl::StatusCode::kNotFound);
}

TEST(ActionConfigTest, Durations) {
  absl::Duration d;
  ASSERT_TRUE(ParseConfigDuration("7d", &d));
  EXPECT_EQ(d, absl::Hours(168));
  ASSERT_TRUE(ParseConfigDuration("90m", &d));
  EXPECT_EQ(d, absl::Minutes(90));
  EXPECT_FALSE(ParseConfigDuration("d", &d));
  EXPECT_FALSE(ParseConfigDuration("soon", &d));
}

TEST(SqlTemplateTest, RewritesNamedPlaceholdersOnly) {
  ASSERT_OK_AND_ASSIGN(
      handlers::CompiledSql c,
      handlers::CompileNamedPlaceholders("UPDATE t SET a = :x::int, b = ':y', \"c:z\" = :y -- :w\n"
                                         "WHERE id = :x AND s = $q$ :v $q$ /* :u */"));
  EXPECT_EQ(c.text,
            "UPDATE t SET a = $1::int, b = ':y', \"c:z\" = $2 -- :w\n"
            "WHERE id = $1 AND s = $q$ :v $q$ /* :u */");
  EXPECT_EQ(c.names, (std::vector<std::string>{"x", "y"}));
  EXPECT_FALSE(handlers::CompileNamedPlaceholders("SELECT $1").ok());
  ASSERT_OK_AND_ASSIGN(handlers::CompiledSql quoted,
                       handlers::CompileNamedPlaceholders("SELECT 'it''s :not' || :yes"));
  EXPECT_EQ(quoted.text, "SELECT 'it''s :not' || $1");
}

}  // namespace
}  // namespace approvald::handlers

namespace approvald::handlers {
namespace {

// Found by tests/fuzz/fuzz_config: names, descriptions and patterns travel in proto3 strings.
TEST(ActionConfigTest, TextThatIsNotUtf8IsRefusedWithItsPlace) {
  const std::string bad = "action_types:\n  - name: a\n    description: caf\xE9 au lait\n";
  auto parsed = ParseActionConfig(bad, "cfg.yaml", {});
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(), "cfg.yaml:3:21: the file is not valid UTF-8");
  for (const std::string& not_utf8 : {std::string("\xC0\xAF"), std::string("\xED\xA0\x80"),
                                      std::string("\xF4\x90\x80\x80"), std::string("\xE2\x82")}) {
    auto refused = ParseActionConfig("action_types: []\n# " + not_utf8 + "\n", "c", {});
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().message(), "c:2:3: the file is not valid UTF-8");
  }
  EXPECT_OK(ParseActionConfig("action_types:\n  - name: a\n    description: café ✓ 𝄞\n", "c", {}));
}

TEST(ActionConfigTest, ControlCharactersAreRefusedWithTheirPlace) {
  // Found by tests/fuzz/fuzz_config: a NUL inside a description gave text that is not UTF-8.
  const std::string nul =
      std::string("action_types:\n  - name: a\n    description: x") + std::string(1, '\0') + "y\n";
  auto parsed = ParseActionConfig(nul, "cfg.yaml", {});
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(),
            "cfg.yaml:3:19: the file holds a control character (0x00), which YAML does not allow");
  for (char c : {'\x01', '\x1B', '\x7F'}) {
    auto refused = ParseActionConfig(std::string("action_types: []\n# ") + c + "\n", "c", {});
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.status().message().find("c:2:3: the file holds a control character"),
              absl::string_view::npos)
        << refused.status().message();
  }
  // Tabs (in a comment here), carriage returns and line feeds are fine.
  EXPECT_OK(ParseActionConfig("action_types: []\r\n#\tnote\r\n", "c", {}));
}

}  // namespace
}  // namespace approvald::handlers
