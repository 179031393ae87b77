#include "server/api/page_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "db/errors.h"
#include "server/api/validation.h"
#include "server/auth/token_store.h"

namespace approvald::server {
namespace {

constexpr char kVersion = 1;
constexpr size_t kMacBytes = 16;
constexpr size_t kFingerprintBytes = 8;
constexpr size_t kPayloadBytes = 1 + kFingerprintBytes + 8 + 36;

std::string Fingerprint(const approvals::v1::ListApprovalsRequest& f) {
  std::vector<int> statuses(f.statuses().begin(), f.statuses().end());
  std::sort(statuses.begin(), statuses.end());
  statuses.erase(std::unique(statuses.begin(), statuses.end()), statuses.end());
  std::string canonical = absl::StrCat("type=", f.action_type(), ";statuses=");
  for (int s : statuses) absl::StrAppend(&canonical, s, ",");
  // Length-prefixed (a principal may hold any printable character), and only when set, so
  // that tokens of requests without them stay valid across an upgrade.
  if (!f.requested_by().empty()) {
    absl::StrAppend(&canonical, ";requested_by=", f.requested_by().size(), ":", f.requested_by());
  }
  if (!f.decided_by().empty()) {
    absl::StrAppend(&canonical, ";decided_by=", f.decided_by().size(), ":", f.decided_by());
  }
  if (f.execution_states_size() > 0) {
    std::vector<int> states(f.execution_states().begin(), f.execution_states().end());
    std::sort(states.begin(), states.end());
    absl::StrAppend(&canonical, ";execution_states=");
    for (int s : states) absl::StrAppend(&canonical, s, ",");
  }
  return Sha256Hex(canonical).substr(0, 2 * kFingerprintBytes);
}

absl::Status BadToken() {
  return db::FieldError("page_token", "is not a valid page token for this request");
}

}  // namespace

std::string PageTokenCodec::Mac(absl::string_view payload) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), std::min<size_t>(len, kMacBytes));
}

std::string PageTokenCodec::Encode(const db::ListCursor& cursor,
                                   const approvals::v1::ListApprovalsRequest& filters) const {
  std::string payload(1, kVersion);
  absl::StrAppend(&payload, absl::HexStringToBytes(Fingerprint(filters)));
  char micros[8];
  absl::big_endian::Store64(micros, static_cast<uint64_t>(cursor.create_time_micros));
  payload.append(micros, 8);
  payload.append(cursor.id);
  std::string token;
  absl::WebSafeBase64Escape(payload + Mac(payload), &token);
  return token;
}

absl::StatusOr<db::ListCursor> PageTokenCodec::Decode(
    absl::string_view token, const approvals::v1::ListApprovalsRequest& filters) const {
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw) || raw.size() != kPayloadBytes + kMacBytes) {
    return BadToken();
  }
  const absl::string_view payload(raw.data(), kPayloadBytes);
  const std::string mac = Mac(payload);
  if (CRYPTO_memcmp(mac.data(), raw.data() + kPayloadBytes, kMacBytes) != 0) return BadToken();
  if (payload[0] != kVersion ||
      payload.substr(1, kFingerprintBytes) != absl::HexStringToBytes(Fingerprint(filters))) {
    return BadToken();
  }
  db::ListCursor cursor;
  cursor.create_time_micros =
      static_cast<int64_t>(absl::big_endian::Load64(payload.data() + 1 + kFingerprintBytes));
  cursor.id = std::string(payload.substr(1 + kFingerprintBytes + 8));
  if (!IsUuid(cursor.id)) return BadToken();
  return cursor;
}

}  // namespace approvald::server
