#include "corral/common/json.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace corral::common {

std::string json_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  return out;
}

JsonValue JsonValue::boolean(bool b) {
  JsonValue v;
  v.type_ = Type::boolean;
  v.bool_ = b;
  return v;
}

JsonValue JsonValue::number(double d) {
  JsonValue v;
  v.type_ = Type::number;
  v.number_ = d;
  return v;
}

JsonValue JsonValue::integer(int64_t i) {
  JsonValue v;
  v.type_ = Type::number;
  v.number_ = static_cast<double>(i);
  v.text_ = std::to_string(i);
  return v;
}

JsonValue JsonValue::string(std::string s) {
  JsonValue v;
  v.type_ = Type::string;
  v.text_ = std::move(s);
  return v;
}

JsonValue JsonValue::array(std::vector<JsonValue> items) {
  JsonValue v;
  v.type_ = Type::array;
  v.items_ = std::move(items);
  return v;
}

JsonValue JsonValue::object(Members members) {
  JsonValue v;
  v.type_ = Type::object;
  v.members_ = std::move(members);
  return v;
}

std::optional<bool> JsonValue::as_bool() const {
  if (type_ != Type::boolean) return std::nullopt;
  return bool_;
}

std::optional<double> JsonValue::as_double() const {
  if (type_ != Type::number) return std::nullopt;
  return number_;
}

std::optional<int64_t> JsonValue::as_int() const {
  if (type_ != Type::number) return std::nullopt;
  if (!text_.empty()) {
    int64_t i = 0;
    auto [p, ec] = std::from_chars(text_.data(), text_.data() + text_.size(), i);
    if (ec == std::errc() && p == text_.data() + text_.size()) return i;
    return std::nullopt;
  }
  if (std::trunc(number_) != number_ || std::fabs(number_) > 9.007199254740992e15)
    return std::nullopt;
  return static_cast<int64_t>(number_);
}

const std::string* JsonValue::as_string() const { return type_ == Type::string ? &text_ : nullptr; }
const std::vector<JsonValue>* JsonValue::as_array() const {
  return type_ == Type::array ? &items_ : nullptr;
}
const JsonValue::Members* JsonValue::as_object() const {
  return type_ == Type::object ? &members_ : nullptr;
}

const JsonValue* JsonValue::get(std::string_view key) const {
  if (type_ != Type::object) return nullptr;
  for (const auto& [k, v] : members_)
    if (k == key) return &v;
  return nullptr;
}

std::string JsonValue::get_string(std::string_view key, std::string_view def) const {
  const JsonValue* v = get(key);
  const std::string* s = v ? v->as_string() : nullptr;
  return s ? *s : std::string(def);
}

JsonValue& JsonValue::set(std::string key, JsonValue value) {
  if (type_ != Type::object) *this = object();
  for (auto& [k, v] : members_)
    if (k == key) {
      v = std::move(value);
      return *this;
    }
  members_.emplace_back(std::move(key), std::move(value));
  return *this;
}

JsonValue& JsonValue::push(JsonValue value) {
  if (type_ != Type::array) *this = array();
  items_.push_back(std::move(value));
  return *this;
}

std::string JsonValue::dump() const {
  std::string out;
  dump_to(out);
  return out;
}

void JsonValue::dump_to(std::string& out) const {
  switch (type_) {
    case Type::null:
      out += "null";
      break;
    case Type::boolean:
      out += bool_ ? "true" : "false";
      break;
    case Type::number:
      if (!text_.empty()) {
        out += text_;
      } else if (!std::isfinite(number_)) {
        out += "null";  // JSON has no NaN or infinity
      } else {
        char b[32];
        auto [p, ec] = std::to_chars(b, b + sizeof b, number_);
        out.append(b, p);
      }
      break;
    case Type::string:
      out += json_quote(text_);
      break;
    case Type::array:
      out += '[';
      for (size_t i = 0; i < items_.size(); ++i) {
        if (i) out += ',';
        items_[i].dump_to(out);
      }
      out += ']';
      break;
    case Type::object:
      out += '{';
      for (size_t i = 0; i < members_.size(); ++i) {
        if (i) out += ',';
        out += json_quote(members_[i].first);
        out += ':';
        members_[i].second.dump_to(out);
      }
      out += '}';
      break;
  }
}

class JsonParser {
 public:
  JsonParser(std::string_view text, int max_depth) : s_(text), max_depth_(max_depth) {}

