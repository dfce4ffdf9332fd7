// The replicator's store on real environments: A is written through the
// shim's core (so every change is stamped), B receives A's changes.
#include "store.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "env_state.h"
#include "format.h"
#include "meta.h"
#include "ops.h"
#include "real_lmdb.h"

namespace trlmdb::repl {
namespace {

constexpr uint32_t kRemote = 0x5a5a5a00u;  // another node's word

MDB_val val(std::string_view s) { return MDB_val{s.size(), const_cast<char *>(s.data())}; }
std::string str(const MDB_val &v) { return {static_cast<const char *>(v.mv_data), v.mv_size}; }

std::string xk(std::string_view db, std::string_view key) { return make_xkey(db, key); }

Change change(std::string_view db, std::string_view key, Ts ts, uint32_t flags = 0,
              std::vector<std::string> values = {}) {
  Change c;
  c.xkey = xk(db, key);
  c.ts = ts;
  c.db_flags = flags;
  c.values = std::move(values);
  return c;
}

Ts put_ts(uint64_t time, uint32_t node = kRemote) { return Ts{time, node | kOpPut}; }
Ts del_ts(uint64_t time, uint32_t node = kRemote) { return Ts{time, node | kOpDelete}; }

std::string u32key(uint32_t v) { return std::string(reinterpret_cast<const char *>(&v), 4); }

struct DbContent {
  unsigned flags = 0;
  std::vector<std::pair<std::string, std::string>> kv;  // every duplicate
  bool operator==(const DbContent &) const = default;
};
using Dump = std::map<std::string, DbContent>;

constexpr unsigned kOrderFlags =
    MDB_REVERSEKEY | MDB_DUPSORT | MDB_INTEGERKEY | MDB_DUPFIXED | MDB_INTEGERDUP | MDB_REVERSEDUP;

std::string describe(const Dump &d) {
  std::string s;
  for (const auto &[name, db] : d) {
    s += "[" + name + " flags " + std::to_string(db.flags) + "]";
    for (const auto &[k, v] : db.kv) s += " " + k + "=" + v;
    s += "\n";
  }
  return s;
}

class TestEnv {
 public:
  explicit TestEnv(std::size_t mapsize = 64u << 20) {
    char tmpl[] = "/tmp/repl_store_XXXXXX";
    const char *d = mkdtemp(tmpl);
    if (!d) std::abort();
    dir_ = d;
    if (ops::env_create(&env_) != 0 || ops::env_set_maxdbs(env_, 16) != 0 ||
        real().mdb_env_set_mapsize(env_, mapsize) != 0 ||
        ops::env_open(env_, dir_.c_str(), 0, 0664) != 0)
      std::abort();
    st_ = env_state(env_);
    store_ = std::make_unique<Store>(st_);
  }
  ~TestEnv() {
    store_.reset();
    ops::env_close(env_);
    std::filesystem::remove_all(dir_);
  }

  MDB_env *env() const { return env_; }
  EnvState *st() const { return st_; }
  Store &store() { return *store_; }
  const std::string &dir() const { return dir_; }

  // One write transaction through the shim, which stamps every change.
  void write(const std::function<void(MDB_txn *)> &body) {
    MDB_txn *txn = nullptr;
    ASSERT_EQ(0, ops::txn_begin(env_, nullptr, 0, &txn));
    body(txn);
    ASSERT_EQ(0, ops::txn_commit(txn));
  }
  static MDB_dbi open(MDB_txn *txn, const char *name, unsigned flags = 0) {
    MDB_dbi dbi = 0;
    EXPECT_EQ(0, ops::dbi_open(txn, name, flags | MDB_CREATE, &dbi)) << name;
    return dbi;
  }
  static void put(MDB_txn *txn, MDB_dbi dbi, std::string_view k, std::string_view v) {
    MDB_val kv = val(k), vv = val(v);
    EXPECT_EQ(0, ops::put(txn, dbi, &kv, &vv, 0));
  }
  static void del(MDB_txn *txn, MDB_dbi dbi, std::string_view k,
                  std::optional<std::string_view> v = std::nullopt) {
    MDB_val kv = val(k), vv = val(v.value_or(""));
    EXPECT_EQ(0, ops::del(txn, dbi, &kv, v ? &vv : nullptr));
  }
  void put1(const char *db, std::string_view k, std::string_view v, unsigned flags = 0) {
    write([&](MDB_txn *t) { put(t, db ? open(t, db, flags) : kMainDbi, k, v); });
  }

  // User data as the real LMDB sees it: every database but the reserved
  // ones, with its order flags and every key and duplicate.
  Dump dump() {
    Dump out;
    MDB_txn *txn = nullptr;
    EXPECT_EQ(0, real().mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn));
    if (!txn) return out;
    std::vector<std::pair<std::string, MDB_dbi>> named;
    MDB_cursor *cur = nullptr;
    EXPECT_EQ(0, real().mdb_cursor_open(txn, kMainDbi, &cur));
    MDB_val k, v;
    DbContent &main = out[""];
    unsigned f = 0;
    real().mdb_dbi_flags(txn, kMainDbi, &f);
    main.flags = f & kOrderFlags;
    for (int rc = real().mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = real().mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      const std::string key = str(k);
      if (is_reserved_name(key)) continue;
      MDB_dbi dbi = 0;
      int orc = MDB_INCOMPATIBLE;
      if (key.find('\0') == std::string::npos) {
        std::lock_guard lock(g_dbi_open_mu);
        orc = real().mdb_dbi_open(txn, key.c_str(), 0, &dbi);
      }
      if (orc == 0)
        named.emplace_back(key, dbi);
      else
        main.kv.emplace_back(key, str(v));
    }
    real().mdb_cursor_close(cur);
    for (const auto &[name, dbi] : named) {
      DbContent &db = out[name];
      real().mdb_dbi_flags(txn, dbi, &f);
      db.flags = f & kOrderFlags;
      EXPECT_EQ(0, real().mdb_cursor_open(txn, dbi, &cur));
      for (int rc = real().mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
           rc = real().mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        db.kv.emplace_back(str(k), str(v));
      real().mdb_cursor_close(cur);
    }
    EXPECT_EQ(0, real().mdb_txn_commit(txn));
    return out;
  }

