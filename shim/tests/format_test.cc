// Unit tests for format.h: the normative on-disk format of DESIGN.md section 1.
#include "format.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace trlmdb {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

std::vector<unsigned char> enc(const Ts &ts) {
  std::vector<unsigned char> out(kTsSize);
  encode_ts(ts, out.data());
  return out;
}

TEST(FormatTs, SizeAndConstants) {
  EXPECT_EQ(kTsSize, 12u);
  EXPECT_EQ(kOpDelete, 0x00u);
  EXPECT_EQ(kOpPut, 0x01u);
  EXPECT_EQ(kTimeDb, "_trlmdb_time");
  EXPECT_EQ(kRecentDb, "_trlmdb_recent");
  EXPECT_EQ(kMetaDb, "_trlmdb_meta");
  EXPECT_EQ(kMetaNodeKey, "node");
  EXPECT_EQ(kMetaClockKey, "clock");
  EXPECT_EQ(kReservedDbCount, 3);
  EXPECT_EQ(kMainDbName, "");
}

TEST(FormatTs, EncodeIsBigEndianByteExact) {
  Ts ts{0x0102030405060708ull, 0x0a0b0c01u};
  std::vector<unsigned char> want = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
                                     0x07, 0x08, 0x0a, 0x0b, 0x0c, 0x01};
  EXPECT_EQ(enc(ts), want);
  EXPECT_EQ(ts.seconds(), 0x01020304u);
  EXPECT_EQ(ts.fraction(), 0x05060708u);
  EXPECT_TRUE(ts.is_put());
  EXPECT_FALSE(ts.is_delete());
}

TEST(FormatTs, EncodeExtremes) {
  EXPECT_EQ(enc(Ts{0, 0}), std::vector<unsigned char>(12, 0x00));
  EXPECT_EQ(enc(Ts{~0ull, ~0u}), std::vector<unsigned char>(12, 0xff));
  // Only the seconds' top bit set: must be the very first byte.
  auto e = enc(Ts{1ull << 63, 0});
  EXPECT_EQ(e[0], 0x80);
  for (size_t i = 1; i < 12; ++i) EXPECT_EQ(e[i], 0) << i;
  // Only the node word's LSB set: must be the very last byte.
  e = enc(Ts{0, 1});
  EXPECT_EQ(e[11], 0x01);
  for (size_t i = 0; i < 11; ++i) EXPECT_EQ(e[i], 0) << i;
}

TEST(FormatTs, DecodeInvertsEncode) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 10000; ++i) {
    Ts ts{rng(), static_cast<uint32_t>(rng())};
    auto e = enc(ts);
    EXPECT_EQ(decode_ts(e.data()), ts);
  }
  const unsigned char raw[12] = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x00,
                                 0x00, 0x01, 0x12, 0x34, 0x56, 0x00};
  Ts d = decode_ts(raw);
  EXPECT_EQ(d.seconds(), 0xdeadbeefu);
  EXPECT_EQ(d.fraction(), 1u);
  EXPECT_EQ(d.node, 0x12345600u);
  EXPECT_TRUE(d.is_delete());
}

int sign(int x) { return (x > 0) - (x < 0); }

TEST(FormatTs, MemcmpOrderEqualsTsOrder) {
  std::mt19937_64 rng(7);
  std::vector<Ts> v;
  // Edge values that differ in one field only, and top-bit cases that a
  // signed comparison would get wrong.
  for (uint64_t t : {0ull, 1ull, 0xffffffffull, 0x100000000ull, 0x7fffffffffffffffull,
                     0x8000000000000000ull, ~0ull})
    for (uint32_t n : {0u, 1u, 0xffu, 0x100u, 0x7fffffffu, 0x80000000u, ~0u}) v.push_back(Ts{t, n});
  for (int i = 0; i < 2000; ++i) {
    // Narrow ranges so that equal seconds / equal time happen often.
    v.push_back(Ts{(rng() % 4) << 32 | (rng() % 4), static_cast<uint32_t>(rng() % 4)});
    v.push_back(Ts{rng(), static_cast<uint32_t>(rng())});
  }
  for (size_t i = 0; i + 1 < v.size(); i += 1) {
    const Ts &a = v[i], &b = v[(i * 7919 + 13) % v.size()];
    auto ea = enc(a), eb = enc(b);
    int m = sign(std::memcmp(ea.data(), eb.data(), kTsSize));
    int c = a < b ? -1 : (b < a ? 1 : 0);
    ASSERT_EQ(m, c) << format_ts(a) << " vs " << format_ts(b);
    ASSERT_EQ(m == 0, a == b);
  }
}

