// Range-based set reconciliation of {(key hash, ts)}.
//
// Hashes
//   key_hash(xkey)  = XXH3_64bits(xkey), seed 0.
//   item hash       = XXH3_64bits_withSeed(le64(kh) || ts (12 bytes, on-disk form), kItemSeed)
//   fingerprint     = 0 for an empty range, else XXH3_64bits(le64(sum) || le64(count)) with a
//                     0 result mapped to 1, where sum is the wrapping sum of the item hashes.
//   The sum makes fingerprints of any range a prefix-sum difference; hashing it with the
//   count keeps the 8 bytes on the wire uniform, and reserving 0 for "empty" lets a peer
//   see a one-sided range without a count on the wire.
//
// Ranges
//   The 64-bit hash space is a 4-ary tree: a range at depth d (0..32) is an aligned interval
//   of 2^(64-2d) hashes. Four children cost 32 bytes of fingerprints and cut a range's items
//   by 4; two binary levels would cost the same bytes and twice the rounds, wider fan-outs
//   more bytes.
//
// Payload = one byte 0x10 | flags (high nibble: version 1; flag 0x01 MORE: the sender has
//   carried work over and will send more, so the receiver must answer even with nothing),
//   then records. A record starts with a header byte (type << 6 | depth) and a LEB128 gap;
//   0xFF alone resets the position. The decoder keeps a position p (initially 0, 0..2^64):
//   a record at depth d covers [lo, lo + 2^(64-2d)) with lo = align_up(p, 2^(64-2d)) +
//   gap * 2^(64-2d), after which p = its end. Ranges are thus implicit, a byte or two each.
//   Records (integers little-endian):
//     0 FP     fp(8): the sender's fingerprint of the range.
//     1 SPLIT  4 x fp(8): the sender's fingerprints of the range's four children (d < 32).
//     2 ITEMS  count (LEB128, <= kLeafCap), then per item: the low 8 - floor(2d/8) bytes of
//              kh (the rest is the range's prefix) and the 12-byte ts; sorted by (kh, ts).
//              The sender's whole content of the range. An empty list means "I have
//              nothing here" (or, past kLeafCap colliding items, "send me all of it").
//     3 WANT   ceil(n/8) bytes of bitmap over the n items the receiver listed for this range
//              in an ITEMS record: "send me these key hashes".
//
// Exchange. The initiator sends FP of the whole space. A side receiving a fingerprint
// (alone or as a SPLIT child) compares with its own: equal → settled, nothing sent; the
// peer's is empty → it adds the range to to_send; its own count is 0 or <= kListMax (or the
// range is a single hash) → ITEMS; otherwise SPLIT. A side receiving ITEMS settles the range
// completely: its items the peer lacks or holds older go to to_send (as ranges when they come
// in runs, so a one-sided range is one entry, never a list), the peer's items it lacks or
// holds older are asked for in one WANT. A WANT adds key hashes to to_send. Nothing ever
// waits for an answer, so a side holds no state about what it sent: a record not answered
// is settled. A reply is empty only when the side has nothing to say, no carried work, and
// neither it nor its peer announced MORE; the receiver of the last non-empty payload has
// then settled everything, and its sender had nothing pending: both are done().
//
// Replies stop short of kMaxReply; the unprocessed records stay in a FIFO backlog and the
// reply carries MORE. Output ranges are then no longer increasing, hence the reset record.
//
// Key hash collisions: items sharing a kh are compared as sets of ts. When one side holds
// several, every side holding a version the other lacks sends all of its items of that kh,
// which converges under last-writer-wins per xkey. When each side holds exactly one item of
// a kh, they are taken to be the same xkey and only the newer travels; two distinct xkeys
// with equal 64-bit hashes, each on one side only, are then not both sent (probability about
// n^2 / 2^65, the order of a fingerprint collision, which the scheme accepts anyway).
#include "reconcile.h"

#include <xxhash.h>

