// Unit tests for meta.h: the reserved databases, node word, clock high-water
// mark and write_stamp, against a real LMDB environment (through the real
// function table of real_lmdb.h) in a temporary directory.
#include "meta.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <set>
#include <string>

#include "format.h"
#include "real_lmdb.h"

namespace trlmdb {
namespace {

using namespace std::string_literals;

std::string bytes(const MDB_val &v) {
  return std::string(static_cast<char *>(v.mv_data), v.mv_size);
}
MDB_val val(const std::string &s) { return MDB_val{s.size(), const_cast<char *>(s.data())}; }

class MetaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/trlmdb-meta-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    OpenEnv();
  }
  void TearDown() override {
    if (txn_) real().mdb_txn_abort(txn_);
    txn_ = nullptr;
    CloseEnv();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void OpenEnv() {
    ASSERT_EQ(real().mdb_env_create(&env_), 0);
    ASSERT_EQ(real().mdb_env_set_maxdbs(env_, 8), 0);
    ASSERT_EQ(real().mdb_env_open(env_, dir_.c_str(), 0, 0644), 0);
  }
  void CloseEnv() {
    if (env_) real().mdb_env_close(env_);
    env_ = nullptr;
  }
  MDB_txn *Begin(unsigned flags = 0) {
    MDB_txn *t = nullptr;
    EXPECT_EQ(real().mdb_txn_begin(env_, nullptr, flags, &t), 0);
    return t;
  }
  void Commit(MDB_txn *t) { ASSERT_EQ(real().mdb_txn_commit(t), 0); }
  // Raw bytes stored under key in the named database, "" + rc on absence.
  int RawGet(MDB_txn *t, const char *db, const std::string &key, std::string *out) {
    MDB_dbi dbi;
    int rc = real().mdb_dbi_open(t, db, 0, &dbi);
    if (rc) return rc;
    MDB_val k = val(key), v;
    rc = real().mdb_get(t, dbi, &k, &v);
    if (rc == 0) *out = bytes(v);
    return rc;
  }

  std::string dir_;
  MDB_env *env_ = nullptr;
  MDB_txn *txn_ = nullptr;
};

TEST_F(MetaTest, OpenReservedWithoutCreateOnFreshEnvIsNotFound) {
  txn_ = Begin();
  ReservedDbis d;
  EXPECT_EQ(open_reserved(txn_, false, &d), MDB_NOTFOUND);
  real().mdb_txn_abort(txn_);
  txn_ = Begin(MDB_RDONLY);
  EXPECT_EQ(open_reserved(txn_, false, &d), MDB_NOTFOUND);
}

TEST_F(MetaTest, OpenReservedCreatesThreeDistinctDatabases) {
  txn_ = Begin();
  ReservedDbis d;
  ASSERT_EQ(open_reserved(txn_, true, &d), 0);
  std::set<MDB_dbi> s = {d.time, d.recent, d.meta};
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.count(0), 0u) << "a reserved database must not be the main database";
  Commit(txn_);
  txn_ = nullptr;

  // They are plain named databases (no DUPSORT etc.), listed in the main DB.
  txn_ = Begin(MDB_RDONLY);
  ReservedDbis d2;
  ASSERT_EQ(open_reserved(txn_, false, &d2), 0);
  unsigned flags = 99;
  ASSERT_EQ(real().mdb_dbi_flags(txn_, d2.time, &flags), 0);
  EXPECT_EQ(flags, 0u);
  MDB_dbi main;
  ASSERT_EQ(real().mdb_dbi_open(txn_, nullptr, 0, &main), 0);
  for (auto name : {"_trlmdb_time"s, "_trlmdb_recent"s, "_trlmdb_meta"s}) {
    MDB_val k = val(name), v;
    EXPECT_EQ(real().mdb_get(txn_, main, &k, &v), 0) << name;
  }
}

TEST_F(MetaTest, OpenReservedSurvivesReopen) {
  txn_ = Begin();
  ReservedDbis d;
  ASSERT_EQ(open_reserved(txn_, true, &d), 0);
  Commit(txn_);
  txn_ = nullptr;
  CloseEnv();
  OpenEnv();
  txn_ = Begin(MDB_RDONLY);
  ReservedDbis d2;
  EXPECT_EQ(open_reserved(txn_, false, &d2), 0);
}

