// Unit tests for pending.h: the per-transaction set of touched xkeys, sorted
// and de-duplicated at commit, the last operation recorded for a key winning.
#include "pending.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "format.h"

namespace trlmdb {
namespace {

using namespace std::string_literals;

struct Flat {
  std::string xkey;
  MDB_dbi dbi;
  Op op;
  bool operator==(const Flat &o) const { return xkey == o.xkey && dbi == o.dbi && op == o.op; }
};

std::ostream &operator<<(std::ostream &os, const Flat &f) {
  os << "{";
  for (unsigned char c : f.xkey) {
    if (c >= 0x20 && c < 0x7f)
      os << c;
    else
      os << "\\x" << std::hex << int(c) << std::dec;
  }
  return os << ", dbi " << f.dbi << ", op " << int(f.op) << "}";
}

std::vector<Flat> flat(const PendingSet &p) {
  std::vector<Flat> out;
  for (const auto &e : p.resolve()) out.push_back(Flat{std::string(e.xkey), e.dbi, e.op});
  return out;
}

TEST(PendingSet, EmptySet) {
  PendingSet p;
  EXPECT_TRUE(p.empty());
  EXPECT_EQ(p.size(), 0u);
  EXPECT_TRUE(p.resolve().empty());
}

TEST(PendingSet, SingleRecordBuildsTheXkey) {
  PendingSet p;
  p.add(3, "db", "key", Op::kPut);
  EXPECT_FALSE(p.empty());
  EXPECT_EQ(p.size(), 1u);
  EXPECT_EQ(flat(p), (std::vector<Flat>{{"db\0key"s, 3, Op::kPut}}));
}

TEST(PendingSet, MainDbAndMarkerXkeys) {
  PendingSet p;
  p.add(1, "", "k", Op::kPut);
  p.add(2, "db", "", Op::kPut);  // database marker
  EXPECT_EQ(flat(p), (std::vector<Flat>{{"\0k"s, 1, Op::kPut}, {"db\0"s, 2, Op::kPut}}));
}

TEST(PendingSet, ResolveSortsByXkeyBytes) {
  PendingSet p;
  p.add(2, "b", "x", Op::kPut);
  p.add(1, "", "zz", Op::kPut);
  p.add(2, "b", "\xff", Op::kPut);
  p.add(2, "b", "\x7f", Op::kPut);
  p.add(2, "b", "", Op::kPut);
  p.add(3, "a", "q", Op::kDelete);
  p.add(2, "b", "\x80", Op::kPut);
  p.add(2, "b", "x\0"s, Op::kPut);
  std::vector<Flat> want = {
      {"\0zz"s, 1, Op::kPut},    {"a\0q"s, 3, Op::kDelete}, {"b\0"s, 2, Op::kPut},
      {"b\0x"s, 2, Op::kPut},    {"b\0x\0"s, 2, Op::kPut},  {"b\0\x7f"s, 2, Op::kPut},
      {"b\0\x80"s, 2, Op::kPut}, {"b\0\xff"s, 2, Op::kPut},
  };
  EXPECT_EQ(flat(p), want) << "order must be memcmp order (unsigned bytes), as LMDB sorts";
}

TEST(PendingSet, LastOperationWins) {
  PendingSet p;
  p.add(1, "", "a", Op::kPut);
  p.add(1, "", "b", Op::kDelete);
  p.add(1, "", "a", Op::kDelete);
  p.add(1, "", "b", Op::kPut);
  p.add(1, "", "c", Op::kPut);
  p.add(1, "", "c", Op::kUnknown);
  p.add(1, "", "d", Op::kUnknown);
  p.add(1, "", "d", Op::kPut);
  EXPECT_EQ(p.size(), 8u) << "size() counts records, resolve() de-duplicates";
  std::vector<Flat> want = {{"\0a"s, 1, Op::kDelete},
                            {"\0b"s, 1, Op::kPut},
                            {"\0c"s, 1, Op::kUnknown},
                            {"\0d"s, 1, Op::kPut}};
  EXPECT_EQ(flat(p), want);
}

TEST(PendingSet, ManyRepeatsOfOneKeyGiveOneEntry) {
  PendingSet p;
  for (int i = 0; i < 1000; ++i) p.add(4, "db", "k", (i % 2) ? Op::kDelete : Op::kPut);
  auto r = flat(p);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].op, Op::kDelete);  // i = 999 is odd
}