#include <algorithm>
#include <deque>

namespace trlmdb::repl {
namespace {

using u128 = unsigned __int128;

constexpr uint8_t kVersionByte = 0x10;
constexpr uint8_t kFlagMore = 0x01;
constexpr uint8_t kReset = 0xFF;
constexpr int kMaxDepth = 32;
// A side lists its items instead of splitting when it holds at most this many: listing an
// item costs ~18 bytes, a split 32 bytes plus another round.
constexpr std::size_t kListMax = 4;
// Beyond this many items on one hash (collisions only), both sides send all of them.
constexpr std::size_t kLeafCap = 1024;
// Largest record one task can emit (ITEMS of kLeafCap items), plus a reset byte.
constexpr std::size_t kMaxRecord = 1 + 1 + 10 + 10 + kLeafCap * (8 + kTsSize);
// Runs of at least this many key hashes to send become one range.
constexpr std::size_t kRunAsRange = 3;
constexpr uint64_t kItemSeed = 0x7472'6c6d'6462'7263ull;  // "trlmdbrc"

enum RecType : uint8_t { kFp = 0, kSplit = 1, kItems = 2, kWant = 3 };

constexpr u128 kSpace = u128(1) << 64;

unsigned shift_of(int depth) { return 64 - 2 * depth; }
uint64_t span_mask(int depth) { return depth >= kMaxDepth ? 0 : ~0ull >> (2 * depth); }
u128 align_up(u128 pos, int depth) {
  unsigned s = shift_of(depth);
  return ((pos + ((u128(1) << s) - 1)) >> s) << s;
}
// Bytes of a kh sent in an ITEMS record at `depth`; the others are the range's prefix.
unsigned suffix_bytes(int depth) { return 8 - (2 * depth) / 8; }

void put_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
uint64_t get_le(const unsigned char *p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

void put_varint(std::string *out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v) {
  uint64_t r = 0;
  for (int i = 0; i < 10; ++i) {
    if (*p == end) return false;
    unsigned char b = *(*p)++;
    if (i == 9 && b > 1) return false;
    r |= uint64_t(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *v = r;
      return true;
    }
  }
  return false;
}

uint64_t item_hash(const ReconItem &it) {
  unsigned char b[8 + kTsSize];
  put_le64(b, it.kh);
  encode_ts(it.ts, b + 8);
  return XXH3_64bits_withSeed(b, sizeof b, kItemSeed);
}

uint64_t fingerprint(uint64_t sum, uint64_t count) {
  if (count == 0) return 0;
  unsigned char b[16];
  put_le64(b, sum);
  put_le64(b + 8, count);
  uint64_t f = XXH3_64bits(b, sizeof b);
  return f ? f : 1;
}

bool item_less(const ReconItem &a, const ReconItem &b) {
  return a.kh != b.kh ? a.kh < b.kh : a.ts < b.ts;
}

// Writes records in range order, emitting a reset when a range starts before the position.
class Writer {
 public:
  explicit Writer(std::string *out) : out_(out) {}
  void header(RecType type, uint64_t lo, int depth) {
    u128 aligned = align_up(pos_, depth);
    if (u128(lo) < aligned) {
      out_->push_back(static_cast<char>(kReset));
      pos_ = 0;
      aligned = 0;
    }
    out_->push_back(static_cast<char>((type << 6) | depth));
    put_varint(out_, static_cast<uint64_t>((u128(lo) - aligned) >> shift_of(depth)));
    pos_ = u128(lo) + (u128(1) << shift_of(depth));
    ++records_;
  }
  void fp(uint64_t v) {
    unsigned char b[8];
    put_le64(b, v);
    out_->append(reinterpret_cast<const char *>(b), 8);
  }
  std::string *out() { return out_; }
  std::size_t records() const { return records_; }

 private:
  std::string *out_;
  u128 pos_ = 0;
  std::size_t records_ = 0;
};

}  // namespace

uint64_t key_hash(std::string_view xkey) { return XXH3_64bits(xkey.data(), xkey.size()); }

ReconSnapshot::ReconSnapshot(std::vector<ReconItem> items) : items_(std::move(items)) {
  std::sort(items_.begin(), items_.end(), item_less);
  prefix_.resize(items_.size() + 1);
  uint64_t sum = 0;
  prefix_[0] = 0;
  for (std::size_t i = 0; i < items_.size(); ++i) {
    sum += item_hash(items_[i]);
    prefix_[i + 1] = sum;
  }
}

bool SendSet::contains(uint64_t kh) const {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), kh,
                             [](uint64_t k, const auto &r) { return k < r.first; });
  if (it != ranges.begin() && std::prev(it)->second >= kh) return true;
  return std::binary_search(keys.begin(), keys.end(), kh);
}