TEST_F(MetaTest, NodeAbsentOnFreshEnv) {
  txn_ = Begin();
  ReservedDbis d;
  ASSERT_EQ(open_reserved(txn_, true, &d), 0);
  uint32_t node = 0xdeadbeef;
  EXPECT_EQ(meta_get_node(txn_, d.meta, &node), MDB_NOTFOUND);
}

TEST_F(MetaTest, NodeCreatedRandomWithLsbZeroAndStable) {
  txn_ = Begin();
  ReservedDbis d;
  ASSERT_EQ(open_reserved(txn_, true, &d), 0);
  uint32_t node = 0;
  ASSERT_EQ(meta_init_node(txn_, d.meta, 0, &node), 0);
  EXPECT_EQ(node & 0xffu, 0u) << std::hex << node;
  EXPECT_NE(node >> 8, 0u) << "upper 24 bits must tell nodes apart";
  uint32_t again = 0;
  ASSERT_EQ(meta_init_node(txn_, d.meta, 0, &again), 0);
  EXPECT_EQ(again, node);
  ASSERT_EQ(meta_init_node(txn_, d.meta, 0x11223300u, &again), 0);
  EXPECT_EQ(again, node) << "an existing node word must never be replaced";
  uint32_t got = 0;
  ASSERT_EQ(meta_get_node(txn_, d.meta, &got), 0);
  EXPECT_EQ(got, node);
  // Stored as 4 bytes big-endian under "node".
  std::string raw;
  ASSERT_EQ(RawGet(txn_, "_trlmdb_meta", "node", &raw), 0);
  ASSERT_EQ(raw.size(), 4u);
  EXPECT_EQ(get_be32(reinterpret_cast<const unsigned char *>(raw.data())), node);
  Commit(txn_);
  txn_ = nullptr;

  // Stable across a restart.
  CloseEnv();
  OpenEnv();
  txn_ = Begin();
  ASSERT_EQ(open_reserved(txn_, false, &d), 0);
  ASSERT_EQ(meta_init_node(txn_, d.meta, 0, &again), 0);
  EXPECT_EQ(again, node);
}

TEST_F(MetaTest, NodeCreatedFromPreferredWithLsbCleared) {
  txn_ = Begin();
  ReservedDbis d;
  ASSERT_EQ(open_reserved(txn_, true, &d), 0);
  uint32_t node = 0;
  ASSERT_EQ(meta_init_node(txn_, d.meta, 0x12345678u, &node), 0);
  EXPECT_EQ(node, 0x12345600u);
  ASSERT_EQ(meta_get_node(txn_, d.meta, &node), 0);
  EXPECT_EQ(node, 0x12345600u);
}

TEST_F(MetaTest, NodeCreationGoesWithAbortedTxn) {
  txn_ = Begin();
  ReservedDbis d;
  ASSERT_EQ(open_reserved(txn_, true, &d), 0);
  Commit(txn_);
  txn_ = Begin();
  ASSERT_EQ(open_reserved(txn_, false, &d), 0);
  uint32_t node;
  ASSERT_EQ(meta_init_node(txn_, d.meta, 0x0a0b0c00u, &node), 0);
  real().mdb_txn_abort(txn_);
  txn_ = Begin();
  ASSERT_EQ(open_reserved(txn_, false, &d), 0);
  EXPECT_EQ(meta_get_node(txn_, d.meta, &node), MDB_NOTFOUND);
}

TEST_F(MetaTest, CorruptNodeIsReported) {
  txn_ = Begin();
  ReservedDbis d;
  ASSERT_EQ(open_reserved(txn_, true, &d), 0);
  std::string k = "node", v = "abc";
  MDB_val kv = val(k), vv = val(v);
  ASSERT_EQ(real().mdb_put(txn_, d.meta, &kv, &vv, 0), 0);
  uint32_t node;
  EXPECT_EQ(meta_get_node(txn_, d.meta, &node), MDB_CORRUPTED);
  EXPECT_EQ(meta_init_node(txn_, d.meta, 0, &node), MDB_CORRUPTED);
}

