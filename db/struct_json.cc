// JSON text <-> google.protobuf.Struct on RapidJSON's SAX reader and writer.

#include "db/struct_json.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/writer.h>

#include <charconv>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "db/utf8.h"

namespace approvald::db {
namespace {

namespace pb = google::protobuf;

constexpr int kMaxDepth = 1000;

/// RapidJSON's output stream onto the caller's string (no intermediate buffer).
struct StringOut {
  using Ch = char;
  std::string* out;
  void Put(char c) { out->push_back(c); }
  void Flush() {}
};
using JsonWriter = rapidjson::Writer<StringOut>;

/// `s` with each byte that is not part of valid UTF-8 (a handler's text, say) replaced by
/// U+FFFD, so that the JSON is text PostgreSQL's jsonb accepts; `s` itself if it is valid.
absl::string_view RepairUtf8(absl::string_view s, std::string& repaired) {
  size_t bad = FirstInvalidUtf8(s);
  if (bad == absl::string_view::npos) return s;
  while (bad != absl::string_view::npos) {
    repaired.append(s.data(), bad);
    repaired.append("\xEF\xBF\xBD");
    s.remove_prefix(bad + 1);
    bad = FirstInvalidUtf8(s);
  }
  repaired.append(s.data(), s.size());
  return repaired;
}

void WriteString(absl::string_view s, bool key, JsonWriter& w) {
  std::string repaired;
  const absl::string_view text = RepairUtf8(s, repaired);
  const auto size = static_cast<rapidjson::SizeType>(text.size());
  key ? w.Key(text.data(), size) : w.String(text.data(), size);
}

absl::Status Write(const pb::Value& value, JsonWriter& w);

absl::Status Write(const pb::Struct& value, JsonWriter& w) {
  w.StartObject();
  for (const auto& [key, v] : value.fields()) {
    WriteString(key, /*key=*/true, w);
    if (absl::Status st = Write(v, w); !st.ok()) return st;
  }
  w.EndObject();
  return absl::OkStatus();
}

absl::Status Write(const pb::Value& value, JsonWriter& w) {
  switch (value.kind_case()) {
    case pb::Value::kNullValue:
      w.Null();
      return absl::OkStatus();
    case pb::Value::kNumberValue: {
      const double d = value.number_value();
      if (!std::isfinite(d)) {
        return absl::InvalidArgumentError("numbers must be finite (no NaN or Infinity)");
      }
      // The shortest text that reads back as the same double ("42", "0.1", "1e+300"), where
      // RapidJSON's own would write 42 as "42.0".
      char buf[32];
      const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), d);
      w.RawValue(buf, static_cast<size_t>(r.ptr - buf), rapidjson::kNumberType);
      return absl::OkStatus();
    }
    case pb::Value::kStringValue:
      WriteString(value.string_value(), /*key=*/false, w);
      return absl::OkStatus();
    case pb::Value::kBoolValue:
      w.Bool(value.bool_value());
      return absl::OkStatus();
    case pb::Value::kStructValue:
      return Write(value.struct_value(), w);
    case pb::Value::kListValue:
      w.StartArray();
      for (const pb::Value& item : value.list_value().values()) {
        if (absl::Status st = Write(item, w); !st.ok()) return st;
      }
      w.EndArray();
      return absl::OkStatus();
    case pb::Value::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("a value with no kind set");
}

/// Builds a Value from RapidJSON's parse events.
class ValueBuilder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, ValueBuilder> {
 public:
  explicit ValueBuilder(pb::Value* root) : root_(root) {}

  bool Null() {
    Next()->set_null_value(pb::NULL_VALUE);
    return true;
  }
  bool Bool(bool b) {
    Next()->set_bool_value(b);
    return true;
  }
  bool Int(int i) { return Double(i); }
  bool Uint(unsigned u) { return Double(u); }
  bool Int64(int64_t i) { return Double(static_cast<double>(i)); }
  bool Uint64(uint64_t u) { return Double(static_cast<double>(u)); }
  bool Double(double d) {
    Next()->set_number_value(d);
    return true;
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    if (!Utf8(s, n)) return false;
    Next()->set_string_value(s, n);
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (!Utf8(s, n)) return false;
    key_.assign(s, n);
    return true;
  }
  bool StartObject() {
    pb::Value* v = Open();
    if (v != nullptr) v->mutable_struct_value();
    return v != nullptr;
  }
  bool StartArray() {
    pb::Value* v = Open();
    if (v != nullptr) v->mutable_list_value();
    return v != nullptr;
  }
  bool EndObject(rapidjson::SizeType) { return Close(); }
  bool EndArray(rapidjson::SizeType) { return Close(); }

  /// Why the handler stopped the parse, if it did.
  const char* refusal() const { return refusal_; }

 private:
  // Where the next value goes: the root, the end of the open array, or the open object's field
  // named by the last key (a repeated key keeps the last value).
  pb::Value* Next() {
    if (open_.empty()) return root_;
    pb::Value* container = open_.back();
    if (container->has_list_value()) return container->mutable_list_value()->add_values();
    pb::Value* slot = &(*container->mutable_struct_value()->mutable_fields())[key_];
    slot->Clear();
    return slot;
  }
  // Raw bytes that are not UTF-8, or an escaped lone surrogate (which RapidJSON decodes).
  bool Utf8(const char* s, rapidjson::SizeType n) {
    if (IsValidUtf8(absl::string_view(s, n))) return true;
    refusal_ = "a string that is not UTF-8";
    return false;
  }
  pb::Value* Open() {
    if (open_.size() >= kMaxDepth) {
      refusal_ = "nested deeper than 1000";
      return nullptr;
    }
    open_.push_back(Next());
    return open_.back();
  }
  bool Close() {
    open_.pop_back();
    return true;
  }

  pb::Value* const root_;
  std::vector<pb::Value*> open_;
  std::string key_;
  const char* refusal_ = nullptr;
};

}  // namespace

absl::Status AppendJson(const pb::Struct& value, std::string* out) {
  StringOut stream{out};
  JsonWriter writer(stream);
  return Write(value, writer);
}

absl::Status AppendJson(const pb::Value& value, std::string* out) {
  StringOut stream{out};
  JsonWriter writer(stream);
  return Write(value, writer);
}

absl::StatusOr<pb::Value> ParseJson(absl::string_view text) {
  pb::Value out;
  ValueBuilder builder(&out);
  rapidjson::MemoryStream bytes(text.data(), text.size());
  rapidjson::Reader reader;
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseFullPrecisionFlag;
  const rapidjson::ParseResult parsed = reader.Parse<kFlags>(bytes, builder);
  if (parsed.IsError()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "JSON: ",
        builder.refusal() ? builder.refusal() : rapidjson::GetParseError_En(parsed.Code()),
        " at byte ", parsed.Offset()));
  }
  return out;
}

absl::StatusOr<pb::Struct> ParseJsonObject(absl::string_view text) {
  absl::StatusOr<pb::Value> value = ParseJson(text);
  if (!value.ok()) return value.status();
  if (!value->has_struct_value()) return absl::InvalidArgumentError("JSON: not an object");
  pb::Struct out;
  out.Swap(value->mutable_struct_value());
  return out;
}

}  // namespace approvald::db