struct Reconciler::Impl {
  // One received record still to answer. kFp: `arg` is the peer's fingerprint. kItems: the
  // peer's items are pool[arg - pool_base, + n).
  struct Task {
    uint64_t lo;
    uint64_t arg;
    uint32_t n;
    uint8_t kind;
    uint8_t depth;
  };

  std::shared_ptr<const ReconSnapshot> snap;
  const std::vector<ReconItem> &items;
  const std::vector<uint64_t> &prefix;
  bool initiator;
  bool started = false;
  bool peer_more = false;
  bool announced_more = false;
  std::deque<Task> backlog;
  std::vector<ReconItem> pool;
  uint64_t pool_base = 0;
  mutable SendSet send;
  mutable bool send_dirty = false;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;

  Impl(std::shared_ptr<const ReconSnapshot> s, bool init)
      : snap(std::move(s)), items(snap->items_), prefix(snap->prefix_), initiator(init) {}

  // Indices [*i, *j) of the items with lo <= kh <= hi, searched within [b, e).
  void span(uint64_t lo, uint64_t hi, std::size_t b, std::size_t e, std::size_t *i,
            std::size_t *j) const {
    auto first = items.begin() + b, last = items.begin() + e;
    auto a = std::lower_bound(first, last, lo,
                              [](const ReconItem &it, uint64_t k) { return it.kh < k; });
    auto z =
        std::upper_bound(a, last, hi, [](uint64_t k, const ReconItem &it) { return k < it.kh; });
    *i = a - items.begin();
    *j = z - items.begin();
  }
  uint64_t fp_of(std::size_t i, std::size_t j) const {
    return fingerprint(prefix[j] - prefix[i], j - i);
  }

  void add_range(uint64_t lo, uint64_t hi) {
    send.ranges.emplace_back(lo, hi);
    send_dirty = true;
  }
  void add_key(uint64_t kh) {
    send.keys.push_back(kh);
    send_dirty = true;
  }

  void emit_items(Writer *w, uint64_t lo, int depth, std::size_t i, std::size_t j) {
    w->header(kItems, lo, depth);
    put_varint(w->out(), j - i);
    unsigned sb = suffix_bytes(depth);
    for (std::size_t k = i; k < j; ++k) {
      unsigned char b[8 + kTsSize];
      put_le64(b, items[k].kh);
      encode_ts(items[k].ts, b + sb);
      w->out()->append(reinterpret_cast<const char *>(b), sb + kTsSize);
    }
  }

  void answer_fp(Writer *w, uint64_t lo, int depth, uint64_t peer_fp) {
    uint64_t hi = lo | span_mask(depth);
    std::size_t i, j;
    span(lo, hi, 0, items.size(), &i, &j);
    if (fp_of(i, j) == peer_fp) return;
    if (peer_fp == 0) {
      add_range(lo, hi);  // the peer has nothing here
      return;
    }
    std::size_t n = j - i;
    if (n <= kListMax || depth == kMaxDepth) {
      if (n > kLeafCap) {
        // Too many colliding items to list: exchange everything on this hash both ways.
        add_range(lo, hi);
        emit_items(w, lo, depth, i, i);
      } else {
        emit_items(w, lo, depth, i, j);
      }
      return;
    }
    w->header(kSplit, lo, depth);
    int cd = depth + 1;
    uint64_t step = span_mask(cd) + 1;
    std::size_t b = i;
    for (int c = 0; c < 4; ++c) {
      uint64_t clo = lo + step * c;
      std::size_t ci, cj;
      span(clo, clo | span_mask(cd), b, j, &ci, &cj);
      w->fp(fp_of(ci, cj));
      b = cj;
    }
  }

