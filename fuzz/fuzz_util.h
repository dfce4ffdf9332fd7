// Helpers shared by the fuzz targets: a cursor that carves a fuzzer input
// into parameters and pieces, and a failure that libFuzzer records as a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace trlmdb::fuzz {

// A violated property is a finding like a sanitizer report: print why and
// abort, so libFuzzer saves the input as a crash artifact.
[[noreturn]] inline void fail(const char *what, const std::string &detail = {}) {
  std::fprintf(stderr, "fuzz property violated: %s%s%s\n", what, detail.empty() ? "" : ": ",
               detail.c_str());
  std::abort();
}

inline void check(bool ok, const char *what, const std::string &detail = {}) {
  if (!ok) fail(what, detail);
}

// Reads parameters from the front of the input. Past the end every read
// yields zeros and empty pieces, so short inputs still exercise the target.
class Cursor {
 public:
  Cursor(const uint8_t *data, std::size_t size)
      : p_(reinterpret_cast<const char *>(data)), n_(size) {}

  std::size_t left() const { return n_ - at_; }
  bool empty() const { return at_ == n_; }

  uint8_t byte() { return at_ < n_ ? static_cast<uint8_t>(p_[at_++]) : 0; }
  uint16_t u16() { return static_cast<uint16_t>(byte() | byte() << 8); }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{byte()} << (8 * i);
    return v;
  }

  // The next `len` bytes (fewer at the end of the input).
  std::string_view take(std::size_t len) {
    if (len > left()) len = left();
    std::string_view s(p_ + at_, len);
    at_ += len;
    return s;
  }
  // A piece prefixed by its 16-bit little-endian length.
  std::string_view piece() { return take(u16()); }
  std::string_view rest() { return take(left()); }

 private:
  const char *p_;
  std::size_t n_;
  std::size_t at_ = 0;
};

// Deterministic pseudo-random numbers from a seed taken from the input.
inline uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

inline std::string hex(std::string_view s, std::size_t max = 64) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < max; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  if (s.size() > max) out += "...";
  return out;
}

}  // namespace trlmdb::fuzz