  std::map<std::string, Ts> stamps(bool recent) {
    std::map<std::string, Ts> out;
    MDB_txn *txn = nullptr;
    EXPECT_EQ(0, real().mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn));
    MDB_cursor *cur = nullptr;
    EXPECT_EQ(
        0, real().mdb_cursor_open(txn, recent ? st_->reserved.recent : st_->reserved.time, &cur));
    MDB_val k, v;
    for (int rc = real().mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = real().mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      Ts ts;
      EXPECT_TRUE(parse_ts(str(v), &ts));
      out[str(k)] = ts;
    }
    real().mdb_cursor_close(cur);
    real().mdb_txn_abort(txn);
    return out;
  }
  std::map<std::string, Ts> time() { return stamps(false); }
  std::map<std::string, Ts> recent() { return stamps(true); }
  std::optional<Ts> stamp(std::string_view xkey) {
    auto t = time();
    auto it = t.find(std::string(xkey));
    if (it == t.end()) return std::nullopt;
    return it->second;
  }

  uint64_t persisted_clock() {
    MDB_txn *txn = nullptr;
    EXPECT_EQ(0, real().mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn));
    uint64_t t = 0;
    EXPECT_EQ(0, meta_get_clock(txn, st_->reserved.meta, &t));
    real().mdb_txn_abort(txn);
    return t;
  }

  // Runs `trlmdb verify` on this environment; "" when it holds.
  std::string verify() {
    const std::string cmd = std::string(TRLMDB_CLI_PATH) + " verify '" + dir_ + "' 2>&1";
    FILE *p = popen(cmd.c_str(), "r");
    if (!p) return "cannot run " + cmd;
    std::string output;
    char buf[512];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) output.append(buf, n);
    const int status = pclose(p);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
    return "trlmdb verify failed (status " + std::to_string(status) + "):\n" + output;
  }

  // Everything in _trlmdb_recent, read in one call.
  std::vector<Change> read_all() {
    ScanPos pos;
    std::vector<Change> out;
    uint64_t txnid = 0;
    EXPECT_EQ(0, store().read_recent(&pos, 1u << 30, std::size_t{1} << 40, nullptr, &out, &txnid));
    EXPECT_TRUE(pos.finished);
    return out;
  }

  // The same in calls of at most `max_changes` changes and `max_bytes`
  // bytes, each of which but the last must give `per_call` changes.
  std::vector<Change> read_in_calls(std::size_t max_changes, std::size_t max_bytes,
                                    std::size_t per_call) {
    ScanPos pos;
    std::vector<Change> got;
    for (int calls = 0; !pos.finished && calls < 100; ++calls) {
      std::vector<Change> out;
      uint64_t txnid = 0;
      const int rc = store().read_recent(&pos, max_changes, max_bytes, nullptr, &out, &txnid);
      EXPECT_EQ(0, rc);
      if (rc) break;
      EXPECT_LE(out.size(), per_call);
      if (!pos.finished) {
        EXPECT_EQ(per_call, out.size());
      }
      got.insert(got.end(), out.begin(), out.end());
    }
    return got;
  }

  ApplyStats apply(const std::vector<Change> &changes, int expect_rc = 0) {
    ApplyStats stats;
    EXPECT_EQ(expect_rc, store().apply(changes, &stats));
    return stats;
  }

 private:
  std::string dir_;
  MDB_env *env_ = nullptr;
  EnvState *st_ = nullptr;
  std::unique_ptr<Store> store_;
};

#define EXPECT_VERIFIED(e) EXPECT_EQ("", (e).verify())

// A mix of every kind of change: plain, DUPSORT and INTEGERKEY databases,
// deletes, a dropped database and a duplicate removed from a set.
void populate(TestEnv &a) {
  a.write([&](MDB_txn *t) {
    TestEnv::put(t, kMainDbi, "m1", "main-one");
    MDB_dbi plain = TestEnv::open(t, "plain");
    TestEnv::put(t, plain, "a", "1");
    TestEnv::put(t, plain, "b", "2");
    TestEnv::put(t, plain, "c", "3");
    MDB_dbi dups = TestEnv::open(t, "dups", MDB_DUPSORT);
    for (const char *v : {"1", "2", "3"}) TestEnv::put(t, dups, "x", v);
    TestEnv::put(t, dups, "y", "9");
    MDB_dbi ints = TestEnv::open(t, "ints", MDB_INTEGERKEY);
    TestEnv::put(t, ints, u32key(1), "one");
    TestEnv::put(t, ints, u32key(2), "two");
    MDB_dbi gone = TestEnv::open(t, "gone");
    TestEnv::put(t, gone, "k", "v");
  });
  a.write([&](MDB_txn *t) {
    TestEnv::del(t, TestEnv::open(t, "plain"), "b");
    EXPECT_EQ(0, ops::drop(t, TestEnv::open(t, "gone"), 1));
    MDB_dbi dups = TestEnv::open(t, "dups", MDB_DUPSORT);
    TestEnv::del(t, dups, "x", "2");
    TestEnv::put(t, dups, "y", "8");
  });
}

const Change *find(const std::vector<Change> &cs, std::string_view xkey) {
  for (const Change &c : cs)
    if (c.xkey == xkey) return &c;
  return nullptr;
}

// A source node A holding every kind of change (populate).
class PopulatedStore : public ::testing::Test {
 protected:
  void SetUp() override { populate(a_); }
  TestEnv a_;
};

// A replica B on which the replicator has started: its reserved databases
// and node word exist before the first change arrives.
class ReadyStore : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(0, b_.store().ensure_ready(nullptr)); }
  TestEnv b_;
};

TEST(Store, EnsureReadyCreatesReservedDatabasesAndNodeWord) {
  TestEnv b;
  uint32_t node = 0;
  ASSERT_EQ(0, b.store().ensure_ready(&node));
  EXPECT_NE(0u, node);
  EXPECT_EQ(0u, node & 0xffu);
  EXPECT_EQ(b.st()->node, node);
  EXPECT_TRUE(b.st()->reserved_ready.load());
  EXPECT_TRUE(b.st()->reserved_committed.load());
  std::size_t n = 1;
  ASSERT_EQ(0, b.store().recent_count(&n));
  EXPECT_EQ(0u, n);
  uint32_t again = 0;
  ASSERT_EQ(0, b.store().ensure_ready(&again));
  EXPECT_EQ(node, again);
  EXPECT_VERIFIED(b);
}