  // Settles a range from the peer's full list `p[0, n)` of it.
  void answer_items(Writer *w, uint64_t lo, int depth, const ReconItem *p, std::size_t n) {
    uint64_t hi = lo | span_mask(depth);
    std::size_t i, j;
    span(lo, hi, 0, items.size(), &i, &j);
    std::string want((n + 7) / 8, '\0');
    bool any_want = false;
    // The current run of consecutive (in our order) key hashes we must send, from our item
    // run_start on.
    std::size_t run_start = 0, run_len = 0;
    uint64_t run_last = 0;
    auto flush_run = [&] {
      if (run_len >= kRunAsRange) {
        add_range(items[run_start].kh, run_last);
      } else {
        for (std::size_t k = run_start; k < j && items[k].kh <= run_last; ++k)
          if (k == run_start || items[k - 1].kh != items[k].kh) add_key(items[k].kh);
      }
      run_len = 0;
    };
    std::size_t a = i, b = 0;
    while (a < j || b < n) {
      uint64_t k = a < j && (b == n || items[a].kh <= p[b].kh) ? items[a].kh : p[b].kh;
      std::size_t a_end = a, b_end = b;
      while (a_end < j && items[a_end].kh == k) ++a_end;
      while (b_end < n && p[b_end].kh == k) ++b_end;
      std::size_t ma = a_end - a, pb = b_end - b;
      bool send_it = false, want_it = false;
      if (pb == 0) {
        send_it = true;
      } else if (ma == 0) {
        want_it = true;
      } else if (ma == 1 && pb == 1) {
        send_it = p[b].ts < items[a].ts;
        want_it = items[a].ts < p[b].ts;
      } else {
        // Set differences of two ts-sorted lists.
        std::size_t x = a, y = b;
        while (x < a_end || y < b_end) {
          if (y == b_end || (x < a_end && items[x].ts < p[y].ts)) {
            send_it = true;
            ++x;
          } else if (x == a_end || p[y].ts < items[x].ts) {
            want_it = true;
            ++y;
          } else {
            ++x;
            ++y;
          }
        }
      }
      if (want_it) {
        any_want = true;
        for (std::size_t y = b; y < b_end; ++y) want[y / 8] |= static_cast<char>(1u << (y % 8));
      }
      if (ma > 0) {
        if (send_it) {
          if (run_len == 0) run_start = a;
          run_last = k;
          ++run_len;
        } else if (run_len > 0) {
          flush_run();
        }
      }
      a = a_end;
      b = b_end;
    }
    if (run_len > 0) flush_run();
    if (any_want) {
      w->header(kWant, lo, depth);
      w->out()->append(want);
    }
  }

