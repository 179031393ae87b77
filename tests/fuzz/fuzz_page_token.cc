// ListApprovals page tokens (server/page_token). Input: byte 0 picks the mode, byte 1 is the
// length L of a serialized ListApprovalsRequest (the request's filters; unparsable: none).
//   even mode: the rest is a page_token as a client sends it, decoded under the fixed key;
//   odd mode:  the rest is a cursor (8 bytes create_time_micros, then the id) to encode.
// Invariants: a token that decodes has a UUID id, re-encodes to the same token (but for ASCII
// whitespace, which the base64 decoder skips), and is refused under another key or other
// filters (but not under the same filters reordered or repeated); an encoded cursor with a UUID
// id decodes to itself, any other id is refused.

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/base/internal/endian.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "approvals/v1/approvals.pb.h"
#include "server/api/page_token.h"
#include "server/api/validation.h"
#include "tests/fuzz/fuzz_support.h"

namespace approvald::fuzz {
namespace {

namespace v1 = approvals::v1;

constexpr char kKey[] = "fuzz-page-token-key";

void CheckRefused(const absl::StatusOr<db::ListCursor>& r, const char* what) {
  FUZZ_CHECK(!r.ok(), "%s was accepted", what);
  CheckRejection(r.status());
}

// The same filters in another order, with a status repeated and another page size.
v1::ListApprovalsRequest Shuffled(const v1::ListApprovalsRequest& f) {
  v1::ListApprovalsRequest out = f;
  out.clear_statuses();
  for (int i = f.statuses_size() - 1; i >= 0; --i) out.add_statuses(f.statuses(i));
  if (f.statuses_size() > 0) out.add_statuses(f.statuses(0));
  out.set_page_size(f.page_size() + 1);
  out.clear_page_token();
  return out;
}

void CheckDecode(const server::PageTokenCodec& codec, const std::string& token,
                 const v1::ListApprovalsRequest& filters) {
  absl::StatusOr<db::ListCursor> cursor = codec.Decode(token, filters);
  if (!cursor.ok()) {
    CheckRejection(cursor.status());
    return;
  }
  FUZZ_CHECK(server::IsUuid(cursor->id), "decoded id");
  // absl::WebSafeBase64Unescape skips ASCII whitespace anywhere in the token, so "AB\fCD" is
  // accepted as "ABCD" (the same cursor, still signed): compare without whitespace.
  std::string canonical;
  for (char c : token) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) canonical.push_back(c);
  }
  FUZZ_CHECK(codec.Encode(*cursor, filters) == canonical,
             "token \"%s\" decodes but does not re-encode to itself", token.c_str());
  FUZZ_CHECK(codec.Decode(token, Shuffled(filters)).ok(), "refused under reordered filters");
  CheckRefused(server::PageTokenCodec("another-key").Decode(token, filters), "another key");
  v1::ListApprovalsRequest other = filters;
  other.set_action_type(filters.action_type() + "x");
  CheckRefused(codec.Decode(token, other), "other filters");
}

void CheckEncode(const server::PageTokenCodec& codec, const db::ListCursor& cursor,
                 const v1::ListApprovalsRequest& filters) {
  const std::string token = codec.Encode(cursor, filters);
  for (char c : token) {
    FUZZ_CHECK(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_',
               "token character %d", c);
  }
  absl::StatusOr<db::ListCursor> back = codec.Decode(token, filters);
  if (!server::IsUuid(cursor.id)) {
    CheckRefused(back, "a cursor without a UUID id");
    return;
  }
  FUZZ_CHECK(back.ok(), "own token refused: %s", std::string(back.status().message()).c_str());
  FUZZ_CHECK(back->create_time_micros == cursor.create_time_micros && back->id == cursor.id,
             "cursor changed");
  FUZZ_CHECK(token.size() <= 1024, "a token ValidateList refuses");
  CheckDecode(codec, token, filters);
}

}  // namespace
}  // namespace approvald::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace approvald;
  static const server::PageTokenCodec codec(fuzz::kKey);
  if (size < 2) return 0;
  const size_t filters_len = std::min<size_t>(data[1], size - 2);
  approvals::v1::ListApprovalsRequest filters;
  if (!filters.ParseFromArray(data + 2, static_cast<int>(filters_len))) filters.Clear();
  const std::string rest(reinterpret_cast<const char*>(data + 2 + filters_len),
                         size - 2 - filters_len);
  if (data[0] % 2 == 0) {
    fuzz::CheckDecode(codec, rest, filters);
  } else {
    if (rest.size() < 8) return 0;
    db::ListCursor cursor;
    cursor.create_time_micros = static_cast<int64_t>(absl::big_endian::Load64(rest.data()));
    cursor.id = rest.substr(8);
    fuzz::CheckEncode(codec, cursor, filters);
  }
  return 0;
}
