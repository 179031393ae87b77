#include "server/status_conversion.h"

#include "db/errors.h"
#include "google/rpc/status.pb.h"

namespace approvald::server {
namespace {
constexpr size_t kMaxMessage = 1024;

// At most kMaxMessage bytes, never cut inside a UTF-8 sequence (the details are a proto3 string
// field: one invalid byte and the client can decode none of them).
std::string Truncated(absl::string_view message) {
  if (message.size() <= kMaxMessage) return std::string(message);
  size_t end = kMaxMessage;
  while (end > 0 && (static_cast<unsigned char>(message[end]) & 0xC0) == 0x80) --end;
  return std::string(message.substr(0, end));
}
}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  std::string message = Truncated(status.message());
  google::rpc::Status details;
  details.set_code(static_cast<int>(status.code()));
  details.set_message(message);
  if (auto info = db::GetErrorInfo(status)) details.add_details()->PackFrom(*info);
  if (auto bad = db::GetBadRequest(status)) details.add_details()->PackFrom(*bad);
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), message,
                      details.SerializeAsString());
}

}  // namespace approvald::server
