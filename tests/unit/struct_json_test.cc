#include "db/struct_json.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace approvald::db {
namespace {

namespace pb = google::protobuf;

pb::Struct ViaProtobuf(const std::string& json) {
  pb::Struct s;
  EXPECT_TRUE(pb::util::JsonStringToMessage(json, &s).ok()) << json;
  return s;
}

bool Same(const pb::Message& a, const pb::Message& b) {
  return pb::util::MessageDifferencer::Equals(a, b);
}

TEST(StructJsonTest, ParsesWhatProtobufsParserParses) {
  for (const std::string json : {
           R"({})",
           R"({"a": 1, "b": -2.5e-3, "c": "x\"y\\z\/", "d": true, "e": false, "f": null})",
           R"({"nested": {"list": [1, [2, {"k": []}], {}], "s": ""}})",
           R"({"unicode": "\u00e9\u4e2d\ud83d\ude00 raw é 😀", "ctl": "\b\f\n\r\t\u0001"})",
           R"( { "spaced" :	[ 1 ,2 ] }  )",
           R"({"big": 1e300, "tiny": 1e-300, "int": 9007199254740993, "zero": -0})",
           R"({"numeric": 100000000000000000000000000000000000000000000000000.5})",
       }) {
    absl::StatusOr<pb::Struct> ours = ParseJsonObject(json);
    ASSERT_TRUE(ours.ok()) << json << ": " << ours.status();
    EXPECT_TRUE(Same(*ours, ViaProtobuf(json))) << json << "\n" << ours->DebugString();
  }
}

TEST(StructJsonTest, WritesTextThatReadsBackTheSame) {
  pb::Struct s = ViaProtobuf(
      R"({"a": 0.1, "b": 42, "c": -1e-7, "d": 1.7976931348623157e308, "e": "q\"\\\n\u0002é😀",
          "f": [true, false, null, {"g": []}], "h": {}})");
  std::string json;
  ASSERT_TRUE(AppendJson(s, &json).ok());
  absl::StatusOr<pb::Struct> back = ParseJsonObject(json);
  ASSERT_TRUE(back.ok()) << json;
  EXPECT_TRUE(Same(*back, s)) << json;
  EXPECT_TRUE(Same(ViaProtobuf(json), s)) << json;  // and any other JSON reader agrees
}

TEST(StructJsonTest, NumbersAreWrittenShortest) {
  for (auto [d, text] : std::initializer_list<std::pair<double, const char*>>{
           {42, "42"}, {0.1, "0.1"}, {-2.5, "-2.5"}, {1e300, "1e+300"}, {0, "0"}}) {
    pb::Value v;
    v.set_number_value(d);
    std::string json;
    ASSERT_TRUE(AppendJson(v, &json).ok());
    EXPECT_EQ(json, text);
  }
}

TEST(StructJsonTest, ValuesWithoutAJsonFormAreInvalidArgument) {
  for (double d :
       {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
        -std::numeric_limits<double>::infinity()}) {
    pb::Value v;
    v.set_number_value(d);
    std::string json;
    EXPECT_EQ(AppendJson(v, &json).code(), absl::StatusCode::kInvalidArgument);
  }
  pb::Value unset;
  std::string json;
  EXPECT_EQ(AppendJson(unset, &json).code(), absl::StatusCode::kInvalidArgument);
}

TEST(StructJsonTest, BytesThatAreNotUtf8BecomeReplacementCharacters) {
  pb::Value bad_utf8;
  bad_utf8.set_string_value(
      "a\xC0\xAF"
      "b");
  std::string json;
  ASSERT_TRUE(AppendJson(bad_utf8, &json).ok());
  EXPECT_EQ(json,
            "\"a\xEF\xBF\xBD\xEF\xBF\xBD"
            "b\"");
  EXPECT_TRUE(ParseJson(json).ok());
}

TEST(StructJsonTest, MalformedTextIsRefusedWithItsPlace) {
  for (const std::string bad : {
           "",
           "{",
           "}",
           "{\"a\"}",
           "{\"a\":}",
           "{\"a\":1,}",
           "[1,]",
           "{\"a\":01}",
           "{\"a\":1.}",
           "{\"a\":.5}",
           "{\"a\":1e}",
           "{\"a\":+1}",
           "{\"a\":tru}",
           "{\"a\":\"x}",
           "{a:1}",
           "{\"a\":\"\\x\"}",
           "{\"a\":\"\\u12\"}",
           "{\"a\":\"\\ud800\"}",
           "{\"a\":\"\\udc00\"}",
           "{\"a\":\"\x01\"}",
           "{\"a\":1} x",
           "{\"a\":\"\xC0\xAF\"}",
           "{\"a\":1e400}",
           "NaN",
       }) {
    absl::StatusOr<pb::Value> parsed = ParseJson(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(parsed.status().message().find("at byte"), absl::string_view::npos)
        << parsed.status();
  }
  EXPECT_FALSE(ParseJsonObject("[1]").ok());
}

TEST(StructJsonTest, DeepNestingIsAnErrorNotACrash) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(ParseJson(deep).status().code(), absl::StatusCode::kInvalidArgument);
  const std::string ok = std::string(500, '[') + std::string(500, ']');
  EXPECT_TRUE(ParseJson(ok).ok());
}

TEST(StructJsonTest, ARepeatedKeyKeepsTheLastValue) {
  absl::StatusOr<pb::Struct> s = ParseJsonObject(R"({"a": {"x": 1}, "a": 2})");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->fields().at("a").number_value(), 2);
}

}  // namespace
}  // namespace approvald::db
