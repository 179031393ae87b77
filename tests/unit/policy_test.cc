#include "server/decide_at_once.h"

#include <gtest/gtest.h>

#include "server/action_config.h"
#include "tests/testing/status_matchers.h"

namespace approvald::server {
namespace {

using Names = std::vector<std::string>;

constexpr char kConfig[] = R"yaml(
action_types:
  - name: a.plain
    handler: noop
  - name: b.self
    handler: noop
    allow_self_approval: true
  - name: c.finance
    handler: noop
    approver_roles: [finance]
  - name: d.quorum
    handler: noop
    required_approvals: 2
  - name: e.sql
    handler: sql
    sql:
      - "SELECT :approval_id"
)yaml";

TEST(DecideAtOnceForTest, ApproveListsTheFixedResultTypesTheCallerMayDecideWithOneVote) {
  ASSERT_OK_AND_ASSIGN(auto registry, ParseActionConfig(kConfig, "cfg.yaml"));
  const Principal alice{"alice", {"approver"}};
  std::optional<db::DecideAtOnce> once = DecideAtOnceFor(*registry, alice, db::Decision::kApprove);
  ASSERT_TRUE(once.has_value());
  // Not c.finance (role), d.quorum (a vote is not a decision), e.sql (its handler writes).
  EXPECT_EQ(once->any_requester, (Names{"b.self"}));
  EXPECT_EQ(once->not_own, (Names{"a.plain"}));
  EXPECT_FALSE(once->own_only);
  EXPECT_EQ(once->results_json, R"({"a.plain":{"ok":true},"b.self":{"ok":true}})");

  const Principal finance{"fin", {"finance"}};
  once = DecideAtOnceFor(*registry, finance, db::Decision::kApprove);
  ASSERT_TRUE(once.has_value());
  // c.finance, and the types that name no approver role.
  EXPECT_EQ(once->not_own, (Names{"a.plain", "c.finance"}));
  EXPECT_EQ(once->any_requester, (Names{"b.self"}));
}

TEST(DecideAtOnceForTest, RejectListsEveryTypeTheCallerMayDecideAndCancelOnlyTheirOwn) {
  ASSERT_OK_AND_ASSIGN(auto registry, ParseActionConfig(kConfig, "cfg.yaml"));
  const Principal alice{"alice", {"approver"}};
  std::optional<db::DecideAtOnce> once = DecideAtOnceFor(*registry, alice, db::Decision::kReject);
  ASSERT_TRUE(once.has_value());
  // Self-approval, quorum and handler only concern approving.
  EXPECT_EQ(once->any_requester, (Names{"a.plain", "b.self", "d.quorum", "e.sql"}));
  EXPECT_TRUE(once->not_own.empty());
  EXPECT_TRUE(once->results_json.empty());

  once = DecideAtOnceFor(*registry, alice, db::Decision::kCancel);
  ASSERT_TRUE(once.has_value());
  EXPECT_TRUE(once->own_only);
}

TEST(DecideAtOnceForTest, NothingToDecideAtOnceIsNoShortcut) {
  ASSERT_OK_AND_ASSIGN(auto registry, ParseActionConfig(kConfig, "cfg.yaml"));
  const Principal viewer{"viewer", {}};
  // A caller without roles may still decide the types that name no approver role.
  std::optional<db::DecideAtOnce> once = DecideAtOnceFor(*registry, viewer, db::Decision::kApprove);
  ASSERT_TRUE(once.has_value());
  EXPECT_EQ(once->not_own, (Names{"a.plain"}));
  EXPECT_EQ(once->any_requester, (Names{"b.self"}));

  ASSERT_OK_AND_ASSIGN(auto only_sql, ParseActionConfig(R"yaml(
action_types:
  - name: e.sql
    handler: sql
    sql:
      - "SELECT :approval_id"
)yaml",
                                                        "cfg.yaml"));
  EXPECT_FALSE(DecideAtOnceFor(*only_sql, viewer, db::Decision::kApprove).has_value());
  EXPECT_TRUE(DecideAtOnceFor(*only_sql, viewer, db::Decision::kReject).has_value());
}

}  // namespace
}  // namespace approvald::server