TEST_F(PopulatedStore, ReadRecentGivesEveryChangeWithItsValues) {
  const std::vector<Change> cs = a_.read_all();
  const auto recent = a_.recent();
  ASSERT_EQ(recent.size(), cs.size());
  std::size_t n = 0;
  ASSERT_EQ(0, a_.store().recent_count(&n));
  EXPECT_EQ(recent.size(), n);
  // In xkey order, each with its stamp.
  std::size_t i = 0;
  for (const auto &[xkey, ts] : recent) {
    EXPECT_EQ(xkey, cs[i].xkey);
    EXPECT_EQ(ts, cs[i].ts) << xkey;
    ++i;
  }
  using V = std::vector<std::string>;
  const Change *c = find(cs, xk("", "m1"));
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->ts.is_put());
  EXPECT_EQ(V{"main-one"}, c->values);
  EXPECT_EQ(0u, c->db_flags);

  c = find(cs, xk("plain", ""));
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->ts.is_put());
  EXPECT_TRUE(c->values.empty());
  c = find(cs, xk("plain", "a"));
  ASSERT_TRUE(c);
  EXPECT_EQ(V{"1"}, c->values);
  c = find(cs, xk("plain", "b"));
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->ts.is_delete());
  EXPECT_TRUE(c->values.empty());

  c = find(cs, xk("dups", ""));
  ASSERT_TRUE(c);
  EXPECT_EQ(unsigned{MDB_DUPSORT}, c->db_flags);
  c = find(cs, xk("dups", "x"));
  ASSERT_TRUE(c);
  EXPECT_EQ((V{"1", "3"}), c->values);
  EXPECT_EQ(unsigned{MDB_DUPSORT}, c->db_flags);
  c = find(cs, xk("dups", "y"));
  ASSERT_TRUE(c);
  EXPECT_EQ((V{"8", "9"}), c->values);

  c = find(cs, xk("ints", ""));
  ASSERT_TRUE(c);
  EXPECT_EQ(unsigned{MDB_INTEGERKEY}, c->db_flags);
  c = find(cs, xk("ints", u32key(2)));
  ASSERT_TRUE(c);
  EXPECT_EQ(V{"two"}, c->values);
  EXPECT_EQ(unsigned{MDB_INTEGERKEY}, c->db_flags);

  c = find(cs, xk("gone", ""));
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->ts.is_delete());
  EXPECT_EQ(0u, c->db_flags);
  EXPECT_TRUE(c->values.empty());
  c = find(cs, xk("gone", "k"));
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->ts.is_delete());
  EXPECT_VERIFIED(a_);
}

TEST_F(PopulatedStore, ApplyMakesTheReplicaEqual) {
  TestEnv b;
  const std::vector<Change> cs = a_.read_all();
  ApplyStats stats = b.apply(cs);
  EXPECT_EQ(cs.size(), stats.applied);
  EXPECT_EQ(0u, stats.ignored);
  EXPECT_EQ(0u, stats.deferred);
  const Dump da = a_.dump(), db = b.dump();
  EXPECT_EQ(da, db) << "A:\n" << describe(da) << "B:\n" << describe(db);
  EXPECT_EQ(a_.time(), b.time());
  EXPECT_EQ(a_.time(), b.recent());
  EXPECT_EQ(0u, db.count("gone"));
  ASSERT_EQ(1u, db.count("ints"));
  EXPECT_EQ(unsigned{MDB_INTEGERKEY}, db.at("ints").flags);
  EXPECT_EQ(unsigned{MDB_DUPSORT}, db.at("dups").flags);
  EXPECT_VERIFIED(b);

  // Everything again: all equal, nothing written.
  stats = b.apply(cs);
  EXPECT_EQ(0u, stats.applied);
  EXPECT_EQ(cs.size(), stats.ignored);
  EXPECT_EQ(db, b.dump());
  EXPECT_EQ(a_.time(), b.time());

  // B's replica reads back as the same changes (what it forwards).
  EXPECT_EQ(cs, b.read_all());
}

TEST(Store, LastWriterWins) {
  TestEnv b;
  b.put1("plain", "a", "local");
  b.put1("plain", "z", "zz");
  const Ts local = *b.stamp(xk("plain", "a"));
  const std::string x = xk("plain", "a");

  ApplyStats s = b.apply({change("plain", "a", put_ts(local.time - 1), 0, {"older"})});
  EXPECT_EQ(1u, s.ignored);
  EXPECT_EQ(0u, s.applied);
  s = b.apply({change("plain", "a", local, 0, {"equal"})});
  EXPECT_EQ(1u, s.ignored);
  EXPECT_EQ("local", b.dump()["plain"].kv[0].second);
  EXPECT_EQ(local, *b.stamp(x));

  const Ts newer = put_ts(local.time + 1);
  s = b.apply({change("plain", "a", newer, 0, {"newer"})});
  EXPECT_EQ(1u, s.applied);
  EXPECT_EQ("newer", b.dump()["plain"].kv[0].second);
  EXPECT_EQ(newer, *b.stamp(x));
  EXPECT_EQ(newer, b.recent().at(x));
  EXPECT_GE(s.max_seen, newer.time);

  // A newer delete removes it; a put older than the delete stays ignored.
  const Ts gone = del_ts(local.time + 5);
  s = b.apply({change("plain", "a", gone)});
  EXPECT_EQ(1u, s.applied);
  const Dump d = b.dump();
  ASSERT_EQ(1u, d.at("plain").kv.size());
  EXPECT_EQ("z", d.at("plain").kv[0].first);
  EXPECT_EQ(gone, *b.stamp(x));
  s = b.apply({change("plain", "a", put_ts(local.time + 4), 0, {"late"})});
  EXPECT_EQ(1u, s.ignored);
  EXPECT_EQ(1u, b.dump().at("plain").kv.size());
  // ... a newer put brings it back.
  s = b.apply({change("plain", "a", put_ts(local.time + 6), 0, {"back"})});
  EXPECT_EQ(1u, s.applied);
  EXPECT_EQ("back", b.dump().at("plain").kv[0].second);

  // A delete of a key that never existed here is still recorded.
  s = b.apply({change("plain", "never", del_ts(local.time + 7)),
               change("nodb", "k", del_ts(local.time + 7))});
  EXPECT_EQ(2u, s.applied);
  EXPECT_TRUE(b.stamp(xk("plain", "never"))->is_delete());
  EXPECT_TRUE(b.stamp(xk("nodb", "k"))->is_delete());
  EXPECT_EQ(0u, b.dump().count("nodb"));
  EXPECT_VERIFIED(b);
}

TEST(Store, DupsortSetIsReplacedWholesale) {
  TestEnv b;
  b.write([&](MDB_txn *t) {
    MDB_dbi d = TestEnv::open(t, "dups", MDB_DUPSORT);
    for (const char *v : {"1", "2", "3"}) TestEnv::put(t, d, "x", v);
    TestEnv::put(t, d, "y", "7");
  });
  const Ts local = *b.stamp(xk("dups", "x"));
  ApplyStats s = b.apply({change("dups", "x", put_ts(local.time + 1), MDB_DUPSORT, {"4", "5"})});
  EXPECT_EQ(1u, s.applied);
  const std::vector<std::pair<std::string, std::string>> want{{"x", "4"}, {"x", "5"}, {"y", "7"}};
  EXPECT_EQ(want, b.dump().at("dups").kv);
  EXPECT_VERIFIED(b);
}

