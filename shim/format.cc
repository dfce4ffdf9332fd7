#include "format.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace trlmdb {

void put_be32(unsigned char *p, uint32_t v) {
  p[0] = static_cast<unsigned char>(v >> 24);
  p[1] = static_cast<unsigned char>(v >> 16);
  p[2] = static_cast<unsigned char>(v >> 8);
  p[3] = static_cast<unsigned char>(v);
}

void put_be64(unsigned char *p, uint64_t v) {
  put_be32(p, static_cast<uint32_t>(v >> 32));
  put_be32(p + 4, static_cast<uint32_t>(v));
}

uint32_t get_be32(const unsigned char *p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

uint64_t get_be64(const unsigned char *p) {
  return (uint64_t{get_be32(p)} << 32) | get_be32(p + 4);
}

void encode_ts(const Ts &ts, unsigned char out[kTsSize]) {
  put_be64(out, ts.time);
  put_be32(out + 8, ts.node);
}

Ts decode_ts(const unsigned char in[kTsSize]) { return Ts{get_be64(in), get_be32(in + 8)}; }

bool parse_ts(std::string_view bytes, Ts *out) {
  if (bytes.size() != kTsSize) return false;
  Ts ts = decode_ts(reinterpret_cast<const unsigned char *>(bytes.data()));
  if (!ts.is_put() && !ts.is_delete()) return false;
  *out = ts;
  return true;
}

void append_xkey(std::string *out, std::string_view dbname, std::string_view key) {
  out->append(dbname);
  out->push_back('\0');
  out->append(key);
}

std::string make_xkey(std::string_view dbname, std::string_view key) {
  std::string x;
  x.reserve(dbname.size() + 1 + key.size());
  append_xkey(&x, dbname, key);
  return x;
}

bool split_xkey(std::string_view xkey, std::string_view *dbname, std::string_view *key) {
  std::size_t nul = xkey.find('\0');
  if (nul == std::string_view::npos) return false;
  *dbname = xkey.substr(0, nul);
  *key = xkey.substr(nul + 1);
  return true;
}

bool is_reserved_name(std::string_view name) {
  return name.size() >= kReservedPrefix.size() &&
         std::memcmp(name.data(), kReservedPrefix.data(), kReservedPrefix.size()) == 0;
}

std::string format_ts(const Ts &ts) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%" PRIu32 ".%08" PRIx32 "/%06" PRIx32 "-%s", ts.seconds(),
                ts.fraction(), ts.node >> 8, ts.is_put() ? "put" : "del");
  return buf;
}

}  // namespace trlmdb
