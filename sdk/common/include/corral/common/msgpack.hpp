// A minimal msgpack reader and writer for hot paths (log entry bodies, peer
// messages, snapshot records): no allocation when reading, no exceptions,
// just the types Corral writes — integers, booleans, nil, strings, binaries
// and arrays. Any other type, or a value cut short, marks the reader failed,
// so a malformed message is detected by checking ok() once at the end.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace corral::common {

class MsgpackReader {
 public:
  explicit MsgpackReader(std::string_view in)
      : p_(reinterpret_cast<const uint8_t*>(in.data())), n_(in.size()) {}

  bool ok() const { return ok_; }
  size_t position() const { return i_; }
  bool at_end() const { return i_ == n_; }

  // An array header; returns its length. Every element takes at least one
  // byte, so a length larger than what is left fails the reader here, before
  // a caller sizes anything by it.
  uint32_t array() {
    if (!need(1)) return 0;
    uint8_t t = p_[i_++];
    uint32_t n;
    if ((t & 0xf0) == 0x90)
      n = t & 0x0f;
    else if (t == 0xdc)
      n = static_cast<uint32_t>(be(2));
    else if (t == 0xdd)
      n = static_cast<uint32_t>(be(4));
    else
      return fail();
    if (n > n_ - i_) return fail();
    return n;
  }

  int64_t integer() {
    if (!need(1)) return 0;
    uint8_t t = p_[i_++];
    if (t <= 0x7f) return t;
    if (t >= 0xe0) return static_cast<int8_t>(t);
    switch (t) {
      case 0xcc:
        return static_cast<int64_t>(be(1));
      case 0xcd:
        return static_cast<int64_t>(be(2));
      case 0xce:
        return static_cast<int64_t>(be(4));
      case 0xcf:
        return static_cast<int64_t>(be(8));
      case 0xd0:
        return static_cast<int8_t>(be(1));
      case 0xd1:
        return static_cast<int16_t>(be(2));
      case 0xd2:
        return static_cast<int32_t>(be(4));
      case 0xd3:
        return static_cast<int64_t>(be(8));
      default:
        return fail();
    }
  }

  bool boolean() {
    if (!need(1)) return false;
    uint8_t t = p_[i_++];
    if (t == 0xc2) return false;
    if (t == 0xc3) return true;
    return fail() != 0;
  }

  // Consumes a nil if one comes next.
  bool nil() {
    if (ok_ && i_ < n_ && p_[i_] == 0xc0) {
      ++i_;
      return true;
    }
    return false;
  }

  // A str or bin value, as a view into the input.
  std::string_view bytes() {
    if (!need(1)) return {};
    uint8_t t = p_[i_++];
    size_t len;
    if ((t & 0xe0) == 0xa0)
      len = t & 0x1f;
    else if (t == 0xd9 || t == 0xc4)
      len = static_cast<size_t>(be(1));
    else if (t == 0xda || t == 0xc5)
      len = static_cast<size_t>(be(2));
    else if (t == 0xdb || t == 0xc6)
      len = static_cast<size_t>(be(4));
    else
      return fail(), std::string_view();
    if (!need(len)) return {};
    std::string_view v(reinterpret_cast<const char*>(p_ + i_), len);
    i_ += len;
    return v;
  }

 private:
  bool need(size_t k) {
    if (ok_ && n_ - i_ >= k) return true;
    ok_ = false;
    i_ = n_;
    return false;
  }
  uint64_t be(int k) {
    if (!need(static_cast<size_t>(k))) return 0;
    uint64_t v = 0;
    for (int j = 0; j < k; ++j) v = (v << 8) | p_[i_ + j];
    i_ += static_cast<size_t>(k);
    return v;
  }
  int fail() {
    ok_ = false;
    i_ = n_;
    return 0;
  }

  const uint8_t* p_;
  size_t n_;
  size_t i_ = 0;
  bool ok_ = true;
};

// Appends msgpack values to a byte string.
class MsgpackWriter {
 public:
  explicit MsgpackWriter(std::string& out) : out_(out) {}

  void array(uint32_t n) {
    if (n < 16)
      put(static_cast<uint8_t>(0x90 | n));
    else if (n <= 0xffff)
      head(0xdc, n, 2);
    else
      head(0xdd, n, 4);
  }
  void integer(int64_t v) {
    if (v >= 0) {
      uint64_t u = static_cast<uint64_t>(v);
      if (u <= 0x7f)
        put(static_cast<uint8_t>(u));
      else if (u <= 0xff)
        head(0xcc, u, 1);
      else if (u <= 0xffff)
        head(0xcd, u, 2);
      else if (u <= 0xffffffffULL)
        head(0xce, u, 4);
      else
        head(0xcf, u, 8);
    } else if (v >= -32) {
      put(static_cast<uint8_t>(static_cast<int8_t>(v)));
    } else if (v >= INT32_MIN) {
      head(0xd2, static_cast<uint32_t>(static_cast<int32_t>(v)), 4);
    } else {
      head(0xd3, static_cast<uint64_t>(v), 8);
    }
  }
  void boolean(bool b) { put(b ? 0xc3 : 0xc2); }
  void nil() { put(0xc0); }
  // A bin value.
  void bytes(std::string_view b) {
    if (b.size() <= 0xff)
      head(0xc4, b.size(), 1);
    else if (b.size() <= 0xffff)
      head(0xc5, b.size(), 2);
    else
      head(0xc6, b.size(), 4);
    out_.append(b);
  }

 private:
  void put(uint8_t b) { out_.push_back(static_cast<char>(b)); }
  void head(uint8_t tag, uint64_t v, int k) {
    put(tag);
    for (int j = k - 1; j >= 0; --j) put(static_cast<uint8_t>(v >> (8 * j)));
  }
  std::string& out_;
};

}  // namespace corral::common