TEST(PendingSet, SameKeyInDifferentDatabasesIsDistinct) {
  PendingSet p;
  p.add(1, "", "k", Op::kPut);
  p.add(2, "a", "k", Op::kPut);
  p.add(3, "a\0"s.substr(0, 1), "k", Op::kDelete);  // same as "a": de-duplicated
  p.add(4, "ab", "k", Op::kPut);
  auto r = flat(p);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].xkey, "\0k"s);
  EXPECT_EQ(r[1].xkey, "a\0k"s);
  EXPECT_EQ(r[1].op, Op::kDelete);
  EXPECT_EQ(r[2].xkey, "ab\0k"s);
}

TEST(PendingSet, KeysWithNulBytesAreKeptWhole) {
  PendingSet p;
  p.add(1, "db", "a\0b"s, Op::kPut);
  p.add(1, "db", "a"s, Op::kPut);
  p.add(1, "db", "a\0"s, Op::kDelete);
  auto r = flat(p);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].xkey, "db\0a"s);
  EXPECT_EQ(r[1].xkey, "db\0a\0"s);
  EXPECT_EQ(r[2].xkey, "db\0a\0b"s);
  std::string_view db, key;
  ASSERT_TRUE(split_xkey(r[2].xkey, &db, &key));
  EXPECT_EQ(key, "a\0b"s);
}

TEST(PendingSet, AppendPutsChildRecordsAfterParents) {
  PendingSet parent, child;
  parent.add(1, "", "p", Op::kPut);
  parent.add(1, "", "both", Op::kPut);
  child.add(1, "", "both", Op::kDelete);
  child.add(2, "db", "c", Op::kPut);
  parent.append(child);
  EXPECT_EQ(parent.size(), 4u);
  std::vector<Flat> want = {
      {"\0both"s, 1, Op::kDelete}, {"\0p"s, 1, Op::kPut}, {"db\0c"s, 2, Op::kPut}};
  EXPECT_EQ(flat(parent), want) << "a committed child's later operation must win";
  // The child is unchanged by being appended.
  EXPECT_EQ(child.size(), 2u);
}

TEST(PendingSet, AppendEmptyAndIntoEmpty) {
  PendingSet a, b;
  a.append(b);
  EXPECT_TRUE(a.empty());
  b.add(1, "x", "y", Op::kPut);
  a.append(b);
  EXPECT_EQ(flat(a), (std::vector<Flat>{{"x\0y"s, 1, Op::kPut}}));
  PendingSet c;
  a.append(c);
  EXPECT_EQ(a.size(), 1u);
}

TEST(PendingSet, AppendKeepsViewsCorrectAfterArenaGrowth) {
  PendingSet parent;
  for (int i = 0; i < 100; ++i) parent.add(1, "db", "p" + std::to_string(i), Op::kPut);
  for (int round = 0; round < 5; ++round) {
    PendingSet child;
    for (int i = 0; i < 100; ++i)
      child.add(1, "db", "c" + std::to_string(round) + "-" + std::string(50, 'x'), Op::kPut);
    parent.append(child);
  }
  auto r = flat(parent);
  ASSERT_EQ(r.size(), 105u);
  for (const auto &f : r) {
    std::string_view db, key;
    ASSERT_TRUE(split_xkey(f.xkey, &db, &key));
    EXPECT_EQ(db, "db");
  }
}