TEST_F(ReadyStore, KeyPutCreatesItsDatabaseWithFlagsAndAFreshMarker) {
  const uint64_t t0 = wall_clock_now() + (uint64_t{60} << 32);  // ahead of B's clock
  ApplyStats s = b_.apply({
      change("ints", "", put_ts(t0), MDB_INTEGERKEY),
      change("ints", u32key(7), put_ts(t0 + 1), MDB_INTEGERKEY, {"seven"}),
      change("newdup", "k", put_ts(t0 + 2), MDB_DUPSORT, {"a", "b"}),
  });
  EXPECT_EQ(3u, s.applied);
  const Dump d = b_.dump();
  ASSERT_EQ(1u, d.count("ints"));
  EXPECT_EQ(unsigned{MDB_INTEGERKEY}, d.at("ints").flags);
  ASSERT_EQ(1u, d.count("newdup"));
  EXPECT_EQ(unsigned{MDB_DUPSORT}, d.at("newdup").flags);
  EXPECT_EQ(2u, d.at("newdup").kv.size());
  EXPECT_EQ(put_ts(t0), *b_.stamp(xk("ints", "")));
  // No marker came for newdup: B created the database and says so itself,
  // later than anything it received.
  const Ts m = *b_.stamp(xk("newdup", ""));
  EXPECT_TRUE(m.is_put());
  EXPECT_EQ(b_.st()->node | kOpPut, m.node);
  EXPECT_GT(m.time, t0 + 2);
  EXPECT_EQ(m, b_.recent().at(xk("newdup", "")));
  EXPECT_VERIFIED(b_);
}

TEST(Store, MarkerDeleteDropsADatabaseOfOlderKeys) {
  TestEnv b;
  MDB_dbi md = 0;
  b.write([&](MDB_txn *t) {
    md = TestEnv::open(t, "md", MDB_DUPSORT);
    TestEnv::put(t, md, "k1", "a");
    TestEnv::put(t, md, "k1", "b");
    TestEnv::put(t, md, "k2", "c");
  });
  b.put1("other", "k", "v");
  // The program let go of its handle: dropping cannot close it under it.
  ops::dbi_close(b.env(), md);
  const Ts drop = del_ts(b.stamp(xk("md", "k2"))->time + 10);
  ApplyStats s = b.apply({change("md", "", drop)});
  EXPECT_EQ(1u, s.applied);
  EXPECT_EQ(0u, b.dump().count("md"));
  EXPECT_EQ(1u, b.dump().count("other"));
  EXPECT_EQ(drop, *b.stamp(xk("md", "")));
  EXPECT_EQ(drop, *b.stamp(xk("md", "k1")));
  EXPECT_EQ(drop, *b.stamp(xk("md", "k2")));
  EXPECT_EQ(drop, b.recent().at(xk("md", "k1")));
  EXPECT_VERIFIED(b);
  // A newer key brings the database back, created by B.
  s = b.apply({change("md", "k3", put_ts(drop.time + 1), MDB_DUPSORT, {"x"})});
  EXPECT_EQ(1u, s.applied);
  EXPECT_EQ(unsigned{MDB_DUPSORT}, b.dump().at("md").flags);
  EXPECT_TRUE(b.stamp(xk("md", ""))->is_put());
  EXPECT_GT(b.stamp(xk("md", ""))->time, drop.time);
  EXPECT_VERIFIED(b);
}

// LMDB closes a dropped database's handle env-wide at once: while the
// program holds the handle, a received deletion empties the database and
// leaves it in place (verify and digest count it as dropped), and the drop
// happens once the program closed the handle.
TEST(Store, MarkerDeleteWaitsForTheProgramsHandle) {
  TestEnv b;
  MDB_dbi md = 0;
  b.write([&](MDB_txn *t) {
    md = TestEnv::open(t, "md");
    TestEnv::put(t, md, "k1", "a");
  });
  const Ts drop = del_ts(b.stamp(xk("md", "k1"))->time + 10);
  ApplyStats s = b.apply({change("md", "", drop)});
  EXPECT_EQ(1u, s.applied);
  ASSERT_EQ(1u, b.dump().count("md")) << "dropped under the program's handle";
  EXPECT_TRUE(b.dump().at("md").kv.empty());
  EXPECT_EQ(drop, *b.stamp(xk("md", "")));
  EXPECT_EQ(drop, *b.stamp(xk("md", "k1")));
  EXPECT_VERIFIED(b);
  // The program's handle still works: a read finds nothing, no crash.
  b.write([&](MDB_txn *t) {
    MDB_val k{2, const_cast<char *>("k1")}, v;
    EXPECT_EQ(MDB_NOTFOUND, ops::get(t, md, &k, &v));
  });
  EXPECT_EQ(0, b.store().drop_pending());
  EXPECT_EQ(1u, b.dump().count("md")) << "still held";
  ops::dbi_close(b.env(), md);
  EXPECT_EQ(0, b.store().drop_pending());
  EXPECT_EQ(0u, b.dump().count("md"));
  EXPECT_VERIFIED(b);
}

// A put older than a database's deletion loses to it even where the key
// never existed (the dropping node wrote no tombstone for it).
TEST(Store, PutOlderThanItsDatabasesDeletionLoses) {
  TestEnv b;
  b.put1("gone", "k0", "v");
  MDB_dbi gone = 0;
  b.write([&](MDB_txn *t) { gone = TestEnv::open(t, "gone"); });
  ops::dbi_close(b.env(), gone);
  const Ts drop = del_ts(b.stamp(xk("gone", "k0"))->time + 100);
  b.apply({change("gone", "", drop)});
  ASSERT_EQ(0u, b.dump().count("gone"));
  ApplyStats s = b.apply({change("gone", "k1", put_ts(drop.time - 50), 0, {"late"})});
  EXPECT_EQ(0u, s.applied);
  EXPECT_EQ(0u, b.dump().count("gone")) << "an older put re-created the database";
  EXPECT_EQ(drop, *b.stamp(xk("gone", "k1")));
  EXPECT_VERIFIED(b);
  // A newer one does re-create it.
  s = b.apply({change("gone", "k2", put_ts(drop.time + 1), 0, {"new"})});
  EXPECT_EQ(1u, s.applied);
  EXPECT_EQ(1u, b.dump().count("gone"));
  EXPECT_VERIFIED(b);
}

