// The tokens file (server/token_store): the input is the file's content, parsed with
// TokenStore::Parse as Load and a reload do after reading it.
//
// Invariants: every error is INVALID_ARGUMENT naming the source and a line; an accepted file
// holds one principal per hash line and per cert line, with the roles the line lists; a known
// token line put in front of the file authenticates its bearer (and only makes Parse fail if the
// file already lists that hash); Authenticate never accepts a header that is not
// `Bearer <token>` for a listed token.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/auth/token_store.h"
#include "tests/fuzz/fuzz_support.h"

namespace approvald::fuzz {
namespace {

constexpr char kSecret[] = "fuzz-secret-token";

struct Expected {
  size_t hash_lines = 0;
  std::set<std::string> hashes;                           // lowercase
  std::map<std::string, std::vector<std::string>> certs;  // first line of each identity
};

// What the file format (token_store.h) says the file holds.
Expected Reference(absl::string_view contents) {
  Expected e;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> cols =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (cols.size() < 2 || cols.size() > 3) continue;
    std::vector<std::string> roles;
    if (cols.size() == 3) roles = absl::StrSplit(cols[2], ',', absl::SkipEmpty());
    if (cols[0] == "cert") {
      e.certs.emplace(std::string(cols[1]), roles);
    } else {
      ++e.hash_lines;
      e.hashes.insert(absl::AsciiStrToLower(cols[0]));
    }
  }
  return e;
}

void Check(absl::string_view contents) {
  absl::StatusOr<server::TokenStore> store = server::TokenStore::Parse(contents, "fuzz-tokens");
  if (!store.ok()) {
    FUZZ_CHECK(store.status().code() == absl::StatusCode::kInvalidArgument, "code");
    FUZZ_CHECK(absl::StartsWith(store.status().message(), "fuzz-tokens:"), "no source: %s",
               std::string(store.status().message()).c_str());
  } else {
    const Expected e = Reference(contents);
    FUZZ_CHECK(store->size() == e.hash_lines, "%zu tokens, %zu hash lines", store->size(),
               e.hash_lines);
    for (const auto& [identity, roles] : e.certs) {
      absl::StatusOr<server::Principal> p = store->AuthenticateCertificate(identity);
      FUZZ_CHECK(p.ok() && p->name == identity && p->roles == roles, "cert %s", identity.c_str());
    }
    // The input itself as a header, and as the token of one: only a listed token gets in.
    const std::string header(contents.substr(0, 512));
    for (const std::string& h : {header, absl::StrCat("Bearer ", header)}) {
      absl::StatusOr<server::Principal> who = store->Authenticate(h);
      if (!who.ok()) {
        FUZZ_CHECK(who.status().code() == absl::StatusCode::kUnauthenticated, "code");
        continue;
      }
      absl::string_view v = absl::StripAsciiWhitespace(h);
      FUZZ_CHECK(v.size() > 7 && absl::EqualsIgnoreCase(v.substr(0, 7), "bearer "),
                 "accepted a header without Bearer");
      const absl::string_view token = absl::StripAsciiWhitespace(v.substr(7));
      FUZZ_CHECK(!token.empty() && e.hashes.count(server::Sha256Hex(token)),
                 "accepted an unlisted token");
    }
  }

  // A known token in front of the same file.
  const std::string hash = server::Sha256Hex(kSecret);
  const std::string with_known = absl::StrCat(hash, " fuzz-principal r1,r2\n", contents);
  absl::StatusOr<server::TokenStore> known = server::TokenStore::Parse(with_known, "fuzz-tokens");
  if (!store.ok()) {
    FUZZ_CHECK(!known.ok(), "a line in front made a bad file good");
    return;
  }
  if (!known.ok()) {
    // Only a repeat of the known hash may break it.
    FUZZ_CHECK(absl::StrContains(absl::AsciiStrToLower(contents), hash), "%s",
               std::string(known.status().message()).c_str());
    return;
  }
  FUZZ_CHECK(known->size() == store->size() + 1, "size with the known token");
  for (const char* header :
       {"Bearer fuzz-secret-token", "bearer   fuzz-secret-token\t", " BEARER fuzz-secret-token"}) {
    absl::StatusOr<server::Principal> p = known->Authenticate(header);
    FUZZ_CHECK(
        p.ok() && p->name == "fuzz-principal" && p->roles == (std::vector<std::string>{"r1", "r2"}),
        "the known token does not authenticate with \"%s\"", header);
  }
  FUZZ_CHECK(!known->Authenticate("Bearer fuzz-secret-tokenx").ok(), "a near token");
  FUZZ_CHECK(!known->Authenticate(absl::StrCat("Bearer ", hash)).ok(), "the hash as a token");
}

}  // namespace
}  // namespace approvald::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  approvald::fuzz::Check(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