TEST(FormatTs, TsOrderIsTimeThenNode) {
  EXPECT_LT((Ts{1, 0xffffff01u}), (Ts{2, 0}));
  EXPECT_LT((Ts{5, 0x100u}), (Ts{5, 0x101u}));
  EXPECT_LT((Ts{5, 0x0101u}), (Ts{5, 0x0200u}));
  EXPECT_EQ((Ts{5, 7}), (Ts{5, 7}));
}

TEST(FormatTs, ParseAcceptsPutAndDelete) {
  Ts want{0x0102030405060708ull, 0xaabbcc00u};
  auto e = enc(want);
  Ts got{};
  ASSERT_TRUE(parse_ts(std::string_view(reinterpret_cast<char *>(e.data()), e.size()), &got));
  EXPECT_EQ(got, want);
  EXPECT_TRUE(got.is_delete());
  want.node |= 1;
  e = enc(want);
  ASSERT_TRUE(parse_ts(std::string_view(reinterpret_cast<char *>(e.data()), e.size()), &got));
  EXPECT_EQ(got, want);
  EXPECT_TRUE(got.is_put());
}

TEST(FormatTs, ParseRejectsBadLength) {
  const std::string twelve(12, '\0');
  Ts sentinel{123, 0x4501};
  for (size_t len : {0u, 1u, 8u, 11u, 13u, 16u, 24u}) {
    std::string s(len, '\0');
    Ts out = sentinel;
    EXPECT_FALSE(parse_ts(s, &out)) << "len " << len;
    EXPECT_EQ(out, sentinel) << "output touched on failure, len " << len;
  }
  Ts out;
  EXPECT_TRUE(parse_ts(twelve, &out));
}

TEST(FormatTs, ParseRejectsBadOpByte) {
  for (int op = 0; op < 256; ++op) {
    std::string s(11, '\x11');
    s.push_back(static_cast<char>(op));
    Ts out{99, 0x9901};
    bool ok = parse_ts(s, &out);
    if (op == 0 || op == 1) {
      EXPECT_TRUE(ok) << op;
      EXPECT_EQ(out.node & 0xffu, static_cast<uint32_t>(op));
    } else {
      EXPECT_FALSE(ok) << op;
      EXPECT_EQ(out, (Ts{99, 0x9901})) << "output touched on failure, op " << op;
    }
  }
}

TEST(FormatXkey, NamedDb) {
  EXPECT_EQ(make_xkey("db", "key"), "db\0key"s);
  EXPECT_EQ(make_xkey("db", "key").size(), 6u);
}

TEST(FormatXkey, MainDbHasEmptyName) {
  std::string x = make_xkey(kMainDbName, "key");
  EXPECT_EQ(x, "\0key"s);
  EXPECT_EQ(x.size(), 4u);
  std::string_view db, key;
  ASSERT_TRUE(split_xkey(x, &db, &key));
  EXPECT_EQ(db, "");
  EXPECT_EQ(key, "key");
}

TEST(FormatXkey, EmptyKeyIsDatabaseMarker) {
  EXPECT_EQ(make_xkey("db", ""), "db\0"s);
  EXPECT_EQ(make_xkey("db", "").size(), 3u);
  std::string_view db, key;
  const std::string marker = make_xkey("db", "");
  ASSERT_TRUE(split_xkey(marker, &db, &key));
  EXPECT_EQ(db, "db");
  EXPECT_TRUE(key.empty());
  // The main database's marker is a single NUL.
  EXPECT_EQ(make_xkey("", ""), "\0"s);
  ASSERT_TRUE(split_xkey("\0"sv, &db, &key));
  EXPECT_TRUE(db.empty());
  EXPECT_TRUE(key.empty());
}