  sdk::Result<JsonValue> document() {
    JsonValue v;
    if (!value(v, 0)) return fail();
    ws();
    if (pos_ != s_.size()) {
      error_ = "unexpected text after the document";
      return fail();
    }
    return v;
  }

 private:
  sdk::Status fail() const {
    return {sdk::Errc::invalid_argument,
            "JSON at byte " + std::to_string(err_pos_ ? err_pos_ : pos_) + ": " + error_};
  }
  bool expect(const char* what) {
    if (error_.empty()) {
      error_ = std::string("expected ") + what;
      err_pos_ = pos_;
    }
    return false;
  }
  void ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool value(JsonValue& out, int depth) {
    ws();
    if (pos_ >= s_.size()) return expect("a value, found the end of the text");
    char c = s_[pos_];
    if (c == '{' || c == '[') {
      if (depth >= max_depth_) {
        error_ = "nested deeper than " + std::to_string(max_depth_) + " levels";
        err_pos_ = pos_;
        return false;
      }
      return c == '{' ? object(out, depth + 1) : array(out, depth + 1);
    }
    if (c == '"') {
      out.type_ = JsonValue::Type::string;
      return string(out.text_);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return number(out);
    if (literal("true")) {
      out = JsonValue::boolean(true);
      return true;
    }
    if (literal("false")) {
      out = JsonValue::boolean(false);
      return true;
    }
    if (literal("null")) {
      out = JsonValue();
      return true;
    }
    return expect("a value (object, array, string, number, true, false or null)");
  }

  bool object(JsonValue& out, int depth) {
    out.type_ = JsonValue::Type::object;
    ++pos_;
    ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') return expect("a member name in double quotes");
      std::string key;
      if (!string(key)) return false;
      ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') return expect("':' after a member name");
      ++pos_;
      JsonValue v;
      if (!value(v, depth)) return false;
      out.members_.emplace_back(std::move(key), std::move(v));
      ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return true;
      }
      return expect("',' or '}' in an object");
    }
  }

  bool array(JsonValue& out, int depth) {
    out.type_ = JsonValue::Type::array;
    ++pos_;
    ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      JsonValue v;
      if (!value(v, depth)) return false;
      out.items_.push_back(std::move(v));
      ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return expect("',' or ']' in an array");
    }
  }

  static void utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  bool hex4(uint32_t& v) {
    if (pos_ + 4 > s_.size()) return expect("four hex digits after \\u");
    v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_ + i];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<uint32_t>(c - 'A' + 10);
      else
        return expect("four hex digits after \\u");
    }
    pos_ += 4;
    return true;
  }

  bool string(std::string& out) {
    ++pos_;  // opening quote
    for (;;) {
      if (pos_ >= s_.size()) return expect("a closing '\"'");
      unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return expect("no raw control characters in a string (escape them)");
      if (c != '\\') {
        out += static_cast<char>(c);
        ++pos_;
        continue;
      }
      if (++pos_ >= s_.size()) return expect("an escape after '\\'");
      char e = s_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low = 0;
            if (s_.substr(pos_, 2) != "\\u") return expect("a low surrogate after a high one");
            pos_ += 2;
            if (!hex4(low)) return false;
            if (low < 0xDC00 || low > 0xDFFF) return expect("a low surrogate after a high one");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return expect("a high surrogate before a low one");
          }
          utf8(out, cp);
          break;
        }
        default:
          --pos_;
          return expect("an escape: one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u");
      }
    }
  }

  bool number(JsonValue& out) {
    size_t start = pos_;
    if (s_[pos_] == '-') ++pos_;
    auto digits = [&] {
      size_t d = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - d;
    };
    if (pos_ < s_.size() && s_[pos_] == '0') {
      ++pos_;
    } else if (digits() == 0) {
      return expect("digits in a number");
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) return expect("digits after a decimal point");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (digits() == 0) return expect("digits in an exponent");
    }
    out.type_ = JsonValue::Type::number;
    out.text_ = std::string(s_.substr(start, pos_ - start));
    out.number_ = std::strtod(out.text_.c_str(), nullptr);
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0, err_pos_ = 0;
  int max_depth_;
  std::string error_;
};

sdk::Result<JsonValue> JsonValue::parse(std::string_view text, int max_depth) {
  return JsonParser(text, max_depth).document();
}

}  // namespace corral::common
