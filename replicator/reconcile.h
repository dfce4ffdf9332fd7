// Catch-up by range-based set reconciliation of _trlmdb_time (DESIGN.md
// section 3). Pure code: no I/O, no LMDB.
//
// The set is {(xkey, ts)}. Items are ordered by a 64-bit hash of the xkey
// (`key_hash`), so ranges are intervals of the hash space: their bounds are
// implicit (no keys on the wire) and, hashes being uniform, ranges split
// evenly. A range's fingerprint combines its items' hashes of (key hash, ts),
// so it changes when any item is added, removed or re-stamped. Differing
// ranges are split until they are small; small ranges are listed as
// (key hash, ts) pairs, from which each side decides which of its entries
// the other lacks or holds in an older version. Only those entries are then
// sent in full (by the caller, from `Reconciler::to_send()`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "format.h"

namespace trlmdb::repl {

// XXH3_64bits (seed 0) of the xkey's bytes. Part of the protocol: both
// sides must order and range items identically, so this never changes
// without a protocol version change.
uint64_t key_hash(std::string_view xkey);

struct ReconItem {
  uint64_t kh = 0;  // key_hash(xkey)
  Ts ts;
};

// An immutable, sorted copy of one side's (key hash, ts) set.
class ReconSnapshot {
 public:
  // Sorts `items` by kh (ties: ts); duplicates of a kh are kept (hash
  // collisions are possible, merely improbable).
  explicit ReconSnapshot(std::vector<ReconItem> items);
  std::size_t size() const { return items_.size(); }
  const std::vector<ReconItem> &items() const { return items_; }
  std::size_t memory_bytes() const {
    return items_.capacity() * sizeof(ReconItem) + prefix_.capacity() * sizeof(uint64_t);
  }

 private:
  friend class Reconciler;
  std::vector<ReconItem> items_;
  // prefix_[i]: wrapping sum of the item hashes of items_[0, i), so a range's
  // fingerprint costs two binary searches and a subtraction.
  std::vector<uint64_t> prefix_;
};

// What one side must send in full once reconciliation is done: every local
// entry whose key hash lies in one of `ranges` (inclusive [lo, hi]; sorted,
// disjoint) or equals one of `keys` (sorted, unique). `contains` binary
// searches and relies on that order.
struct SendSet {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  std::vector<uint64_t> keys;
  bool contains(uint64_t kh) const;
  bool empty() const { return ranges.empty() && keys.empty(); }
};

class Reconciler {
 public:
  Reconciler(std::shared_ptr<const ReconSnapshot> snapshot, bool initiator);
  ~Reconciler();

  // The initiator's first message payload; empty for the acceptor.
  std::string start();
  // Handles one payload from the peer. Sets *reply to the payload to send
  // back (empty: nothing to send). False on a malformed payload (*error
  // says why; nothing of it was acted on). Payloads are bounded: a reply
  // never exceeds kMaxReply bytes; work beyond that is carried in later
  // replies. An empty reply ends the exchange: both sides are then done()
  // and only the side that produced it knows, so the caller tells the peer
  // (kCatchupDone or the like).
  bool on_message(std::string_view payload, std::string *reply, std::string *error);
  // True once this side has nothing more to ask or answer: if the peer's
  // answer to our last payload is empty (or the peer ends the exchange),
  // to_send() is complete.
  bool done() const;
  // Local entries the peer lacks or holds older; valid once done().
  const SendSet &to_send() const;

  // Bytes of payloads produced and consumed, for the catch-up figures.
  uint64_t bytes_out() const;
  uint64_t bytes_in() const;

  static constexpr std::size_t kMaxReply = 1u << 20;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace trlmdb::repl
