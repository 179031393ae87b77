#include "db/struct_json.h"

#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "db/utf8.h"

namespace approvald::db {
namespace {

namespace pb = google::protobuf;

constexpr char kHex[] = "0123456789abcdef";

absl::Status AppendString(absl::string_view s, std::string* out) {
  std::string repaired;
  if (size_t bad = FirstInvalidUtf8(s); bad != absl::string_view::npos) {
    // Not UTF-8 (a handler's text, say): each bad byte becomes U+FFFD, so that the JSON is
    // still text PostgreSQL's jsonb accepts.
    while (bad != absl::string_view::npos) {
      repaired.append(s.data(), bad);
      repaired.append("\xEF\xBF\xBD");
      s.remove_prefix(bad + 1);
      bad = FirstInvalidUtf8(s);
    }
    repaired.append(s.data(), s.size());
    s = repaired;
  }
  out->push_back('"');
  size_t plain = 0;  // start of the run of bytes copied as they are
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + plain, i - plain);
    plain = i + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xF]);
    }
  }
  out->append(s.data() + plain, s.size() - plain);
  out->push_back('"');
  return absl::OkStatus();
}

absl::Status AppendNumber(double d, std::string* out) {
  if (!std::isfinite(d)) {
    return absl::InvalidArgumentError("numbers must be finite (no NaN or Infinity)");
  }
  char buf[32];
  // The shortest text that reads back as the same double ("42", "0.1", "1e+300").
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), d);
  out->append(buf, static_cast<size_t>(r.ptr - buf));
  return absl::OkStatus();
}

}  // namespace

absl::Status AppendJson(const pb::Struct& value, std::string* out) {
  out->push_back('{');
  bool first = true;
  for (const auto& [key, v] : value.fields()) {
    if (!first) out->push_back(',');
    first = false;
    if (absl::Status st = AppendString(key, out); !st.ok()) return st;
    out->push_back(':');
    if (absl::Status st = AppendJson(v, out); !st.ok()) return st;
  }
  out->push_back('}');
  return absl::OkStatus();
}

absl::Status AppendJson(const pb::Value& value, std::string* out) {
  switch (value.kind_case()) {
    case pb::Value::kNullValue:
      out->append("null");
      return absl::OkStatus();
    case pb::Value::kNumberValue:
      return AppendNumber(value.number_value(), out);
    case pb::Value::kStringValue:
      return AppendString(value.string_value(), out);
    case pb::Value::kBoolValue:
      out->append(value.bool_value() ? "true" : "false");
      return absl::OkStatus();
    case pb::Value::kStructValue:
      return AppendJson(value.struct_value(), out);
    case pb::Value::kListValue: {
      out->push_back('[');
      bool first = true;
      for (const pb::Value& item : value.list_value().values()) {
        if (!first) out->push_back(',');
        first = false;
        if (absl::Status st = AppendJson(item, out); !st.ok()) return st;
      }
      out->push_back(']');
      return absl::OkStatus();
    }
    case pb::Value::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("a value with no kind set");
}

}  // namespace approvald::db
