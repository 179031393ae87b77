// The decision policy (handlers/policy.h), with no database: who may create, decide and cancel,
// the effective TTL, and the one-statement path, which follows the same rules.

#include "handlers/policy.h"

#include <gtest/gtest.h>

#include "db/errors.h"
#include "handlers/action_config.h"
#include "tests/testing/status_matchers.h"

namespace approvald::handlers {
namespace {

using handlers::ParseActionConfig;

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

struct DecideCase {
  const char* type;  // nullptr: a type no longer configured
  const char* caller;
  std::vector<std::string> roles;
  const char* requested_by;
  db::Decision decision;
  absl::StatusCode code;
  const char* reason;  // the ErrorInfo reason, "" for none
  int votes;           // on success: the votes an approve needs
};

// Every rule of MayDecide, one row each.
TEST(PolicyTest, MayDecide) {
  ASSERT_OK_AND_ASSIGN(auto registry, ParseActionConfig(kConfig, "cfg.yaml"));
  using D = db::Decision;
  using C = absl::StatusCode;
  const std::vector<DecideCase> cases = {
      // approve: role (none named: anyone), self-approval, quorum
      {"a.plain", "alice", {"approver"}, "agent", D::kApprove, C::kOk, "", 1},
      {"a.plain",
       "agent",
       {"approver"},
       "agent",
       D::kApprove,
       C::kPermissionDenied,
       "SELF_APPROVAL",
       0},
      {"b.self", "agent", {}, "agent", D::kApprove, C::kOk, "", 1},
      {"c.finance",
       "alice",
       {"approver"},
       "agent",
       D::kApprove,
       C::kPermissionDenied,
       "ROLE_REQUIRED",
       0},
      {"c.finance", "fin", {"finance"}, "agent", D::kApprove, C::kOk, "", 1},
      {"d.quorum", "alice", {}, "agent", D::kApprove, C::kOk, "", 2},
      // reject: the role, and one's own approval is fine
      {"c.finance",
       "alice",
       {"approver"},
       "agent",
       D::kReject,
       C::kPermissionDenied,
       "ROLE_REQUIRED",
       0},
      {"c.finance", "fin", {"finance"}, "fin", D::kReject, C::kOk, "", 1},
      {"a.plain", "agent", {}, "agent", D::kReject, C::kOk, "", 1},
      // cancel: only the requester, whatever the roles or the type
      {"c.finance", "agent", {}, "agent", D::kCancel, C::kOk, "", 1},
      {"c.finance", "fin", {"finance"}, "agent", D::kCancel, C::kPermissionDenied, "", 0},
      {nullptr, "agent", {}, "agent", D::kCancel, C::kOk, "", 1},
      // a type that left the config: nobody decides it
      {nullptr,
       "alice",
       {"approver"},
       "agent",
       D::kApprove,
       C::kFailedPrecondition,
       "UNKNOWN_ACTION_TYPE",
       0},
      {nullptr,
       "alice",
       {"approver"},
       "agent",
       D::kReject,
       C::kFailedPrecondition,
       "UNKNOWN_ACTION_TYPE",
       0},
  };
  for (const DecideCase& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.type ? c.type : "(removed)", " ", c.caller, " decision ",
                              static_cast<int>(c.decision)));
    db::ApprovalRecord approval;
    approval.action_type = c.type ? c.type : "gone";
    approval.requested_by = c.requested_by;
    const ActionType* type = c.type ? registry->Find(c.type) : nullptr;
    absl::StatusOr<db::DecisionPolicy> got =
        MayDecide(type, Caller{c.caller, c.roles}, approval, c.decision);
    EXPECT_EQ(got.status().code(), c.code) << got.status();
    EXPECT_EQ(approvals::v1::ErrorReason_Name(db::GetReason(got.status())),
              *c.reason ? c.reason : "ERROR_REASON_UNSPECIFIED");
    if (got.ok()) {
      EXPECT_EQ(got->required_approvals, c.votes);
    }
  }
}

TEST(PolicyTest, MayCreateNeedsARequesterRoleWhenTheTypeNamesAny) {
  ASSERT_OK_AND_ASSIGN(auto registry, ParseActionConfig(R"yaml(
action_types:
  - name: open
  - name: guarded
    requester_roles: [requester, bot]
)yaml",
                                                        "cfg.yaml"));
  EXPECT_OK(MayCreate(*registry->Find("open"), Caller{"x", {}}));
  EXPECT_OK(MayCreate(*registry->Find("guarded"), Caller{"x", {"bot"}}));
  absl::Status refused = MayCreate(*registry->Find("guarded"), Caller{"x", {"approver"}});
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(db::GetReason(refused), approvals::v1::ROLE_REQUIRED);
}

TEST(PolicyTest, EffectiveTtlIsTheTypesElseTheServersAndTheDefaultNeverExceedsTheMaximum) {
  ASSERT_OK_AND_ASSIGN(auto registry, ParseActionConfig(R"yaml(
action_types:
  - name: plain
  - name: short
    max_ttl: 1h
  - name: own
    default_ttl: 2h
    max_ttl: 3h
)yaml",
                                                        "cfg.yaml"));
  const PolicyDefaults server{absl::Hours(24), absl::Hours(720)};
  struct Row {
    const char* type;
    absl::Duration default_ttl, max_ttl;
  };
  for (const Row& r :
       {Row{"plain", absl::Hours(24), absl::Hours(720)},
        Row{"short", absl::Hours(1), absl::Hours(1)}, Row{"own", absl::Hours(2), absl::Hours(3)}}) {
    SCOPED_TRACE(r.type);
    const TtlBounds ttl = EffectiveTtl(*registry->Find(r.type), server);
    EXPECT_EQ(ttl.default_ttl, r.default_ttl);
    EXPECT_EQ(ttl.max_ttl, r.max_ttl);
  }
}

TEST(DecideAtOnceForTest, ApproveListsTheFixedResultTypesTheCallerMayDecideWithOneVote) {
  ASSERT_OK_AND_ASSIGN(auto registry, ParseActionConfig(kConfig, "cfg.yaml"));
  const Caller alice{"alice", {"approver"}};
  std::optional<db::DecideAtOnce> once = DecideAtOnceFor(*registry, alice, db::Decision::kApprove);
  ASSERT_TRUE(once.has_value());
  // Not c.finance (role), d.quorum (a vote is not a decision), e.sql (its handler writes).
  EXPECT_EQ(once->any_requester, (Names{"b.self"}));
  EXPECT_EQ(once->not_own, (Names{"a.plain"}));
  EXPECT_FALSE(once->own_only);
  EXPECT_EQ(once->results_json, R"({"a.plain":{"ok":true},"b.self":{"ok":true}})");

  const Caller finance{"fin", {"finance"}};
  once = DecideAtOnceFor(*registry, finance, db::Decision::kApprove);
  ASSERT_TRUE(once.has_value());
  // c.finance, and the types that name no approver role.
  EXPECT_EQ(once->not_own, (Names{"a.plain", "c.finance"}));
  EXPECT_EQ(once->any_requester, (Names{"b.self"}));
}

TEST(DecideAtOnceForTest, RejectListsEveryTypeTheCallerMayDecideAndCancelOnlyTheirOwn) {
  ASSERT_OK_AND_ASSIGN(auto registry, ParseActionConfig(kConfig, "cfg.yaml"));
  const Caller alice{"alice", {"approver"}};
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
  const Caller viewer{"viewer", {}};
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
}  // namespace approvald::handlers
