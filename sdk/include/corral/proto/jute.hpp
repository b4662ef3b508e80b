// Jute, ZooKeeper's wire encoding: big-endian integers, length-prefixed
// buffers and strings (-1 for null), count-prefixed vectors.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace corral::proto {

static_assert(std::endian::native == std::endian::little,
              "the jute codec swaps bytes as a little-endian host must");

// Appends jute values to a byte string.
class JuteWriter {
 public:
  explicit JuteWriter(std::string& out) : out_(out) {}

  void write_bool(bool v) { out_.push_back(v ? 1 : 0); }
  void write_int(int32_t v) { put_be(static_cast<uint32_t>(v), 4); }
  void write_long(int64_t v) { put_be(static_cast<uint64_t>(v), 8); }
  void write_buffer(std::string_view v) {
    write_int(static_cast<int32_t>(v.size()));
    out_.append(v);
  }
  void write_null_buffer() { write_int(-1); }
  void write_string(std::string_view v) { write_buffer(v); }
  // Vectors: the caller writes the count, then the elements.
  void write_count(int32_t n) { write_int(n); }

  // Reserves 4 bytes for a frame length; finish_frame() fills them in.
  size_t begin_frame() {
    size_t at = out_.size();
    out_.append(4, '\0');
    return at;
  }
  void finish_frame(size_t at) {
    uint32_t n = static_cast<uint32_t>(out_.size() - at - 4);
    for (int i = 0; i < 4; ++i) out_[at + i] = static_cast<char>(n >> (24 - 8 * i));
  }
  std::string& bytes() { return out_; }

 private:
  void put_be(uint64_t v, int n) {
    uint64_t be = __builtin_bswap64(v << (8 * (8 - n)));  // the n low bytes, most significant first
    char b[8];
    std::memcpy(b, &be, 8);
    out_.append(b, static_cast<size_t>(n));
  }
  std::string& out_;
};

// Reads jute values from a byte view. A read past the end or a bad length
// marks the reader failed; every later read then returns zero values, so a
// decoder checks ok() once at the end.
class JuteReader {
 public:
  explicit JuteReader(std::string_view in) : in_(in) {}

  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == in_.size(); }
  size_t remaining() const { return in_.size() - pos_; }
  size_t position() const { return pos_; }
  void fail() {
    ok_ = false;
    pos_ = in_.size();
  }
  // The bytes read since position() was `from`.
  std::string_view since(size_t from) const { return in_.substr(from, pos_ - from); }

  bool read_bool() {
    if (!need(1)) return false;
    return in_[pos_++] != 0;
  }
  int32_t read_int() { return static_cast<int32_t>(get_be(4)); }
  int64_t read_long() { return static_cast<int64_t>(get_be(8)); }
  // A buffer or string; a null (-1) reads as empty and sets *was_null.
  std::string_view read_buffer(bool* was_null = nullptr) {
    int32_t n = read_int();
    if (was_null) *was_null = (n == -1);
    if (n == -1) return {};
    if (n < 0 || !need(static_cast<size_t>(n))) {
      fail();
      return {};
    }
    std::string_view v = in_.substr(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return v;
  }
  std::string_view read_string() { return read_buffer(); }
  // A vector count; -1 (null) reads as 0. A count that could not fit in the
  // remaining bytes (each element takes at least `min_element` bytes) fails.
  int32_t read_count(size_t min_element = 1) {
    int32_t n = read_int();
    if (n == -1) return 0;
    if (n < 0 || static_cast<size_t>(n) * min_element > remaining()) {
      fail();
      return 0;
    }
    return n;
  }

 private:
  bool need(size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      fail();
      return false;
    }
    return true;
  }
  uint64_t get_be(int n) {
    if (!need(static_cast<size_t>(n))) return 0;
    uint64_t v = 0;
    std::memcpy(&v, in_.data() + pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return __builtin_bswap64(v) >> (8 * (8 - n));
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace corral::proto
