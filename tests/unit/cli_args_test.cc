#include "client/cli_args.h"

#include <gtest/gtest.h>

namespace approvald::client {
namespace {

TEST(CliArgsTest, OptionsAndPositionalsInAnyOrder) {
  const char* argv[] = {
      "approvalctl",         "--json", "approve", "ID-1", "--comment", "looks good",
      "--expected-version=3"};
  CliArgs args = CliArgs::Parse(7, const_cast<char**>(argv), {"json"});
  EXPECT_EQ(args.positional, (std::vector<std::string>{"approve", "ID-1"}));
  EXPECT_TRUE(args.Has("json"));
  EXPECT_EQ(args.Get("comment").value_or(""), "looks good");
  EXPECT_EQ(args.Get("expected-version").value_or(""), "3");
  EXPECT_FALSE(args.Get("reason").has_value());
}

}  // namespace
}  // namespace approvald::client
