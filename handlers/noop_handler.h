#pragma once

#include "handlers/action_handler.h"

namespace approvald::handlers {

/// Accepts any action_data and does nothing; its result is {"ok": true}.
class NoopHandler final : public ActionHandler {
 public:
  absl::Status Validate(const google::protobuf::Struct& action_data) const override;
  absl::StatusOr<google::protobuf::Struct> Execute(db::Tx& tx,
                                                   const db::ApprovalRecord& approval) override;
  std::optional<google::protobuf::Struct> FixedResult() const override;
};

}  // namespace approvald::handlers