TEST(Store, MarkerDeleteKeepsNewerKeysAndRestampsTheMarker) {
  TestEnv b;
  // Many keys over many pages, older and newer than the drop interleaved.
  const std::string big(200, 'v');
  auto key = [](int i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "k%05d", i);
    return std::string(buf);
  };
  b.write([&](MDB_txn *t) {
    MDB_dbi d = TestEnv::open(t, "ms");
    for (int i = 0; i < 1200; i += 2) TestEnv::put(t, d, key(i), big);
  });
  const Ts drop = del_ts(b.st()->clock.issue());
  b.write([&](MDB_txn *t) {
    MDB_dbi d = TestEnv::open(t, "ms");
    for (int i = 1; i < 1200; i += 2) TestEnv::put(t, d, key(i), big);
  });
  ASSERT_LT(drop, *b.stamp(xk("ms", key(1))));
  ASSERT_GT(drop, *b.stamp(xk("ms", key(0))));

  ApplyStats s = b.apply({change("ms", "", drop)});
  EXPECT_EQ(1u, s.applied);
  const Dump d = b.dump();
  ASSERT_EQ(1u, d.count("ms"));
  ASSERT_EQ(600u, d.at("ms").kv.size());
  for (int i = 0; i < 600; ++i) EXPECT_EQ(key(2 * i + 1), d.at("ms").kv[i].first);
  for (int i = 0; i < 1200; i += 2) EXPECT_EQ(drop, *b.stamp(xk("ms", key(i)))) << key(i);
  const Ts m = *b.stamp(xk("ms", ""));
  EXPECT_TRUE(m.is_put());
  EXPECT_EQ(b.st()->node | kOpPut, m.node);
  EXPECT_GT(m.time, drop.time);
  EXPECT_EQ(m, b.recent().at(xk("ms", "")));
  EXPECT_VERIFIED(b);
}

TEST(Store, MainDatabaseIsNeverDropped) {
  TestEnv b;
  b.put1(nullptr, "m", "v");
  const Ts drop = del_ts(b.stamp(xk("", "m"))->time + 10);
  ApplyStats s = b.apply({change("", "", drop)});
  EXPECT_EQ(1u, s.applied);
  EXPECT_EQ(drop, *b.stamp(xk("", "")));
  EXPECT_EQ(1u, b.dump().at("").kv.size());
  EXPECT_VERIFIED(b);
}

TEST(Store, MapFullLeavesTheReplicaUnchangedUntilTheMapGrows) {
  TestEnv a, b(1u << 20);
  const std::string big(64 << 10, 'x');
  a.write([&](MDB_txn *t) {
    MDB_dbi d = TestEnv::open(t, "big");
    for (int i = 0; i < 40; ++i) TestEnv::put(t, d, "k" + std::to_string(i), big);
  });
  b.put1("small", "k", "v");
  const std::vector<Change> cs = a.read_all();
  const Dump before = b.dump();
  const auto time_before = b.time();
  const auto recent_before = b.recent();
  ApplyStats s = b.apply(cs, MDB_MAP_FULL);
  EXPECT_EQ(0u, s.applied);
  EXPECT_EQ(before, b.dump());
  EXPECT_EQ(time_before, b.time());
  EXPECT_EQ(recent_before, b.recent());
  EXPECT_VERIFIED(b);

  ASSERT_EQ(0, real().mdb_env_set_mapsize(b.env(), 64u << 20));
  s = b.apply(cs);
  EXPECT_EQ(cs.size(), s.applied);
  EXPECT_EQ(a.dump().at("big"), b.dump().at("big"));
  EXPECT_VERIFIED(b);
}

TEST(Store, ForgetRecentRemovesOnlyUnchangedEntries) {
  TestEnv a;
  a.write([&](MDB_txn *t) {
    MDB_dbi d = TestEnv::open(t, "p");
    TestEnv::put(t, d, "k1", "1");
    TestEnv::put(t, d, "k2", "2");
  });
  const std::vector<Change> cs = a.read_all();
  ASSERT_EQ(3u, cs.size());
  a.put1("p", "k2", "2b");  // re-stamped after it was read
  std::vector<std::pair<std::string, Ts>> acked;
  for (const Change &c : cs) acked.emplace_back(c.xkey, c.ts);
  acked.emplace_back(xk("p", "absent"), put_ts(1));
  ASSERT_EQ(0, a.store().forget_recent(acked));
  const auto recent = a.recent();
  ASSERT_EQ(1u, recent.size());
  EXPECT_EQ(a.time().at(xk("p", "k2")), recent.at(xk("p", "k2")));
  EXPECT_NE(find(cs, xk("p", "k2"))->ts, recent.at(xk("p", "k2")));
  EXPECT_EQ(3u, a.time().size());
  std::size_t n = 0;
  ASSERT_EQ(0, a.store().recent_count(&n));
  EXPECT_EQ(1u, n);
  EXPECT_VERIFIED(a);
}

TEST_F(PopulatedStore, SnapshotHoldsEveryTimeEntry) {
  ASSERT_EQ(0, a_.store().forget_recent({{xk("plain", "a"), *a_.stamp(xk("plain", "a"))}}));
  std::vector<ReconItem> items;
  ASSERT_EQ(0, a_.store().snapshot(&items));
  const auto time = a_.time();
  ASSERT_EQ(time.size(), items.size());
  std::size_t i = 0;
  for (const auto &[xkey, ts] : time) {
    EXPECT_EQ(key_hash(xkey), items[i].kh);
    EXPECT_EQ(ts, items[i].ts);
    ++i;
  }
}

TEST_F(PopulatedStore, ReadRecentHonoursSkipAndLimits) {
  const std::vector<Change> all = a_.read_all();
  ASSERT_GT(all.size(), 5u);

  // Skipped entries are left out; the scan still reaches the end.
  {
    ScanPos pos;
    std::vector<Change> out;
    uint64_t txnid = 0;
    auto skip = [](std::string_view xkey, const Ts &) { return xkey.starts_with("plain"); };
    ASSERT_EQ(0, a_.store().read_recent(&pos, 1000, 1u << 20, skip, &out, &txnid));
    EXPECT_TRUE(pos.finished);
    EXPECT_GT(txnid, 0u);
    std::vector<Change> want;
    for (const Change &c : all)
      if (!c.xkey.starts_with("plain")) want.push_back(c);
    EXPECT_EQ(want, out);
  }
  // At most two per call; the calls together give everything once.
  EXPECT_EQ(all, a_.read_in_calls(2, 1u << 20, 2));
  // A byte budget smaller than any change still gives one per call.
  EXPECT_EQ(all, a_.read_in_calls(1000, 1, 1));
  // A byte budget: the change that reaches it is the last one.
  {
    ScanPos pos;
    std::vector<Change> out;
    uint64_t txnid = 0;
    const std::size_t budget = all[0].payload_bytes() + all[1].payload_bytes();
    ASSERT_EQ(0, a_.store().read_recent(&pos, 1000, budget, nullptr, &out, &txnid));
    EXPECT_EQ(2u, out.size());
    EXPECT_FALSE(pos.finished);
  }
}

