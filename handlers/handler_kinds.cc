#include "handlers/handler_kinds.h"

namespace approvald::handlers {

std::vector<HandlerKind> BuiltInKinds() {
  return {
      NoopKind(),
      SqlKind(),
      ExternalKind(),
      WebhookKind(),
  };
}

}  // namespace approvald::handlers
