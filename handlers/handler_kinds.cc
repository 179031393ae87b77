#include "handlers/handler_kinds.h"

namespace approvald::handlers {

std::vector<HandlerKind> BuiltInKinds() {
  return {
      NoopKind(),
      SqlKind(),
      ExternalKind(),
  };
}

}  // namespace approvald::handlers
