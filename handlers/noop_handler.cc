#include "handlers/noop_handler.h"

#include "handlers/handler_kinds.h"

namespace approvald::handlers {

absl::Status NoopHandler::Validate(const google::protobuf::Struct&) const {
  return absl::OkStatus();
}

absl::StatusOr<google::protobuf::Struct> NoopHandler::Execute(db::Tx&, const db::ApprovalRecord&) {
  return *FixedResult();
}

std::optional<google::protobuf::Struct> NoopHandler::FixedResult() const {
  google::protobuf::Struct result;
  (*result.mutable_fields())["ok"].set_bool_value(true);
  return result;
}

HandlerKind NoopKind() {
  return {"noop",
          {},
          [](const ConfigReader&, const YAML::Node&, const std::string&,
             const ActionType&) -> absl::StatusOr<std::shared_ptr<ActionHandler>> {
            return std::make_shared<NoopHandler>();
          }};
}

}  // namespace approvald::handlers