TEST(PendingSet, MarkDbDeletedTurnsThatDatabasesKeysIntoDeletions) {
  PendingSet txn;
  txn.add(2, "db", "", Op::kPut);  // marker: not a key
  txn.add(2, "db", "a", Op::kPut);
  txn.add(2, "db", "b", Op::kDelete);
  txn.add(2, "db", "a", Op::kPut);
  txn.add(3, "dbx", "a", Op::kPut);  // another database whose name starts alike
  txn.add(1, "", "a", Op::kPut);
  PendingSet into;
  txn.mark_db_deleted("db", &into);
  auto r = flat(into);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], (Flat{"db\0a"s, 2, Op::kDelete}));
  EXPECT_EQ(r[1], (Flat{"db\0b"s, 2, Op::kDelete}));
  EXPECT_EQ(txn.size(), 6u) << "mark_db_deleted must not change the source";
}

TEST(PendingSet, MarkDbDeletedOfMainDb) {
  PendingSet txn;
  txn.add(1, "", "a", Op::kPut);
  txn.add(2, "db", "a", Op::kPut);
  PendingSet into;
  txn.mark_db_deleted("", &into);
  EXPECT_EQ(flat(into), (std::vector<Flat>{{"\0a"s, 1, Op::kDelete}}));
}

TEST(PendingSet, MarkDbDeletedIntoSelfCopyAppendsDeletions) {
  // Typical use at a drop: the deletions are added after the earlier puts,
  // so they win at resolve().
  PendingSet txn;
  txn.add(2, "db", "a", Op::kPut);
  PendingSet dels;
  txn.mark_db_deleted("db", &dels);
  txn.append(dels);
  EXPECT_EQ(flat(txn), (std::vector<Flat>{{"db\0a"s, 2, Op::kDelete}}));
}

TEST(PendingSet, ClearEmpties) {
  PendingSet p;
  p.add(1, "", "a", Op::kPut);
  p.clear();
  EXPECT_TRUE(p.empty());
  EXPECT_EQ(p.size(), 0u);
  EXPECT_TRUE(p.resolve().empty());
  p.add(1, "", "b", Op::kDelete);
  EXPECT_EQ(flat(p), (std::vector<Flat>{{"\0b"s, 1, Op::kDelete}}));
}

TEST(PendingSet, RandomAgainstModel) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 50; ++round) {
    PendingSet p;
    std::map<std::string, std::pair<MDB_dbi, Op>> model;
    int n = rng() % 500;
    for (int i = 0; i < n; ++i) {
      std::string db = (rng() % 3 == 0) ? "" : std::string(1, char('a' + rng() % 3));
      std::string key;
      int len = rng() % 4;
      for (int j = 0; j < len; ++j) key.push_back(static_cast<char>(rng() % 4 == 0 ? 0 : rng()));
      Op op = static_cast<Op>(rng() % 3);
      MDB_dbi dbi = rng() % 7;
      p.add(dbi, db, key, op);
      model[make_xkey(db, key)] = {dbi, op};
    }
    std::vector<Flat> want;
    for (auto &[x, v] : model) want.push_back(Flat{x, v.first, v.second});
    // std::map<std::string> orders by char_traits<char>, i.e. unsigned bytes.
    ASSERT_EQ(flat(p), want) << "round " << round;
  }
}

// A database dropped and created again in one transaction: its marker ends
// as a put, and the drop is still known (bookkeeping records it).
TEST(PendingSet, RemembersADeletionOverwrittenLater) {
  PendingSet p;
  p.add(2, "db", "", Op::kDelete);
  p.add(2, "db", "", Op::kPut);
  p.add(2, "db", "k", Op::kPut);
  p.add(3, "other", "", Op::kPut);
  const std::vector<PendingSet::Entry> e = p.resolve();
  ASSERT_EQ(3u, e.size());
  EXPECT_EQ("db\0"s, e[0].xkey);
  EXPECT_EQ(Op::kPut, e[0].op);
  EXPECT_TRUE(e[0].deleted);
  EXPECT_FALSE(e[1].deleted);
  EXPECT_FALSE(e[2].deleted);
}

}  // namespace
}  // namespace trlmdb