TEST_F(MetaTest, NodeWordStoredWithLsbSetIsMasked) {
  // A node word written by some other node with a stray LSB: read with LSB 0.
  txn_ = Begin();
  ReservedDbis d;
  ASSERT_EQ(open_reserved(txn_, true, &d), 0);
  std::string k = "node", v = "\x12\x34\x56\x01"s;
  MDB_val kv = val(k), vv = val(v);
  ASSERT_EQ(real().mdb_put(txn_, d.meta, &kv, &vv, 0), 0);
  uint32_t node;
  ASSERT_EQ(meta_get_node(txn_, d.meta, &node), 0);
  EXPECT_EQ(node, 0x12345600u);
}

TEST_F(MetaTest, RandomNodeWords) {
  std::set<uint32_t> seen;
  for (int i = 0; i < 200; ++i) {
    uint32_t n = random_node_word();
    EXPECT_EQ(n & 0xffu, 0u);
    EXPECT_NE(n, 0u);
    seen.insert(n);
  }
  EXPECT_GT(seen.size(), 190u) << "node words should be random";
}

TEST_F(MetaTest, ClockAbsentIsZero) {
  txn_ = Begin();
  ReservedDbis d;
  ASSERT_EQ(open_reserved(txn_, true, &d), 0);
  uint64_t t = 77;
  EXPECT_EQ(meta_get_clock(txn_, d.meta, &t), 0);
  EXPECT_EQ(t, 0u);
}

TEST_F(MetaTest, ClockPutGetRoundTripBigEndian) {
  txn_ = Begin();
  ReservedDbis d;
  ASSERT_EQ(open_reserved(txn_, true, &d), 0);
  const uint64_t t = 0x0102030405060708ull;
  ASSERT_EQ(meta_put_clock(txn_, d.meta, t), 0);
  uint64_t got = 0;
  ASSERT_EQ(meta_get_clock(txn_, d.meta, &got), 0);
  EXPECT_EQ(got, t);
  std::string raw;
  ASSERT_EQ(RawGet(txn_, "_trlmdb_meta", "clock", &raw), 0);
  EXPECT_EQ(raw, "\x01\x02\x03\x04\x05\x06\x07\x08"s);
  ASSERT_EQ(meta_put_clock(txn_, d.meta, ~0ull), 0);
  ASSERT_EQ(meta_get_clock(txn_, d.meta, &got), 0);
  EXPECT_EQ(got, ~0ull);
  Commit(txn_);
  txn_ = nullptr;
  CloseEnv();
  OpenEnv();
  txn_ = Begin(MDB_RDONLY);
  ASSERT_EQ(open_reserved(txn_, false, &d), 0);
  ASSERT_EQ(meta_get_clock(txn_, d.meta, &got), 0);
  EXPECT_EQ(got, ~0ull);
}

TEST_F(MetaTest, CorruptClockIsReported) {
  txn_ = Begin();
  ReservedDbis d;
  ASSERT_EQ(open_reserved(txn_, true, &d), 0);
  std::string k = "clock", v = "1234567";
  MDB_val kv = val(k), vv = val(v);
  ASSERT_EQ(real().mdb_put(txn_, d.meta, &kv, &vv, 0), 0);
  uint64_t t;
  EXPECT_EQ(meta_get_clock(txn_, d.meta, &t), MDB_CORRUPTED);
}

