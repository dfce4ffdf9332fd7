// On-disk format of DESIGN.md section 1 (normative): extended keys, extended
// timestamps and the reserved database names. Pure functions, no LMDB calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace trlmdb {

inline constexpr std::size_t kTsSize = 12;

inline constexpr std::string_view kReservedPrefix = "_trlmdb_";
inline constexpr std::string_view kTimeDb = "_trlmdb_time";
inline constexpr std::string_view kRecentDb = "_trlmdb_recent";
// Node word ("node", 4 bytes big-endian) and clock high-water mark ("clock",
// 8 bytes big-endian seconds<<32|fraction) of this environment.
inline constexpr std::string_view kMetaDb = "_trlmdb_meta";
inline constexpr std::string_view kMetaNodeKey = "node";
inline constexpr std::string_view kMetaClockKey = "clock";
inline constexpr int kReservedDbCount = 3;

// LSB of the node word: what the timestamp says about the key.
inline constexpr uint32_t kOpDelete = 0x00;
inline constexpr uint32_t kOpPut = 0x01;

// An extended timestamp. `time` is seconds<<32 | fraction (units of 2^-32 s),
// so comparing `time` then `node` is the same as memcmp of the encoding.
struct Ts {
  uint64_t time = 0;
  uint32_t node = 0;

  uint32_t seconds() const { return static_cast<uint32_t>(time >> 32); }
  uint32_t fraction() const { return static_cast<uint32_t>(time); }
  bool is_put() const { return (node & 0xffu) == kOpPut; }
  bool is_delete() const { return (node & 0xffu) == kOpDelete; }
  auto operator<=>(const Ts &) const = default;
};

void encode_ts(const Ts &ts, unsigned char out[kTsSize]);
Ts decode_ts(const unsigned char in[kTsSize]);
// False when `bytes` is not 12 bytes long or its op byte is neither 0 nor 1.
bool parse_ts(std::string_view bytes, Ts *out);

// The database name of the main (unnamed) database in an xkey.
inline constexpr std::string_view kMainDbName = "";

// xkey = dbname || 0x00 || key. An empty key gives the database marker.
std::string make_xkey(std::string_view dbname, std::string_view key);
void append_xkey(std::string *out, std::string_view dbname, std::string_view key);
// Splits at the first 0x00; false when there is none.
bool split_xkey(std::string_view xkey, std::string_view *dbname, std::string_view *key);

bool is_reserved_name(std::string_view name);

// Big-endian helpers shared by the meta database and the tools.
void put_be32(unsigned char *p, uint32_t v);
void put_be64(unsigned char *p, uint64_t v);
uint32_t get_be32(const unsigned char *p);
uint64_t get_be64(const unsigned char *p);

// Human-readable "seconds.fraction/node-op" for tools and logs.
std::string format_ts(const Ts &ts);

}  // namespace trlmdb