TEST_F(PopulatedStore, ReadTimeSendsTheEntriesOfTheSet) {
  // Acknowledged entries are no longer in _trlmdb_recent, but catch-up
  // still finds them.
  std::vector<std::pair<std::string, Ts>> acked;
  for (const Change &c : a_.read_all()) acked.emplace_back(c.xkey, c.ts);
  ASSERT_EQ(0, a_.store().forget_recent(acked));

  SendSet set;
  set.keys = {key_hash(xk("plain", "a")), key_hash(xk("dups", "x"))};
  std::sort(set.keys.begin(), set.keys.end());
  ScanPos pos;
  std::vector<Change> out;
  ASSERT_EQ(0, a_.store().read_time(&pos, set, 1000, 1u << 20, &out));
  EXPECT_TRUE(pos.finished);
  ASSERT_EQ(2u, out.size());
  EXPECT_EQ(xk("dups", "x"), out[0].xkey);
  EXPECT_EQ((std::vector<std::string>{"1", "3"}), out[0].values);
  EXPECT_EQ(xk("plain", "a"), out[1].xkey);
  EXPECT_EQ(*a_.stamp(xk("plain", "a")), out[1].ts);

  // The whole hash space: every entry, tombstones included.
  SendSet everything;
  everything.ranges = {{0, ~uint64_t{0}}};
  pos = ScanPos{};
  out.clear();
  ASSERT_EQ(0, a_.store().read_time(&pos, everything, 1000, 1u << 20, &out));
  EXPECT_EQ(a_.time().size(), out.size());

  pos = ScanPos{};
  out.clear();
  ASSERT_EQ(0, a_.store().read_time(&pos, SendSet{}, 1000, 1u << 20, &out));
  EXPECT_TRUE(pos.finished);
  EXPECT_TRUE(out.empty());
}

TEST_F(ReadyStore, ApplyAdvancesAndPersistsTheClock) {
  const uint64_t ahead = wall_clock_now() + (uint64_t{3600} << 32);
  ApplyStats s = b_.apply({change("p", "k", put_ts(ahead), 0, {"v"})});
  EXPECT_EQ(1u, s.applied);
  EXPECT_EQ(ahead, s.max_seen);
  EXPECT_GE(b_.persisted_clock(), ahead);
  EXPECT_GE(b_.st()->clock.high_water(), ahead);
  // The program's next write is stamped after what B received.
  b_.put1("p", "k2", "v2");
  EXPECT_GT(b_.stamp(xk("p", "k2"))->time, ahead);
  EXPECT_VERIFIED(b_);

  // Ignored changes still move the clock (in memory).
  const uint64_t further = ahead + (uint64_t{10} << 32);
  s = b_.apply({change("p", "k2", put_ts(further, 0), 0, {"x"}),
                change("p", "k", put_ts(ahead - 1), 0, {"old"})});
  EXPECT_EQ(further, s.max_seen);
  EXPECT_GE(b_.st()->clock.high_water(), further);
}

TEST_F(ReadyStore, CustomComparatorDatabasesWaitForTheProgram) {
  const uint64_t t0 = wall_clock_now();
  // A marker says so: the database is created and recorded, its keys wait.
  ApplyStats s = b_.apply({change("cmp", "", put_ts(t0), kDbFlagCustomCompare),
                           change("cmp", "k", put_ts(t0 + 1), kDbFlagCustomCompare, {"v"})});
  EXPECT_EQ(1u, s.applied);
  EXPECT_EQ(1u, s.deferred);
  EXPECT_TRUE(b_.dump().at("cmp").kv.empty());
  EXPECT_FALSE(b_.stamp(xk("cmp", "k")));
  {
    MDB_txn *txn = nullptr;
    ASSERT_EQ(0, real().mdb_txn_begin(b_.env(), nullptr, MDB_RDONLY, &txn));
    bool yes = false;
    EXPECT_EQ(0, meta_has_custom_compare(txn, b_.st()->reserved.meta, "cmp", &yes));
    EXPECT_TRUE(yes);
    real().mdb_txn_abort(txn);
  }
  EXPECT_VERIFIED(b_);
  // The program registers its comparator: now the key goes in.
  MDB_dbi dbi = 0;
  b_.write([&](MDB_txn *t) { dbi = TestEnv::open(t, "cmp"); });
  b_.st()->note_comparator(dbi);
  s = b_.apply({change("cmp", "k", put_ts(t0 + 1), kDbFlagCustomCompare, {"v"})});
  EXPECT_EQ(1u, s.applied);
  EXPECT_EQ(0u, s.deferred);
  EXPECT_EQ(1u, b_.dump().at("cmp").kv.size());

  // Recorded in _trlmdb_meta only: every write waits, and the reader flags it.
  b_.put1("cmp2", "k", "v");
  {
    MDB_txn *txn = nullptr;
    ASSERT_EQ(0, real().mdb_txn_begin(b_.env(), nullptr, 0, &txn));
    ASSERT_EQ(0, meta_put_custom_compare(txn, b_.st()->reserved.meta, "cmp2"));
    ASSERT_EQ(0, real().mdb_txn_commit(txn));
  }
  const Ts local = *b_.stamp(xk("cmp2", "k"));
  s = b_.apply({change("cmp2", "k", put_ts(local.time + 1), 0, {"new"}),
                change("cmp2", "k2", del_ts(local.time + 1)),
                change("cmp2", "", del_ts(local.time + 2))});
  EXPECT_EQ(0u, s.applied);
  EXPECT_EQ(3u, s.deferred);
  EXPECT_EQ("v", b_.dump().at("cmp2").kv.at(0).second);
  std::vector<Change> cs = b_.read_all();
  const Change *marker = find(cs, xk("cmp2", ""));
  ASSERT_TRUE(marker);
  EXPECT_EQ(kDbFlagCustomCompare, marker->db_flags & kDbFlagCustomCompare);
  EXPECT_FALSE(find(cs, xk("cmp2", "k")));  // cannot be looked up without the comparator
  b_.write([&](MDB_txn *t) { dbi = TestEnv::open(t, "cmp2"); });
  b_.st()->note_comparator(dbi);
  cs = b_.read_all();
  ASSERT_TRUE(find(cs, xk("cmp2", "k")));
  EXPECT_EQ(std::vector<std::string>{"v"}, find(cs, xk("cmp2", "k"))->values);
  s = b_.apply({change("cmp2", "k", put_ts(local.time + 1), 0, {"new"})});
  EXPECT_EQ(1u, s.applied);
  EXPECT_EQ("new", b_.dump().at("cmp2").kv.at(0).second);
  EXPECT_VERIFIED(b_);
}