TEST(FormatXkey, KeysContainingNulBytes) {
  const std::string k = "a\0b\0\0c"s;
  std::string x = make_xkey("db", k);
  EXPECT_EQ(x, "db\0a\0b\0\0c"s);
  std::string_view db, key;
  ASSERT_TRUE(split_xkey(x, &db, &key));
  EXPECT_EQ(db, "db");  // split at the FIRST NUL: names cannot hold NUL
  EXPECT_EQ(key, k);
  // A key that is only NULs, in the main database.
  const std::string z(3, '\0');
  x = make_xkey("", z);
  EXPECT_EQ(x, std::string(4, '\0'));
  ASSERT_TRUE(split_xkey(x, &db, &key));
  EXPECT_EQ(db, "");
  EXPECT_EQ(key, z);
  // Binary key bytes (e.g. INTEGERKEY) survive unchanged.
  std::string bin;
  for (int i = 0; i < 256; ++i) bin.push_back(static_cast<char>(i));
  const std::string xbin = make_xkey("ints", bin);  // the views point into it
  ASSERT_TRUE(split_xkey(xbin, &db, &key));
  EXPECT_EQ(db, "ints");
  EXPECT_EQ(key, bin);
}

TEST(FormatXkey, SplitWithoutNulFails) {
  std::string_view db = "untouched", key = "untouched";
  EXPECT_FALSE(split_xkey("nonul", &db, &key));
  EXPECT_FALSE(split_xkey("", &db, &key));
}

TEST(FormatXkey, AppendXkeyAppends) {
  std::string out = "prefix";
  append_xkey(&out, "db", "k");
  EXPECT_EQ(out, "prefixdb\0k"s);
  append_xkey(&out, "", "");
  EXPECT_EQ(out, "prefixdb\0k\0"s);
}

TEST(FormatXkey, XkeyOrderGroupsByDatabase) {
  // All keys of one database sort together, the marker first.
  std::vector<std::string> v = {make_xkey("db", "\xff"), make_xkey("db", ""),
                                make_xkey("db", "a"),    make_xkey("dbx", ""),
                                make_xkey("", "zzz"),    make_xkey("db", "\x00"s)};
  std::sort(v.begin(), v.end());
  std::vector<std::string> want = {make_xkey("", "zzz"),     make_xkey("db", ""),
                                   make_xkey("db", "\x00"s), make_xkey("db", "a"),
                                   make_xkey("db", "\xff"),  make_xkey("dbx", "")};
  EXPECT_EQ(v, want);
}

TEST(FormatReserved, IsReservedName) {
  EXPECT_TRUE(is_reserved_name("_trlmdb_time"));
  EXPECT_TRUE(is_reserved_name("_trlmdb_recent"));
  EXPECT_TRUE(is_reserved_name("_trlmdb_meta"));
  EXPECT_TRUE(is_reserved_name("_trlmdb_"));
  EXPECT_TRUE(is_reserved_name("_trlmdb_anything else"));
  EXPECT_TRUE(is_reserved_name(kTimeDb));
  EXPECT_TRUE(is_reserved_name(kRecentDb));
  EXPECT_TRUE(is_reserved_name(kMetaDb));
  EXPECT_FALSE(is_reserved_name(""));
  EXPECT_FALSE(is_reserved_name("_trlmdb"));
  EXPECT_FALSE(is_reserved_name("_TRLMDB_time"));
  EXPECT_FALSE(is_reserved_name("trlmdb_time"));
  EXPECT_FALSE(is_reserved_name("x_trlmdb_time"));
  EXPECT_FALSE(is_reserved_name(" _trlmdb_time"));
  EXPECT_FALSE(is_reserved_name("_trlmdb-time"));
}

TEST(FormatBigEndian, Helpers) {
  unsigned char b[8];
  put_be32(b, 0x01020304u);
  EXPECT_EQ(b[0], 1);
  EXPECT_EQ(b[3], 4);
  EXPECT_EQ(get_be32(b), 0x01020304u);
  put_be64(b, 0x0102030405060708ull);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(b[i], i + 1);
  EXPECT_EQ(get_be64(b), 0x0102030405060708ull);
  put_be32(b, 0xfffffffeu);
  EXPECT_EQ(get_be32(b), 0xfffffffeu);
}

TEST(FormatTs, FormatTsIsReadable) {
  std::string put = format_ts(Ts{(uint64_t{1700000000} << 32) | 0x80000000u, 0xabcdef01u});
  EXPECT_NE(put.find("1700000000"), std::string::npos) << put;
  EXPECT_NE(put.find("put"), std::string::npos) << put;
  std::string del = format_ts(Ts{uint64_t{5} << 32, 0xabcdef00u});
  EXPECT_NE(del.find("del"), std::string::npos) << del;
}

}  // namespace
}  // namespace trlmdb
