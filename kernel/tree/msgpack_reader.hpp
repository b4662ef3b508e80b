// A minimal msgpack reader for the kernel's hot paths (log entry bodies on
// every apply, snapshot records at every restart): no allocation, no
// exceptions, just the types Corral writes — integers, strings, binaries and
// arrays. Any other type, or a value cut short, marks the reader failed.
#pragma once

#include <cstdint>
#include <string_view>

namespace corral::kernel {

class MsgpackReader {
 public:
  explicit MsgpackReader(std::string_view in) : p_(reinterpret_cast<const uint8_t*>(in.data())), n_(in.size()) {}

  bool ok() const { return ok_; }
  size_t position() const { return i_; }
  bool at_end() const { return i_ == n_; }

  // An array header; returns its length.
  uint32_t array() {
    if (!need(1)) return 0;
    uint8_t t = p_[i_++];
    if ((t & 0xf0) == 0x90) return t & 0x0f;
    if (t == 0xdc) return static_cast<uint32_t>(be(2));
    if (t == 0xdd) return static_cast<uint32_t>(be(4));
    return fail();
  }

  int64_t integer() {
    if (!need(1)) return 0;
    uint8_t t = p_[i_++];
    if (t <= 0x7f) return t;
    if (t >= 0xe0) return static_cast<int8_t>(t);
    switch (t) {
      case 0xcc: return static_cast<int64_t>(be(1));
      case 0xcd: return static_cast<int64_t>(be(2));
      case 0xce: return static_cast<int64_t>(be(4));
      case 0xcf: return static_cast<int64_t>(be(8));
      case 0xd0: return static_cast<int8_t>(be(1));
      case 0xd1: return static_cast<int16_t>(be(2));
      case 0xd2: return static_cast<int32_t>(be(4));
      case 0xd3: return static_cast<int64_t>(be(8));
      default: return fail();
    }
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
    if ((t & 0xe0) == 0xa0) len = t & 0x1f;
    else if (t == 0xd9 || t == 0xc4) len = static_cast<size_t>(be(1));
    else if (t == 0xda || t == 0xc5) len = static_cast<size_t>(be(2));
    else if (t == 0xdb || t == 0xc6) len = static_cast<size_t>(be(4));
    else return fail(), std::string_view();
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

}  // namespace corral::kernel