TEST(Store, ChangesThatNameNoUserKeyAreIgnored) {
  TestEnv b;
  b.put1("plain", "k", "v");
  const uint64_t t = wall_clock_now() + (uint64_t{1} << 32);
  ApplyStats s = b.apply({
      change("", "plain", put_ts(t), 0, {"clobber"}),  // a main key named like a database
      change("_trlmdb_time", "x", put_ts(t), 0, {"v"}),
      change("", "_trlmdb_meta", del_ts(t)),
      change("plain", "k2", put_ts(t), 0, {"v2"}),
  });
  EXPECT_EQ(3u, s.ignored);
  EXPECT_EQ(1u, s.applied);
  const Dump d = b.dump();
  EXPECT_EQ(2u, d.at("plain").kv.size());
  EXPECT_TRUE(d.at("").kv.empty());
  EXPECT_FALSE(b.stamp(xk("", "plain")));
  EXPECT_FALSE(b.stamp(xk("_trlmdb_time", "x")));
  EXPECT_VERIFIED(b);
}

TEST(Store, MarkerPutKeepsAnExistingDatabaseAndItsFlags) {
  TestEnv b;
  b.write([&](MDB_txn *t) { TestEnv::open(t, "e"); });
  b.put1("full", "k", "v");
  const uint64_t t = wall_clock_now() + (uint64_t{1} << 32);
  ApplyStats s = b.apply({change("e", "", put_ts(t), MDB_DUPSORT),
                          change("full", "", put_ts(t), MDB_DUPSORT | kDbFlagCustomCompare),
                          change("", "", put_ts(t), kDbFlagCustomCompare)});
  EXPECT_EQ(3u, s.applied);
  const Dump d = b.dump();
  EXPECT_EQ(0u, d.at("e").flags);
  EXPECT_EQ(0u, d.at("full").flags);
  EXPECT_EQ(1u, d.at("full").kv.size());
  EXPECT_EQ(put_ts(t), *b.stamp(xk("e", "")));
  EXPECT_EQ(put_ts(t), *b.stamp(xk("", "")));
  MDB_txn *txn = nullptr;
  ASSERT_EQ(0, real().mdb_txn_begin(b.env(), nullptr, MDB_RDONLY, &txn));
  bool full = false, main = false, e = true;
  EXPECT_EQ(0, meta_has_custom_compare(txn, b.st()->reserved.meta, "full", &full));
  EXPECT_EQ(0, meta_has_custom_compare(txn, b.st()->reserved.meta, "", &main));
  EXPECT_EQ(0, meta_has_custom_compare(txn, b.st()->reserved.meta, "e", &e));
  real().mdb_txn_abort(txn);
  EXPECT_TRUE(full);
  EXPECT_TRUE(main);
  EXPECT_FALSE(e);
  EXPECT_VERIFIED(b);
}

TEST_F(ReadyStore, ApplyAndReadWhileTheProgramWrites) {
  constexpr int kRounds = 200;
  std::thread writer([&] {
    for (int i = 0; i < kRounds; ++i) {
      MDB_txn *txn = nullptr;
      ASSERT_EQ(0, ops::txn_begin(b_.env(), nullptr, 0, &txn));
      const std::string name = "w" + std::to_string(i % 4);
      MDB_dbi dbi = 0;
      EXPECT_EQ(0, ops::dbi_open(txn, name.c_str(), MDB_CREATE, &dbi));
      const std::string k = "k" + std::to_string(i);
      MDB_val kv = val(k), vv = val("v");
      EXPECT_EQ(0, ops::put(txn, dbi, &kv, &vv, 0));
      EXPECT_EQ(0, ops::txn_commit(txn));
    }
  });
  const uint64_t t0 = wall_clock_now();
  std::size_t read = 0;
  for (int i = 0; i < kRounds; ++i) {
    ApplyStats s;
    const std::string db = "r" + std::to_string(i % 4);
    EXPECT_EQ(
        0, b_.store().apply({change(db, "k" + std::to_string(i), put_ts(t0 + i), 0, {"v"})}, &s));
    EXPECT_EQ(1u, s.applied);
    ScanPos pos;
    std::vector<Change> out;
    uint64_t txnid = 0;
    EXPECT_EQ(0, b_.store().read_recent(&pos, 50, 1u << 20, nullptr, &out, &txnid));
    read += out.size();
  }
  writer.join();
  EXPECT_GT(read, 0u);
  const Dump d = b_.dump();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(std::size_t{kRounds / 4}, d.at("w" + std::to_string(i)).kv.size());
    EXPECT_EQ(std::size_t{kRounds / 4}, d.at("r" + std::to_string(i)).kv.size());
  }
  EXPECT_VERIFIED(b_);
}

// mdb_drop(…, 1) deletes every key older than it, also after its database was
// created again: the marker then says created, and the deletion's stamp must
// still decide a put older than it that arrives late (chaos.quick.1, seed 1:
// A dropped t0 without B's t0/k10, re-created t0, then applied B's older
// put, and every node kept it).
TEST(Store, PutOlderThanAnOwnDropLosesAfterTheDatabaseIsRecreated) {
  TestEnv b;
  b.put1("t0", "k1", "v");
  b.write([&](MDB_txn *t) { EXPECT_EQ(0, ops::drop(t, TestEnv::open(t, "t0"), 1)); });
  const Ts drop = *b.stamp(xk("t0", ""));
  ASSERT_TRUE(drop.is_delete());
  b.put1("t0", "k2", "new");
  ASSERT_TRUE(b.stamp(xk("t0", ""))->is_put());
  ApplyStats s = b.apply({change("t0", "k10", put_ts(drop.time - 1), 0, {"late"})});
  EXPECT_EQ(0u, s.applied);
  const Dump d = b.dump();
  ASSERT_EQ(1u, d.count("t0"));
  EXPECT_EQ((std::vector<std::pair<std::string, std::string>>{{"k2", "new"}}), d.at("t0").kv);
  // A tombstone at the drop's stamp travels on and beats the put elsewhere.
  EXPECT_EQ(drop, *b.stamp(xk("t0", "k10")));
  EXPECT_EQ(drop, b.recent().at(xk("t0", "k10")));
  EXPECT_VERIFIED(b);
  // Newer than the drop: applied.
  s = b.apply({change("t0", "k11", put_ts(drop.time + 1), 0, {"x"})});
  EXPECT_EQ(1u, s.applied);
  EXPECT_EQ(2u, b.dump().at("t0").kv.size());
  EXPECT_VERIFIED(b);
}

