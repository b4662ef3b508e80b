#include "corral/common/json.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

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

// Builds a JsonValue from nlohmann::json's SAX events (an iterative parser:
// no recursion, whatever the nesting), keeping member order and each
// number's spelling, and refusing nesting deeper than `max_depth`.
class JsonBuilder final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit JsonBuilder(int max_depth) : max_depth_(max_depth) {}

  bool null() override { return put(JsonValue()); }
  bool boolean(bool v) override { return put(JsonValue::boolean(v)); }
  bool number_integer(number_integer_t v) override {
    return put(number(static_cast<double>(v), std::to_string(v)));
  }
  bool number_unsigned(number_unsigned_t v) override {
    return put(number(static_cast<double>(v), std::to_string(v)));
  }
  bool number_float(number_float_t v, const string_t& spelling) override {
    return put(number(v, spelling));
  }
  bool string(string_t& v) override { return put(JsonValue::string(std::move(v))); }
  bool binary(binary_t&) override { return false; }  // not in JSON text
  bool start_object(std::size_t) override { return open(JsonValue::object()); }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(JsonValue::array()); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) override {
    // "[json.exception.parse_error.101] parse error at line 1, column 4: <what>"
    std::string what = e.what();
    if (size_t at = what.find(": "); at != std::string::npos) what = what.substr(at + 2);
    error_ = "JSON at byte " + std::to_string(position > 0 ? position - 1 : 0) + ": " + what;
    return false;
  }

  sdk::Result<JsonValue> result() {
    if (!error_.empty()) return sdk::Status{sdk::Errc::invalid_argument, error_};
    if (!done_) return sdk::Status{sdk::Errc::invalid_argument, "JSON: an incomplete document"};
    return std::move(root_);
  }

 private:
  static JsonValue number(double v, std::string spelling) {
    JsonValue n = JsonValue::number(v);
    n.text_ = std::move(spelling);
    return n;
  }
  // Places a finished value in the container being built, or as the root.
  bool put(JsonValue v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      done_ = true;
      return true;
    }
    JsonValue& top = *stack_.back();
    if (top.type_ == JsonValue::Type::object)
      top.members_.emplace_back(std::move(key_), std::move(v));
    else
      top.items_.push_back(std::move(v));
    return true;
  }
  bool open(JsonValue container) {
    if (static_cast<int>(stack_.size()) >= max_depth_) {
      error_ = "JSON: nested deeper than " + std::to_string(max_depth_) + " levels";
      return false;
    }
    if (stack_.empty()) {
      root_ = std::move(container);
      stack_.push_back(&root_);
      return true;
    }
    JsonValue& top = *stack_.back();
    JsonValue* slot;
    if (top.type_ == JsonValue::Type::object) {
      top.members_.emplace_back(std::move(key_), std::move(container));
      slot = &top.members_.back().second;
    } else {
      top.items_.push_back(std::move(container));
      slot = &top.items_.back();
    }
    stack_.push_back(slot);
    return true;
  }
  bool close() {
    stack_.pop_back();
    if (stack_.empty()) done_ = true;
    return true;
  }

  int max_depth_;
  JsonValue root_;
  std::vector<JsonValue*> stack_;  // the open containers; each inside the one before
  std::string key_;
  std::string error_;
  bool done_ = false;
};

sdk::Result<JsonValue> JsonValue::parse(std::string_view text, int max_depth) {
  JsonBuilder b(max_depth);
  nlohmann::json::sax_parse(text.begin(), text.end(), &b, nlohmann::json::input_format_t::json,
                            true, false);
  return b.result();
}

}  // namespace corral::common
