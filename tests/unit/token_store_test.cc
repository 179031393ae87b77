#include "server/auth/token_store.h"

#include <gtest/gtest.h>

#include "tests/testing/status_matchers.h"

namespace approvald::server {
namespace {

TEST(TokenStoreTest, AuthenticatesByHash) {
  const std::string file = "# dev tokens\n\n" + Sha256Hex("t-alice") + " alice approver,admin\n" +
                           Sha256Hex("t-agent") + "\tagent\trequester\n";
  ASSERT_OK_AND_ASSIGN(TokenStore store, TokenStore::Parse(file, "tokens"));
  EXPECT_EQ(store.size(), 2u);
  ASSERT_OK_AND_ASSIGN(Principal alice, store.Authenticate("Bearer t-alice"));
  EXPECT_EQ(alice.name, "alice");
  EXPECT_EQ(alice.roles, (std::vector<std::string>{"approver", "admin"}));
  ASSERT_OK_AND_ASSIGN(Principal agent, store.Authenticate("bearer  t-agent "));
  EXPECT_EQ(agent.name, "agent");
  EXPECT_CODE(store.Authenticate(""), absl::StatusCode::kUnauthenticated);
  EXPECT_CODE(store.Authenticate("Bearer "), absl::StatusCode::kUnauthenticated);
  EXPECT_CODE(store.Authenticate("Basic t-alice"), absl::StatusCode::kUnauthenticated);
  EXPECT_CODE(store.Authenticate("Bearer t-mallory"), absl::StatusCode::kUnauthenticated);
  EXPECT_CODE(store.Authenticate(Sha256Hex("t-alice")), absl::StatusCode::kUnauthenticated);
}

TEST(TokenStoreTest, ErrorsNameTheLine) {
  auto bad = TokenStore::Parse("# ok\nnot-a-hash alice approver\n", "/etc/approvald/tokens");
  EXPECT_CODE(bad, absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("/etc/approvald/tokens:2"), absl::string_view::npos);
  const std::string h = Sha256Hex("x");
  EXPECT_FALSE(TokenStore::Parse(h + " a\n" + h + " b\n", "f").ok());
  EXPECT_FALSE(TokenStore::Parse(h + "\n", "f").ok());
  EXPECT_FALSE(TokenStore::Parse(h + " a b c\n", "f").ok());
  EXPECT_CODE(TokenStore::Load("/nonexistent/tokens"), absl::StatusCode::kNotFound);
}

// A principal is stored with every decision and written into log lines: the whole file is
// refused, naming the line, if one is not printable UTF-8 or takes the daemon's own name.
TEST(TokenStoreTest, PrincipalsAndRolesMustBePrintableAndNotReserved) {
  const std::string h = Sha256Hex("x");
  const std::string ok = Sha256Hex("ok") + " alice approver\n";
  for (const std::string& line : std::vector<std::string>{
           h + " \xff\xfe" + "evil approver", h + " ev\x01il approver",
           h + " evil\x1b[31m approver", h + " ev\x7fil", h + " ev\xc2\x85il",
           h + " ev\xe2\x80\xaeil", h + " alice appr\x01ver", h + " approvald approver",
           h + " APPROVALD", "cert spiffe://x/\x01 requester", "cert approvald requester",
           h + " " + std::string(257, 'a')}) {
    SCOPED_TRACE(line);
    auto bad = TokenStore::Parse(ok + line + "\n", "tokens");
    EXPECT_CODE(bad, absl::StatusCode::kInvalidArgument);
    EXPECT_NE(bad.status().message().find("tokens:2: "), absl::string_view::npos) << bad.status();
  }
  // Non-ASCII printable names are fine.
  ASSERT_OK_AND_ASSIGN(TokenStore store,
                       TokenStore::Parse(ok + h + " jos\xc3\xa9 approver\n", "tokens"));
  ASSERT_OK_AND_ASSIGN(Principal jose, store.Authenticate("Bearer x"));
  EXPECT_EQ(jose.name, "jos\xc3\xa9");
}

TEST(TokenStoreTest, Sha256MatchesKnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace approvald::server