// The same when the drop came from a peer and a newer key brought the
// database back (its marker re-stamped as created by the apply).
TEST(Store, PutOlderThanAReceivedDropLosesAfterTheDatabaseIsRecreated) {
  TestEnv b;
  const Ts drop = del_ts(wall_clock_now() + (uint64_t{1} << 32));
  b.apply({change("gone", "", drop)});
  ApplyStats s = b.apply({change("gone", "k2", put_ts(drop.time + 1), 0, {"new"})});
  EXPECT_EQ(1u, s.applied);
  ASSERT_TRUE(b.stamp(xk("gone", ""))->is_put());
  s = b.apply({change("gone", "k1", put_ts(drop.time - 1), 0, {"late"})});
  EXPECT_EQ(0u, s.applied);
  EXPECT_EQ(1u, b.dump().at("gone").kv.size());
  EXPECT_EQ(drop, *b.stamp(xk("gone", "k1")));
  EXPECT_VERIFIED(b);

  // Keys newer than the drop survive it, so the apply re-stamps the marker
  // as created in the same batch.
  TestEnv c;
  c.put1("ms", "old", "v");
  const Ts drop2 = del_ts(c.st()->clock.issue());
  c.put1("ms", "newer", "v");
  c.apply({change("ms", "", drop2)});
  ASSERT_TRUE(c.stamp(xk("ms", ""))->is_put());
  s = c.apply({change("ms", "late", put_ts(drop2.time - 1), 0, {"late"})});
  EXPECT_EQ(0u, s.applied);
  EXPECT_EQ((std::vector<std::pair<std::string, std::string>>{{"newer", "v"}}),
            c.dump().at("ms").kv);
  EXPECT_EQ(drop2, *c.stamp(xk("ms", "late")));
  EXPECT_VERIFIED(c);
}

// A program that drops a database and creates it again in one transaction:
// the marker ends as created, the drop still deletes older keys.
TEST(Store, PutOlderThanADropAndRecreateInOneTransactionLoses) {
  TestEnv b;
  b.put1("t0", "k1", "v");
  b.write([&](MDB_txn *t) {
    EXPECT_EQ(0, ops::drop(t, TestEnv::open(t, "t0"), 1));
    TestEnv::put(t, TestEnv::open(t, "t0"), "k2", "new");
  });
  const Ts created = *b.stamp(xk("t0", ""));
  ASSERT_TRUE(created.is_put());
  ApplyStats s = b.apply({change("t0", "k10", put_ts(created.time - 1), 0, {"late"})});
  EXPECT_EQ(0u, s.applied);
  EXPECT_EQ((std::vector<std::pair<std::string, std::string>>{{"k2", "new"}}),
            b.dump().at("t0").kv);
  const std::optional<Ts> k10 = b.stamp(xk("t0", "k10"));
  ASSERT_TRUE(k10);
  EXPECT_TRUE(k10->is_delete());
  EXPECT_GT(*k10, put_ts(created.time - 1));
  EXPECT_VERIFIED(b);
}

// A drop that arrives after its database was created again (the newer
// marker came first) still deletes the keys older than it.
TEST(Store, DropOlderThanTheMarkerStillDeletesOlderKeys) {
  TestEnv b;
  const uint64_t t = wall_clock_now() + (uint64_t{1} << 32);
  b.apply({change("st", "k0", put_ts(t), 0, {"old"}), change("st", "", put_ts(t + 100))});
  b.apply({change("st", "k1", put_ts(t + 200), 0, {"new"})});
  ApplyStats s = b.apply({change("st", "", del_ts(t + 50))});
  EXPECT_EQ((std::vector<std::pair<std::string, std::string>>{{"k1", "new"}}),
            b.dump().at("st").kv);
  EXPECT_EQ(del_ts(t + 50), *b.stamp(xk("st", "k0")));
  EXPECT_EQ(put_ts(t + 100), *b.stamp(xk("st", "")));
  EXPECT_VERIFIED(b);
  // And remembers it for later puts.
  s = b.apply({change("st", "k2", put_ts(t + 10), 0, {"late"})});
  EXPECT_EQ(0u, s.applied);
  EXPECT_EQ(1u, b.dump().at("st").kv.size());
  EXPECT_VERIFIED(b);
}

// LMDB looks a name up among the handles open when a transaction began, and
// a slot freed by a drop keeps the name of whatever reuses it. A read
// transaction that began before the replicator created a database in such a
// slot must not find it (LMDB alone would not: the database is not in its
// snapshot), instead of getting a handle that fails every call with EINVAL.
TEST(Store, ReadTxnOlderThanAReplicatedDatabaseDoesNotFindIt) {
  TestEnv b;
  MDB_dbi old = 0;
  b.write([&](MDB_txn *t) {
    old = TestEnv::open(t, "old", 0);
    TestEnv::put(t, old, "k", "v");
  });
  b.write([&](MDB_txn *t) { ASSERT_EQ(0, ops::drop(t, old, 1)); });
  const Ts fresh = put_ts(b.stamp(xk("old", ""))->time + 10);
  // The program's read transaction, on a thread of its own (one per thread).
  std::promise<void> begun, applied;
  std::future<void> applied_f = applied.get_future();
  int found = -1;
  std::thread program([&] {
    MDB_txn *before = nullptr;
    if (ops::txn_begin(b.env(), nullptr, MDB_RDONLY, &before) != 0) {
      begun.set_value();
      return;
    }
    begun.set_value();
    applied_f.wait();
    MDB_dbi dbi = 0;
    found = ops::dbi_open(before, "fresh", 0, &dbi);
    ops::txn_abort(before);
  });
  begun.get_future().wait();
  EXPECT_EQ(1u, b.apply({change("fresh", "k", fresh, 0, {"v"})}).applied);
  applied.set_value();
  program.join();
  EXPECT_EQ(MDB_NOTFOUND, found);
  MDB_dbi dbi = 0;
  MDB_txn *after = nullptr;
  ASSERT_EQ(0, ops::txn_begin(b.env(), nullptr, MDB_RDONLY, &after));
  ASSERT_EQ(0, ops::dbi_open(after, "fresh", 0, &dbi));
  MDB_stat st;
  EXPECT_EQ(0, ops::stat(after, dbi, &st));
  EXPECT_EQ(1u, st.ms_entries);
  ops::txn_abort(after);
  EXPECT_VERIFIED(b);
}

}  // namespace
}  // namespace trlmdb::repl
