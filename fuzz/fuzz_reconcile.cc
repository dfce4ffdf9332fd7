// Set reconciliation (replicator/reconcile.cc). Two modes, chosen by the
// first byte:
//  0 adversarial: a Reconciler over a small snapshot built from a seed in the
//    input is fed the rest as several payloads. on_message refuses or
//    answers, never reads out of bounds, never replies more than kMaxReply,
//    and to_send() stays sorted and disjoint.
//  1 honest: two snapshots derived from the input reconcile with each other
//    as two replicators would. The exchange ends within a bound, both sides
//    are done(), and for every key hash the side holding the newest stamp
//    sends it (what last-writer-wins convergence needs).
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "recon_items.h"
#include "reconcile.h"

using namespace trlmdb;
using namespace trlmdb::repl;
using trlmdb::fuzz::check;
using trlmdb::fuzz::make_kh;
using trlmdb::fuzz::make_ts;

namespace {

void check_send_set(const SendSet &s) {
  for (std::size_t i = 0; i < s.ranges.size(); ++i) {
    check(s.ranges[i].first <= s.ranges[i].second, "inverted send range");
    if (i > 0) check(s.ranges[i - 1].second < s.ranges[i].first, "send ranges overlap or unsorted");
  }
  for (std::size_t i = 0; i < s.keys.size(); ++i) {
    if (i > 0) check(s.keys[i - 1] < s.keys[i], "send keys unsorted or repeated");
  }
}

void check_reply(const std::string &reply) {
  check(reply.size() <= Reconciler::kMaxReply, "reply larger than kMaxReply");
  if (!reply.empty()) {
    auto v = static_cast<uint8_t>(reply[0]);
    check(v == 0x10 || v == 0x11, "reply without the version byte");
  }
}

void adversarial(uint8_t ctl, fuzz::Cursor &in) {
  uint64_t rng = in.u64();
  std::size_t n = in.byte();
  std::vector<ReconItem> items;
  for (std::size_t i = 0; i < n; ++i) items.push_back({make_kh(&rng, ctl >> 2), make_ts(&rng)});
  auto snap = std::make_shared<const ReconSnapshot>(std::move(items));
  Reconciler r(snap, ctl & 2);
  if (ctl & 2) check_reply(r.start());
  std::string reply, error;
  while (!in.empty()) {
    std::string_view payload = in.piece();
    reply = "stale";
    error.clear();
    if (r.on_message(payload, &reply, &error)) {
      check_reply(reply);
    } else {
      check(!error.empty(), "refused payload without a reason");
      check(reply.empty(), "refused payload with a reply");
    }
    r.done();
  }
  check_send_set(r.to_send());
}

struct Side {
  std::vector<ReconItem> items;
  std::map<uint64_t, Ts> newest;  // per key hash
  void add(const ReconItem &it) {
    items.push_back(it);
    auto [pos, fresh] = newest.emplace(it.kh, it.ts);
    if (!fresh && pos->second < it.ts) pos->second = it.ts;
  }
};

void honest(uint8_t ctl, fuzz::Cursor &in) {
  uint64_t rng = in.u64();
  std::size_t n = in.byte() + 4 * std::size_t{in.byte()};
  Side a, b;
  // One byte per item says who holds which version: most items are common.
  for (std::size_t i = 0; i < n; ++i) {
    ReconItem it{make_kh(&rng, ctl >> 2), make_ts(&rng)};
    ReconItem older = it;
    older.ts.time -= 1 + (fuzz::splitmix64(&rng) & 0xff);
    switch (in.byte() % 8) {
      case 0:
        a.add(it);
        break;
      case 1:
        b.add(it);
        break;
      case 2:
        a.add(it);
        b.add(older);
        break;
      case 3:
        a.add(older);
        b.add(it);
        break;
      case 4:  // a version one side keeps besides a common one (collisions)
        a.add(it);
        a.add(older);
        b.add(it);
        break;
      default:
        a.add(it);
        b.add(it);
    }
  }
  auto ra = std::make_unique<Reconciler>(std::make_shared<const ReconSnapshot>(a.items), true);
  auto rb = std::make_unique<Reconciler>(std::make_shared<const ReconSnapshot>(b.items), false);
  std::string msg = ra->start(), reply, error;
  Reconciler *to = rb.get(), *from = ra.get();
  int rounds = 0;
  while (!msg.empty()) {
    check(++rounds < 2000, "reconciliation does not end");
    check_reply(msg);
    check(to->on_message(msg, &reply, &error), "honest payload refused", error);
    msg.swap(reply);
    std::swap(to, from);
  }
  check(ra->done() && rb->done(), "exchange ended but a side is not done");
  const SendSet &sa = ra->to_send(), &sb = rb->to_send();
  check_send_set(sa);
  check_send_set(sb);
  for (const auto &[kh, ts] : a.newest) {
    auto it = b.newest.find(kh);
    if (it == b.newest.end() || it->second < ts) check(sa.contains(kh), "newer entry not sent");
  }
  for (const auto &[kh, ts] : b.newest) {
    auto it = a.newest.find(kh);
    if (it == a.newest.end() || it->second < ts) check(sb.contains(kh), "newer entry not sent");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
  fuzz::Cursor in(data, size);
  uint8_t ctl = in.byte();
  if (ctl & 1) {
    honest(ctl, in);
  } else {
    adversarial(ctl, in);
  }
  return 0;
}
