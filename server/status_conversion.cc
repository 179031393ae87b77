#include "server/status_conversion.h"

#include "db/errors.h"
#include "google/rpc/status.pb.h"

namespace approvald::server {
namespace {
constexpr size_t kMaxMessage = 1024;
}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  std::string message(status.message().substr(0, kMaxMessage));
  google::rpc::Status details;
  details.set_code(static_cast<int>(status.code()));
  details.set_message(message);
  if (auto info = db::GetErrorInfo(status)) details.add_details()->PackFrom(*info);
  if (auto bad = db::GetBadRequest(status)) details.add_details()->PackFrom(*bad);
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), message,
                      details.SerializeAsString());
}

}  // namespace approvald::server
