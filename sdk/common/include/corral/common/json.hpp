// JSON for the places Corral reads or writes it: admin commands, tool
// output, the Docker Engine API, recipe documents such as Curator's
// ServiceInstance.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "corral/sdk/status.hpp"

namespace corral::common {

// `s` as a JSON string literal, quotes included. Control characters become
// \u00XX escapes; other bytes pass through (UTF-8 stays UTF-8).
std::string json_quote(std::string_view s);

// A parsed JSON document. Objects keep their members in document order, so
// a document read and written again keeps its shape.
class JsonValue {
 public:
  enum class Type { null, boolean, number, string, array, object };
  using Members = std::vector<std::pair<std::string, JsonValue>>;

  JsonValue() = default;  // null
  static JsonValue boolean(bool b);
  static JsonValue number(double v);
  static JsonValue integer(int64_t v);
  static JsonValue string(std::string s);
  static JsonValue array(std::vector<JsonValue> items = {});
  static JsonValue object(Members members = {});

  // Strict RFC 8259 parsing of one document (surrounding whitespace allowed),
  // by nlohmann::json's parser (Debian's nlohmann-json3-dev). Errors say what
  // was found and at which byte offset; nesting deeper than `max_depth` is
  // refused.
  static sdk::Result<JsonValue> parse(std::string_view text, int max_depth = 64);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::null; }
  bool is_object() const { return type_ == Type::object; }
  bool is_array() const { return type_ == Type::array; }
  bool is_string() const { return type_ == Type::string; }
  bool is_number() const { return type_ == Type::number; }
  bool is_bool() const { return type_ == Type::boolean; }

  // Typed reads: nullopt/nullptr when the value is of another type.
  std::optional<bool> as_bool() const;
  std::optional<double> as_double() const;
  // Numbers without a fraction or exponent that fit in 64 bits.
  std::optional<int64_t> as_int() const;
  const std::string* as_string() const;
  const std::vector<JsonValue>* as_array() const;
  const Members* as_object() const;

  // An object's member by name (the first when repeated); nullptr when absent
  // or when this is not an object.
  const JsonValue* get(std::string_view key) const;
  // Convenience: the member's string, or `def`.
  std::string get_string(std::string_view key, std::string_view def = {}) const;

  // Builders for objects and arrays.
  JsonValue& set(std::string key, JsonValue value);  // replaces an existing member
  JsonValue& push(JsonValue value);

  // Compact text. Numbers read from a document keep their original spelling.
  std::string dump() const;

 private:
  void dump_to(std::string& out) const;
  Type type_ = Type::null;
  bool bool_ = false;
  double number_ = 0;
  std::string text_;  // string value, or a number's spelling
  std::vector<JsonValue> items_;
  Members members_;
  friend class JsonBuilder;
};

}  // namespace corral::common