  bool decode(std::string_view payload, std::vector<Task> *tasks, std::vector<ReconItem> *got,
              std::vector<uint64_t> *wants, std::string *error) const {
    auto fail = [&](const char *why) {
      *error = std::string("reconciliation payload: ") + why;
      return false;
    };
    const auto *p = reinterpret_cast<const unsigned char *>(payload.data());
    const auto *end = p + payload.size();
    ++p;  // flags, checked by the caller
    u128 pos = 0;
    while (p < end) {
      uint8_t h = *p++;
      if (h == kReset) {
        pos = 0;
        continue;
      }
      auto type = static_cast<RecType>(h >> 6);
      int depth = h & 0x3f;
      if (depth > kMaxDepth) return fail("bad depth");
      uint64_t gap;
      if (!get_varint(&p, end, &gap)) return fail("truncated range");
      u128 aligned = align_up(pos, depth);
      unsigned s = shift_of(depth);
      if (aligned >= kSpace || u128(gap) >= ((kSpace - aligned) >> s))
        return fail("range beyond the hash space");
      uint64_t lo = static_cast<uint64_t>(aligned + (u128(gap) << s));
      uint64_t hi = lo | span_mask(depth);
      pos = u128(lo) + (u128(1) << s);
      switch (type) {
        case kFp:
          if (end - p < 8) return fail("truncated fingerprint");
          tasks->push_back({lo, get_le(p, 8), 0, kFp, static_cast<uint8_t>(depth)});
          p += 8;
          break;
        case kSplit: {
          if (depth == kMaxDepth) return fail("split of a single hash");
          if (end - p < 32) return fail("truncated split");
          uint64_t step = span_mask(depth + 1) + 1;
          for (int c = 0; c < 4; ++c, p += 8)
            tasks->push_back(
                {lo + step * c, get_le(p, 8), 0, kFp, static_cast<uint8_t>(depth + 1)});
          break;
        }
        case kItems: {
          uint64_t n;
          if (!get_varint(&p, end, &n)) return fail("truncated item count");
          if (n > kLeafCap) return fail("too many items");
          unsigned sb = suffix_bytes(depth);
          if (uint64_t(end - p) < n * (sb + kTsSize)) return fail("truncated items");
          uint64_t prefix_mask = sb == 8 ? 0 : sb == 0 ? ~0ull : ~0ull << (8 * sb);
          uint64_t offset = pool_base + pool.size() + got->size();
          for (uint64_t k = 0; k < n; ++k) {
            ReconItem it;
            it.kh = (lo & prefix_mask) | get_le(p, sb);
            p += sb;
            if (!parse_ts(std::string_view(reinterpret_cast<const char *>(p), kTsSize), &it.ts))
              return fail("bad timestamp");
            p += kTsSize;
            if (it.kh < lo || it.kh > hi) return fail("item outside its range");
            if (k > 0 && item_less(it, got->back())) return fail("items out of order");
            got->push_back(it);
          }
          tasks->push_back(
              {lo, offset, static_cast<uint32_t>(n), kItems, static_cast<uint8_t>(depth)});
          break;
        }
        case kWant: {
          std::size_t i, j;
          span(lo, hi, 0, items.size(), &i, &j);
          std::size_t n = j - i;
          if (n == 0 || n > kLeafCap) return fail("want of a range never listed");
          std::size_t nb = (n + 7) / 8;
          if (std::size_t(end - p) < nb) return fail("truncated want");
          for (std::size_t k = 0; k < nb * 8; ++k) {
            if (!(p[k / 8] & (1u << (k % 8)))) continue;
            if (k >= n) return fail("want beyond the list");
            wants->push_back(items[i + k].kh);
          }
          p += nb;
          break;
        }
      }
    }
    return true;
  }

  // Answers backlog tasks in order until the reply nears kMaxReply.
  void work(std::string *reply) {
    Writer w(reply);
    uint64_t consumed = pool_base;
    while (!backlog.empty() && reply->size() + kMaxRecord <= kMaxReply) {
      Task t = backlog.front();
      backlog.pop_front();
      if (t.kind == kFp) {
        answer_fp(&w, t.lo, t.depth, t.arg);
      } else {
        answer_items(&w, t.lo, t.depth, pool.data() + (t.arg - pool_base), t.n);
        consumed = t.arg + t.n;
      }
    }
    if (backlog.empty()) {
      pool.clear();
      pool_base = 0;
    } else if (consumed - pool_base > pool.size() / 2) {
      pool.erase(pool.begin(), pool.begin() + (consumed - pool_base));
      pool_base = consumed;
    }
  }

