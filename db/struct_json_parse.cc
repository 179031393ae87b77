// JSON text -> google.protobuf.Struct (the parser half of db/struct_json.h).

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "db/struct_json.h"
#include "db/utf8.h"

namespace approvald::db {
namespace {

namespace pb = google::protobuf;

constexpr int kMaxDepth = 1000;

class Parser {
 public:
  explicit Parser(absl::string_view text) : s_(text) {}

  absl::Status Document(pb::Value* out) {
    if (const size_t bad = FirstInvalidUtf8(s_); bad != absl::string_view::npos) {
      pos_ = bad;
      return Error("text that is not UTF-8");
    }
    if (absl::Status st = Value(out, 0); !st.ok()) return st;
    SkipSpace();
    if (pos_ != s_.size()) return Error("text after the value");
    return absl::OkStatus();
  }

 private:
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("JSON: ", what, " at byte ", pos_));
  }

  void SkipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) {
      ++pos_;
    }
  }

  bool Literal(absl::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  absl::Status Value(pb::Value* out, int depth) {
    if (depth > kMaxDepth) return Error("nesting deeper than 1000 levels");
    SkipSpace();
    if (pos_ >= s_.size()) return Error("end of text where a value belongs");
    switch (s_[pos_]) {
      case '{':
        return Object(out->mutable_struct_value(), depth);
      case '[':
        return Array(out->mutable_list_value(), depth);
      case '"':
        return String(out->mutable_string_value());
      case 't':
        if (!Literal("true")) return Error("an unknown word");
        out->set_bool_value(true);
        return absl::OkStatus();
      case 'f':
        if (!Literal("false")) return Error("an unknown word");
        out->set_bool_value(false);
        return absl::OkStatus();
      case 'n':
        if (!Literal("null")) return Error("an unknown word");
        out->set_null_value(pb::NULL_VALUE);
        return absl::OkStatus();
      default:
        return Number(out);
    }
  }

  absl::Status Object(pb::Struct* out, int depth) {
    ++pos_;  // '{'
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return absl::OkStatus();
    }
    auto& fields = *out->mutable_fields();
    std::string key;
    for (;;) {
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_] != '"') return Error("a missing object key");
      key.clear();
      if (absl::Status st = String(&key); !st.ok()) return st;
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_] != ':') return Error("a missing ':'");
      ++pos_;
      pb::Value& slot = fields[key];  // a repeated key: the last one wins
      slot.Clear();
      if (absl::Status st = Value(&slot, depth + 1); !st.ok()) return st;
      SkipSpace();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return absl::OkStatus();
      }
      return Error("a missing ',' or '}'");
    }
  }

  absl::Status Array(pb::ListValue* out, int depth) {
    ++pos_;  // '['
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return absl::OkStatus();
    }
    for (;;) {
      if (absl::Status st = Value(out->add_values(), depth + 1); !st.ok()) return st;
      SkipSpace();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return absl::OkStatus();
      }
      return Error("a missing ',' or ']'");
    }
  }

  bool Hex4(uint32_t* cp) {
    if (pos_ + 4 > s_.size()) return false;
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[pos_ + static_cast<size_t>(k)];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    pos_ += 4;
    *cp = v;
    return true;
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  absl::Status String(std::string* out) {
    ++pos_;  // '"'
    size_t plain = pos_;
    while (pos_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        out->append(s_.data() + plain, pos_ - plain);
        ++pos_;
        return absl::OkStatus();
      }
      if (c < 0x20) return Error("a control character inside a string");
      if (c != '\\') {
        ++pos_;
        continue;
      }
      out->append(s_.data() + plain, pos_ - plain);
      if (++pos_ >= s_.size()) break;
      const char e = s_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out->push_back(e);
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!Hex4(&cp)) return Error("a bad \\u escape");
          if (cp >= 0xDC00 && cp <= 0xDFFF) return Error("a lone low surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low = 0;
            if (!Literal("\\u") || !Hex4(&low) || low < 0xDC00 || low > 0xDFFF) {
              return Error("a high surrogate without its low surrogate");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          return Error("an unknown escape");
      }
      plain = pos_;
    }
    return Error("a string without its closing quote");
  }

  absl::Status Number(pb::Value* out) {
    const size_t start = pos_;
    auto digits = [&] {
      const size_t from = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - from;
    };
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    const size_t int_start = pos_;
    const size_t int_digits = digits();
    if (int_digits == 0) return Error("an unexpected character");
    if (int_digits > 1 && s_[int_start] == '0') return Error("a number with a leading zero");
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) return Error("a number without digits after '.'");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (digits() == 0) return Error("a number without digits in its exponent");
    }
    const char* first = s_.data() + start;
    const char* last = s_.data() + pos_;
    double d = 0;
    const std::from_chars_result r = std::from_chars(first, last, d);
    if (r.ec == std::errc::result_out_of_range) {
      // Too large is an error; too small is (a denormal or) zero, as strtod reads it.
      d = std::strtod(std::string(first, last).c_str(), nullptr);
      if (!std::isfinite(d)) {
        pos_ = start;
        return Error("a number out of the range of a double");
      }
    } else if (r.ec != std::errc() || r.ptr != last) {
      pos_ = start;
      return Error("a malformed number");
    }
    out->set_number_value(d);
    return absl::OkStatus();
  }

  absl::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

absl::StatusOr<pb::Value> ParseJson(absl::string_view text) {
  pb::Value out;
  if (absl::Status st = Parser(text).Document(&out); !st.ok()) return st;
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
