// The `sql` kind: statements an operator writes in the config, run in the decision's
// transaction with the action's parameters bound (sql_handler.h).

#include "absl/strings/str_cat.h"
#include "handlers/handler_kinds.h"
#include "handlers/sql_handler.h"

namespace approvald::handlers {
namespace {

absl::Status ParseStatements(const ConfigReader& r, const YAML::Node& node, const std::string& path,
                             std::vector<SqlStatementSpec>* out) {
  if (!node.IsSequence() || node.size() == 0) {
    return r.Error(node, path, "must be a non-empty list of statements");
  }
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string p = absl::StrCat(path, "[", i, "]");
    SqlStatementSpec spec;
    if (node[i].IsScalar()) {
      spec.sql = node[i].Scalar();
    } else {
      CONFIG_TRY(r.CheckKeys(node[i], p, {"statement", "expect_rows"}));
      if (!node[i]["statement"]) return r.Error(node[i], p + ".statement", "is required");
      CONFIG_TRY(r.String(node[i]["statement"], p + ".statement", &spec.sql));
      if (const YAML::Node& e = node[i]["expect_rows"]) {
        const std::string ep = p + ".expect_rows";
        CONFIG_TRY(r.CheckKeys(e, ep, {"exactly", "at_least", "at_most"}));
        if (e.size() != 1) return r.Error(e, ep, "needs exactly one of exactly, at_least, at_most");
        const std::string kind = e.begin()->first.as<std::string>();
        CONFIG_TRY(r.Int(e.begin()->second, ep + "." + kind, &spec.expect.n));
        if (spec.expect.n < 0)
          return r.Error(e.begin()->second, ep + "." + kind, "must not be negative");
        spec.expect.kind = kind == "exactly"    ? ExpectRows::Kind::kExactly
                           : kind == "at_least" ? ExpectRows::Kind::kAtLeast
                                                : ExpectRows::Kind::kAtMost;
      }
    }
    out->push_back(std::move(spec));
  }
  return absl::OkStatus();
}

}  // namespace

HandlerKind SqlKind() {
  return {"sql",
          {"sql"},
          [](const ConfigReader& r, const YAML::Node& node, const std::string& path,
             const ActionType& t) -> absl::StatusOr<std::shared_ptr<ActionHandler>> {
            if (!node["sql"]) return r.Error(node, path + ".sql", "is required for handler: sql");
            std::vector<SqlStatementSpec> statements;
            CONFIG_TRY(ParseStatements(r, node["sql"], path + ".sql", &statements));
            std::vector<std::string> names;
            for (const auto& p : t.parameters) names.push_back(p.name);
            absl::StatusOr<std::shared_ptr<SqlHandler>> handler =
                SqlHandler::Create(t.name, statements, names);
            if (!handler.ok()) {
              return r.Error(node["sql"], path + ".sql", std::string(handler.status().message()));
            }
            return std::shared_ptr<ActionHandler>(std::move(*handler));
          }};
}

}  // namespace approvald::handlers