TEST_F(MetaTest, WriteStampWritesBothDatabasesByteExact) {
  txn_ = Begin();
  ReservedDbis d;
  ASSERT_EQ(open_reserved(txn_, true, &d), 0);
  const std::string xkey = make_xkey("db", "k\0ey"s);
  const Ts ts{0x0102030405060708ull, 0xaabbcc01u};
  ASSERT_EQ(write_stamp(txn_, d, xkey, ts), 0);
  const std::string want = "\x01\x02\x03\x04\x05\x06\x07\x08\xaa\xbb\xcc\x01"s;
  std::string raw;
  ASSERT_EQ(RawGet(txn_, "_trlmdb_time", xkey, &raw), 0);
  EXPECT_EQ(raw, want);
  ASSERT_EQ(RawGet(txn_, "_trlmdb_recent", xkey, &raw), 0);
  EXPECT_EQ(raw, want);
  // Overwrite with a tombstone: one entry per xkey, replaced.
  const Ts del{0x0102030405060709ull, 0xaabbcc00u};
  ASSERT_EQ(write_stamp(txn_, d, xkey, del), 0);
  ASSERT_EQ(RawGet(txn_, "_trlmdb_time", xkey, &raw), 0);
  EXPECT_EQ(raw, "\x01\x02\x03\x04\x05\x06\x07\x09\xaa\xbb\xcc\x00"s);
  ASSERT_EQ(RawGet(txn_, "_trlmdb_recent", xkey, &raw), 0);
  EXPECT_EQ(raw, "\x01\x02\x03\x04\x05\x06\x07\x09\xaa\xbb\xcc\x00"s);
  MDB_stat st;
  ASSERT_EQ(real().mdb_stat(txn_, d.time, &st), 0);
  EXPECT_EQ(st.ms_entries, 1u);
  ASSERT_EQ(real().mdb_stat(txn_, d.recent, &st), 0);
  EXPECT_EQ(st.ms_entries, 1u);
  ASSERT_EQ(real().mdb_stat(txn_, d.meta, &st), 0);
  EXPECT_EQ(st.ms_entries, 0u) << "write_stamp must not touch the meta database";
}

TEST_F(MetaTest, WriteStampMarkerAndMainDbKeys) {
  txn_ = Begin();
  ReservedDbis d;
  ASSERT_EQ(open_reserved(txn_, true, &d), 0);
  ASSERT_EQ(write_stamp(txn_, d, make_xkey("db", ""), Ts{5, 0x101}), 0);
  ASSERT_EQ(write_stamp(txn_, d, make_xkey("", "k"), Ts{6, 0x101}), 0);
  std::string raw;
  ASSERT_EQ(RawGet(txn_, "_trlmdb_time", "db\0"s, &raw), 0);
  EXPECT_EQ(raw.size(), kTsSize);
  ASSERT_EQ(RawGet(txn_, "_trlmdb_time", "\0k"s, &raw), 0);
  Ts got;
  ASSERT_TRUE(parse_ts(raw, &got));
  EXPECT_EQ(got, (Ts{6, 0x101}));
}

TEST_F(MetaTest, WriteStampInReadOnlyTxnFails) {
  txn_ = Begin();
  ReservedDbis d;
  ASSERT_EQ(open_reserved(txn_, true, &d), 0);
  Commit(txn_);
  txn_ = Begin(MDB_RDONLY);
  ASSERT_EQ(open_reserved(txn_, false, &d), 0);
  EXPECT_EQ(write_stamp(txn_, d, make_xkey("", "k"), Ts{1, 1}), EACCES);
}

TEST_F(MetaTest, WriteStampTooLongXkeyIsBadValsize) {
  txn_ = Begin();
  ReservedDbis d;
  ASSERT_EQ(open_reserved(txn_, true, &d), 0);
  const int maxkey = real().mdb_env_get_maxkeysize(env_);
  ASSERT_EQ(maxkey, 511);
  EXPECT_EQ(write_stamp(txn_, d, make_xkey("", std::string(maxkey - 1, 'k')), Ts{1, 1}), 0);
  EXPECT_EQ(write_stamp(txn_, d, make_xkey("", std::string(maxkey, 'k')), Ts{1, 1}),
            MDB_BAD_VALSIZE);
}

TEST(RealLmdb, TableIsCompleteAndPointsAtTheSystemLibrary) {
  const RealLmdb &r = real();
  EXPECT_NE(r.mdb_env_create, nullptr);
  EXPECT_NE(r.mdb_cursor_put, nullptr);
  EXPECT_NE(r.mdb_mid2l_append, nullptr);
  int maj = 0, min = 0, pat = 0;
  const char *v = r.mdb_version(&maj, &min, &pat);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(maj, MDB_VERSION_MAJOR);
  EXPECT_EQ(min, MDB_VERSION_MINOR);
  EXPECT_NE(std::string(real_lmdb_path()).find("liblmdb"), std::string::npos) << real_lmdb_path();
}

}  // namespace
}  // namespace trlmdb
