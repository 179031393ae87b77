#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "approvals/v1/approvals.pb.h"
#include "db/approval_store.h"

namespace approvald::server {

/// Opaque, tamper-checked ListApprovals page tokens: the keyset cursor plus a fingerprint of
/// the request's filters, signed with HMAC-SHA256 under a key shared by every replica.
class PageTokenCodec {
 public:
  explicit PageTokenCodec(std::string key) : key_(std::move(key)) {}

  std::string Encode(const db::ListCursor& cursor,
                     const approvals::v1::ListApprovalsRequest& filters) const;
  /// INVALID_ARGUMENT (field page_token) if the token is malformed, forged, or was issued for
  /// other filters.
  absl::StatusOr<db::ListCursor> Decode(absl::string_view token,
                                        const approvals::v1::ListApprovalsRequest& filters) const;

 private:
  std::string Mac(absl::string_view payload) const;
  std::string key_;
};

}  // namespace approvald::server
