// Range-based set reconciliation: the exchange terminates with both sides done, the
// entries each side sends make the two sets equal under last-writer-wins, and the bytes
// grow with the differences, not with the sets.
#include "reconcile.h"

#include <gtest/gtest.h>
#include <time.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <random>

namespace trlmdb::repl {
namespace {

// One side's data: xkey (an id) → (key hash, ts), sorted by id. Key hashes may collide
// across ids, as distinct xkeys' hashes can.
struct Entry {
  uint64_t id;
  uint64_t kh;
  Ts ts;
  bool operator==(const Entry &) const = default;
};
using Side = std::vector<Entry>;

uint64_t hash_id(uint64_t id) {
  return key_hash(std::string_view(reinterpret_cast<char *>(&id), 8));
}

std::shared_ptr<const ReconSnapshot> snapshot_of(const Side &s) {
  std::vector<ReconItem> items;
  items.reserve(s.size());
  for (const Entry &e : s) items.push_back({e.kh, e.ts});
  return std::make_shared<const ReconSnapshot>(std::move(items));
}

void sort_side(Side *s) {
  std::sort(s->begin(), s->end(), [](const Entry &a, const Entry &b) { return a.id < b.id; });
}

// What the caller does after reconciliation: send every local entry the set names, and
// the receiver keeps the newer version of each xkey.
std::size_t push(const Side &from, const SendSet &set, Side *to) {
  std::size_t sent = 0;
  Side added;
  for (const Entry &e : from) {
    if (!set.contains(e.kh)) continue;
    ++sent;
    auto it = std::lower_bound(to->begin(), to->end(), e.id,
                               [](const Entry &x, uint64_t id) { return x.id < id; });
    if (it != to->end() && it->id == e.id) {
      if (it->ts < e.ts) *it = e;
    } else {
      added.push_back(e);
    }
  }
  to->insert(to->end(), added.begin(), added.end());
  sort_side(to);
  return sent;
}

struct Outcome {
  std::unique_ptr<Reconciler> init, acc;
  int messages = 0;  // non-empty payloads, both ways
  uint64_t bytes = 0;
  std::size_t max_payload = 0;
  bool saw_more = false;
  bool ok = false;
};

// Runs the exchange as the caller does: start() from the initiator, then every payload
// to the other side until one side has nothing to reply.
Outcome exchange(std::shared_ptr<const ReconSnapshot> a, std::shared_ptr<const ReconSnapshot> b) {
  Outcome o;
  o.init = std::make_unique<Reconciler>(a, true);
  o.acc = std::make_unique<Reconciler>(b, false);
  std::string msg = o.init->start();
  Reconciler *to = o.acc.get(), *from = o.init.get();
  while (!msg.empty()) {
    ++o.messages;
    o.bytes += msg.size();
    o.max_payload = std::max(o.max_payload, msg.size());
    o.saw_more |= (static_cast<uint8_t>(msg[0]) & 1) != 0;
    if (o.messages > 100000) {
      ADD_FAILURE() << "exchange does not terminate";
      return o;
    }
    std::string reply, error;
    if (!to->on_message(msg, &reply, &error)) {
      ADD_FAILURE() << "rejected own payload: " << error;
      return o;
    }
    msg = std::move(reply);
    std::swap(to, from);
  }
  EXPECT_TRUE(o.init->done());
  EXPECT_TRUE(o.acc->done());
  EXPECT_EQ(o.init->bytes_out(), o.acc->bytes_in());
  EXPECT_EQ(o.acc->bytes_out(), o.init->bytes_in());
  EXPECT_EQ(o.init->bytes_out() + o.acc->bytes_out(), o.bytes);
  EXPECT_LE(o.max_payload, Reconciler::kMaxReply);
  o.ok = o.init->done() && o.acc->done();
  return o;
}

struct Converged {
  std::size_t sent_a = 0, sent_b = 0;
};

// Reconciles a (initiator) with b and checks that pushing each side's to_send makes them
// equal.
Converged reconcile_and_check(Side a, Side b, Outcome *out = nullptr) {
  sort_side(&a);
  sort_side(&b);
  Outcome o = exchange(snapshot_of(a), snapshot_of(b));
  Converged c;
  if (!o.ok) return c;
  const Side a0 = a, b0 = b;
  c.sent_a = push(a0, o.init->to_send(), &b);
  c.sent_b = push(b0, o.acc->to_send(), &a);
  EXPECT_TRUE(a == b) << "sets differ after catch-up: " << a.size() << " vs " << b.size();
  if (out) *out = std::move(o);
  return c;
}

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

Ts make_ts(uint64_t t, std::mt19937_64 &rng) {
  return Ts{t, static_cast<uint32_t>((rng() % 5 + 1) << 8 | (rng() % 4 == 0 ? kOpDelete : kOpPut))};
}

TEST(ReconcileTest, KeyHashIsXxh3OfTheXkey) {
  std::string x = make_xkey("db", "key");
  EXPECT_EQ(key_hash(x), XXH3_64bits(x.data(), x.size()));
  EXPECT_NE(key_hash(make_xkey("db", "key")), key_hash(make_xkey("db", "kez")));
}

TEST(ReconcileTest, SendSetContains) {
  SendSet s;
  EXPECT_TRUE(s.empty());
  s.ranges = {{10, 20}, {30, 30}, {100, ~0ull}};
  s.keys = {5, 25, 50};
  EXPECT_FALSE(s.empty());
  for (uint64_t k : {5ull, 10ull, 15ull, 20ull, 25ull, 30ull, 50ull, 100ull, ~0ull})
    EXPECT_TRUE(s.contains(k)) << k;
  for (uint64_t k : {0ull, 4ull, 6ull, 9ull, 21ull, 29ull, 31ull, 51ull, 99ull})
    EXPECT_FALSE(s.contains(k)) << k;
}

TEST(ReconcileTest, IdenticalSetsCostOneSmallPayload) {
  std::mt19937_64 rng(1);
  Side a;
  for (uint64_t id = 0; id < 100000; ++id) a.push_back({id, hash_id(id), make_ts(id + 1, rng)});
  Outcome o;
  Converged c = reconcile_and_check(a, a, &o);
  EXPECT_EQ(o.messages, 1);
  EXPECT_LE(o.bytes, 16u);
  EXPECT_TRUE(o.init->to_send().empty());
  EXPECT_TRUE(o.acc->to_send().empty());
  EXPECT_EQ(c.sent_a + c.sent_b, 0u);
}

TEST(ReconcileTest, EmptySetsAreIdentical) {
  Outcome o;
  reconcile_and_check({}, {}, &o);
  EXPECT_EQ(o.messages, 1);
}

TEST(ReconcileTest, EmptyAgainstAMillionSendsOneRange) {
  std::mt19937_64 rng(2);
  Side full;
  for (uint64_t id = 0; id < 1000000; ++id) full.push_back({id, hash_id(id), make_ts(id + 1, rng)});
  for (bool full_initiates : {true, false}) {
    SCOPED_TRACE(full_initiates ? "full side initiates" : "empty side initiates");
    Outcome o;
    Converged c =
        full_initiates ? reconcile_and_check(full, {}, &o) : reconcile_and_check({}, full, &o);
    const SendSet &fs = full_initiates ? o.init->to_send() : o.acc->to_send();
    const SendSet &es = full_initiates ? o.acc->to_send() : o.init->to_send();
    EXPECT_EQ(fs.ranges.size(), 1u);
    EXPECT_TRUE(fs.keys.empty());
    EXPECT_TRUE(es.empty());
    EXPECT_LE(o.bytes, 32u);
    EXPECT_LE(o.messages, 2);
    EXPECT_EQ(c.sent_a + c.sent_b, full.size());
  }
}

// The figure: 1,000,000 keys, 1,000 differing.
TEST(ReconcileTest, MillionKeysThousandDifferences) {
  constexpr uint64_t kN = 1000000, kDiff = 1000;
  std::mt19937_64 rng(3);
  Side a;
  a.reserve(kN + kDiff);
  uint64_t t = 1;
  for (uint64_t id = 0; id < kN; ++id) a.push_back({id, hash_id(id), make_ts(t++, rng)});
  Side b = a;
  // A quarter each: only on a, only on b, newer on a, newer on b.
  std::vector<uint64_t> ids(kN);
  for (uint64_t i = 0; i < kN; ++i) ids[i] = i;
  std::shuffle(ids.begin(), ids.end(), rng);
  uint64_t next_id = kN;
  for (uint64_t k = 0; k < kDiff / 4; ++k) {
    uint64_t id = next_id++;
    a.push_back({id, hash_id(id), make_ts(t++, rng)});
    id = next_id++;
    b.push_back({id, hash_id(id), make_ts(t++, rng)});
    a[ids[2 * k]].ts = make_ts(t++, rng);
    b[ids[2 * k + 1]].ts = make_ts(t++, rng);
  }
  double c0 = cpu_seconds();
  auto sa = snapshot_of(a), sb = snapshot_of(b);
  double c1 = cpu_seconds();
  Outcome o = exchange(sa, sb);
  double c2 = cpu_seconds();
  ASSERT_TRUE(o.ok);

  sort_side(&a);
  sort_side(&b);
  const Side a0 = a, b0 = b;
  std::size_t sent = push(a0, o.init->to_send(), &b);
  sent += push(b0, o.acc->to_send(), &a);
  EXPECT_TRUE(a == b);

  constexpr uint64_t kEntryBytes = 16 + 12 + 100 + 8;
  uint64_t total = o.bytes + sent * kEntryBytes;
  uint64_t budget = 3 * kDiff * kEntryBytes + 100000;
  std::printf(
      "1M/1000: %d payloads (%d round trips), %llu payload bytes (%.1f per difference), "
      "%zu entries sent, total %llu bytes of budget %llu; snapshots %.3f s CPU, "
      "reconciliation %.3f s CPU; snapshot memory %zu bytes\n",
      o.messages, (o.messages + 1) / 2, static_cast<unsigned long long>(o.bytes),
      double(o.bytes) / kDiff, sent, static_cast<unsigned long long>(total),
      static_cast<unsigned long long>(budget), c1 - c0, c2 - c1, sa->memory_bytes());
  EXPECT_EQ(sent, kDiff);  // exactly the differing entries travel, once
  EXPECT_LE(total, budget);
  EXPECT_LE(o.bytes, 250 * kDiff);
  EXPECT_LT(c2 - c1, 1.0);
}

// Many random pairs of sets, small and medium, with one-sided keys, re-stamps on either or
// both sides, keys created on both sides independently, key hashes clustered in a corner of
// the space, and forced collisions: several xkeys sharing a key hash.
TEST(ReconcileTest, RandomSetsConverge) {
  for (uint64_t seed = 0; seed < 400; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    std::size_t n = seed % 4 == 0 ? rng() % 12 : seed % 4 == 3 ? rng() % 6000 : rng() % 300;
    std::size_t diffs = rng() % (seed % 5 == 0 ? n + 2 : n / 10 + 3);
    bool clustered = seed % 3 == 1;  // hashes near 0: deep ranges
    int collide_pct = seed % 4 == 2 ? 30 : 3;
    uint64_t t = 1, next_id = 0;
    auto fresh_kh = [&](uint64_t id) { return clustered ? hash_id(id) >> 22 : hash_id(id); };
    Side base;
    for (std::size_t i = 0; i < n; ++i) {
      uint64_t id = next_id++;
      uint64_t kh = !base.empty() && int(rng() % 100) < collide_pct ? base[rng() % base.size()].kh
                                                                    : fresh_kh(id);
      base.push_back({id, kh, make_ts(t++, rng)});
    }
    Side a = base, b = base;
    for (std::size_t d = 0; d < diffs; ++d) {
      int kind = rng() % 6;
      if (base.empty() && kind >= 2) kind %= 2;
      // New keys may join a hash shared with a key both sides know (a collision each
      // side can see), never one created on the other side alone.
      auto new_kh = [&](uint64_t id) {
        return !base.empty() && int(rng() % 100) < collide_pct ? base[rng() % base.size()].kh
                                                               : fresh_kh(id);
      };
      uint64_t id = next_id++;
      switch (kind) {
        case 0:
          a.push_back({id, new_kh(id), make_ts(t++, rng)});
          break;
        case 1:
          b.push_back({id, new_kh(id), make_ts(t++, rng)});
          break;
        case 2: {
          Entry &e = a[rng() % base.size()];
          e.ts = make_ts(t++, rng);
          break;
        }
        case 3: {
          Entry &e = b[rng() % base.size()];
          e.ts = make_ts(t++, rng);
          break;
        }
        case 4: {
          std::size_t k = rng() % base.size();
          a[k].ts = make_ts(t++, rng);
          b[k].ts = make_ts(t++, rng);
          break;
        }
        case 5: {
          uint64_t kh = new_kh(id);
          a.push_back({id, kh, make_ts(t++, rng)});
          b.push_back({id, kh, make_ts(t++, rng)});
          break;
        }
      }
    }
    Outcome o;
    Converged c = seed % 2 ? reconcile_and_check(a, b, &o) : reconcile_and_check(b, a, &o);
    if (!o.ok) return;
    // Equal sets cost one payload and send nothing.
    Side sa = a, sb = b;
    sort_side(&sa);
    sort_side(&sb);
    if (sa == sb) {
      EXPECT_EQ(o.messages, 1);
      EXPECT_EQ(c.sent_a + c.sent_b, 0u);
    }
  }
}

// A payload flagged MORE must be answered even when there is nothing to say, and the
// side is not done until the peer's flag drops.
TEST(ReconcileTest, MoreFlagKeepsTheExchangeOpen) {
  std::mt19937_64 rng(7);
  Side s;
  for (uint64_t id = 0; id < 100; ++id) s.push_back({id, hash_id(id), make_ts(id + 1, rng)});
  auto snap = snapshot_of(s);
  std::string first = Reconciler(snap, true).start();
  first[0] = static_cast<char>(first[0] | 1);
  Reconciler acc(snap, false);
  std::string reply, error;
  ASSERT_TRUE(acc.on_message(first, &reply, &error)) << error;
  EXPECT_EQ(reply, std::string("\x10", 1));
  EXPECT_FALSE(acc.done());
  ASSERT_TRUE(acc.on_message(std::string("\x10", 1), &reply, &error)) << error;
  EXPECT_TRUE(reply.empty());
  EXPECT_TRUE(acc.done());
  EXPECT_TRUE(acc.to_send().empty());
}

// More than kMaxReply of work: replies are split, the exchange still ends with both sides
// done and the sets equal.
TEST(ReconcileTest, LargeDifferencesAreSplitAcrossRounds) {
  std::mt19937_64 rng(4);
  Side a, b;
  uint64_t t = 1;
  for (uint64_t id = 0; id < 150000; ++id) {
    a.push_back({id, hash_id(id), make_ts(t++, rng)});
    b.push_back({id + 150000, hash_id(id + 150000), make_ts(t++, rng)});
  }
  // Plus a shared part where every key is newer on one side or the other.
  for (uint64_t id = 300000; id < 400000; ++id) {
    a.push_back({id, hash_id(id), make_ts(t++, rng)});
    b.push_back({id, hash_id(id), make_ts(t++, rng)});
    if (rng() % 2) std::swap(a.back().ts, b.back().ts);
  }
  Outcome o;
  Converged c = reconcile_and_check(a, b, &o);
  EXPECT_TRUE(o.saw_more);
  EXPECT_GT(o.max_payload, Reconciler::kMaxReply / 2);
  EXPECT_EQ(c.sent_a + c.sent_b, 400000u);
  std::printf("400k differences: %d payloads, %llu bytes, largest %zu\n", o.messages,
              static_cast<unsigned long long>(o.bytes), o.max_payload);
}

// Beyond the listing cap on a single key hash, both sides send all of its entries.
TEST(ReconcileTest, HugeCollisionGroup) {
  std::mt19937_64 rng(5);
  Side a;
  uint64_t t = 1;
  for (uint64_t id = 0; id < 3000; ++id) a.push_back({id, 42, make_ts(t++, rng)});
  for (uint64_t id = 3000; id < 6000; ++id) a.push_back({id, hash_id(id), make_ts(t++, rng)});
  Side b = a;
  b[17].ts = make_ts(t++, rng);
  a[4000].ts = make_ts(t++, rng);
  b.push_back({7000, 42, make_ts(t++, rng)});
  reconcile_and_check(a, b);
  reconcile_and_check(b, a);
}

TEST(ReconcileTest, MalformedPayloadsAreRejected) {
  std::mt19937_64 rng(6);
  Side s;
  for (uint64_t id = 0; id < 2000; ++id) s.push_back({id, hash_id(id), make_ts(id + 1, rng)});
  auto snap = snapshot_of(s);
  auto bad = [&](std::string payload) {
    Reconciler r(snap, false);
    std::string reply, error;
    EXPECT_FALSE(r.on_message(payload, &reply, &error)) << testing::PrintToString(payload);
    EXPECT_FALSE(error.empty());
    EXPECT_TRUE(reply.empty());
  };
  bad("");
  bad(std::string("\x20", 1));                                    // unknown version
  bad(std::string("\x12", 1));                                    // unknown flag
  bad(std::string("\x10\x21\x00", 3));                            // depth 33
  bad(std::string("\x10\x00\x00\x01\x02", 5));                    // truncated fingerprint
  bad(std::string("\x10\x00\x01", 3) + std::string(8, 'x'));      // gap past the space
  bad(std::string("\x10\x60\x00", 3) + std::string(32, 'x'));     // split at depth 32
  bad(std::string("\x10\x80\x00\x01", 4) + std::string(8, 'x'));  // truncated item
  {
    std::string items("\x10\x80\x00\x01", 4);
    items += std::string(8, 'x') + std::string(11, '\0') + '\x07';  // op byte 7
    bad(items);
  }
  bad(std::string("\x10\xC0\x00", 3));  // want of a range holding 2000 items
  bad(std::string(Reconciler::kMaxReply + 1, '\x10'));
  // Random garbage after a valid header never crashes.
  for (int k = 0; k < 2000; ++k) {
    std::string p(1, '\x10');
    std::size_t len = rng() % 64;
    for (std::size_t i = 0; i < len; ++i) p.push_back(static_cast<char>(rng()));
    Reconciler r(snap, false);
    std::string reply, error;
    if (!r.on_message(p, &reply, &error)) {
      EXPECT_FALSE(error.empty());
    }
    EXPECT_LE(reply.size(), Reconciler::kMaxReply);
  }
  // Truncations of a real reply are rejected or harmless, never a crash.
  Side other = s;
  for (int k = 0; k < 50; ++k) other[rng() % other.size()].ts = make_ts(10000 + k, rng);
  Reconciler i(snapshot_of(other), true), r(snap, false);
  std::string reply, error;
  ASSERT_TRUE(r.on_message(i.start(), &reply, &error));
  ASSERT_FALSE(reply.empty());
  for (std::size_t cut = 1; cut < reply.size(); ++cut) {
    Reconciler fresh(snapshot_of(other), true);
    fresh.start();
    std::string r2, e2;
    fresh.on_message(std::string_view(reply).substr(0, cut), &r2, &e2);
  }
  // Nor are corrupted bytes.
  for (int k = 0; k < 500; ++k) {
    std::string p = reply;
    p[1 + rng() % (p.size() - 1)] ^= static_cast<char>(1u << (rng() % 8));
    Reconciler fresh(snapshot_of(other), true);
    fresh.start();
    std::string r2, e2;
    if (fresh.on_message(p, &r2, &e2)) {
      EXPECT_LE(r2.size(), Reconciler::kMaxReply);
    } else {
      EXPECT_FALSE(e2.empty());
    }
  }
}

}  // namespace
}  // namespace trlmdb::repl