  std::string finish(std::string reply) {
    bool more = !backlog.empty();
    bool has_records = reply.size() > 1;
    if (!has_records && !more && !peer_more && !announced_more) {
      reply.clear();
    } else {
      reply[0] = static_cast<char>(kVersionByte | (more ? kFlagMore : 0));
    }
    announced_more = more;
    bytes_out += reply.size();
    return reply;
  }

  void finalize_send() const {
    if (!send_dirty) return;
    auto &r = send.ranges;
    std::sort(r.begin(), r.end());
    std::size_t o = 0;
    for (std::size_t k = 0; k < r.size(); ++k) {
      if (o > 0 && (r[o - 1].second == ~0ull || r[k].first <= r[o - 1].second + 1)) {
        r[o - 1].second = std::max(r[o - 1].second, r[k].second);
      } else {
        r[o++] = r[k];
      }
    }
    r.resize(o);
    auto &keys = send.keys;
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    SendSet only_ranges;
    only_ranges.ranges = r;
    keys.erase(std::remove_if(keys.begin(), keys.end(),
                              [&](uint64_t k) { return only_ranges.contains(k); }),
               keys.end());
    send_dirty = false;
  }
};

Reconciler::Reconciler(std::shared_ptr<const ReconSnapshot> snapshot, bool initiator)
    : impl_(std::make_unique<Impl>(std::move(snapshot), initiator)) {}

Reconciler::~Reconciler() = default;

std::string Reconciler::start() {
  if (!impl_->initiator || impl_->started) return {};
  impl_->started = true;
  std::string out(1, static_cast<char>(kVersionByte));
  Writer w(&out);
  w.header(kFp, 0, 0);
  w.fp(impl_->fp_of(0, impl_->items.size()));
  impl_->announced_more = false;
  impl_->bytes_out += out.size();
  return out;
}

bool Reconciler::on_message(std::string_view payload, std::string *reply, std::string *error) {
  reply->clear();
  Impl &m = *impl_;
  m.bytes_in += payload.size();
  if (payload.empty()) {
    *error = "reconciliation payload: empty";
    return false;
  }
  if (payload.size() > kMaxReply) {
    *error = "reconciliation payload: too large";
    return false;
  }
  auto flags = static_cast<uint8_t>(payload[0]);
  if ((flags & ~kFlagMore) != kVersionByte) {
    *error = "reconciliation payload: unknown version or flags";
    return false;
  }
  std::vector<Impl::Task> tasks;
  std::vector<ReconItem> got;
  std::vector<uint64_t> wants;
  if (!m.decode(payload, &tasks, &got, &wants, error)) return false;

  // An honest exchange answers each payload before the next arrives, so
  // what waits here stays far below these bounds; a peer that keeps sending
  // work without reading the answers is cut off instead of growing memory.
  constexpr std::size_t kMaxBacklog = 1u << 20, kMaxPool = 2u << 20;
  if (m.backlog.size() + tasks.size() > kMaxBacklog || m.pool.size() + got.size() > kMaxPool) {
    *error = "reconciliation payload: more pending work than the limit";
    return false;
  }
  m.started = true;
  m.peer_more = flags & kFlagMore;
  m.pool.insert(m.pool.end(), got.begin(), got.end());
  m.backlog.insert(m.backlog.end(), tasks.begin(), tasks.end());
  for (uint64_t k : wants) m.add_key(k);

  std::string out(1, '\0');
  m.work(&out);
  *reply = m.finish(std::move(out));
  return true;
}

bool Reconciler::done() const {
  return impl_->started && impl_->backlog.empty() && !impl_->peer_more;
}

const SendSet &Reconciler::to_send() const {
  impl_->finalize_send();
  return impl_->send;
}

uint64_t Reconciler::bytes_out() const { return impl_->bytes_out; }
uint64_t Reconciler::bytes_in() const { return impl_->bytes_in; }

}  // namespace trlmdb::repl
