// Reconciliation items built from a seed, shared by fuzz_reconcile and the
// corpus generator, which must build the very snapshots the target builds.
#pragma once

#include <cstdint>

#include "format.h"
#include "fuzz_util.h"

namespace trlmdb::fuzz {

// Key hashes spread over the whole space, or crowded under a shared prefix
// (deep splits) and onto a few values (collisions), as the input chooses.
inline uint64_t make_kh(uint64_t *rng, uint8_t shape) {
  uint64_t kh = splitmix64(rng);
  switch (shape & 3) {
    case 1:  // a 48-bit common prefix: ranges split down to depth 24 and more
      kh = 0x5a5a'0000'0000'0000ull | (kh & 0xffff);
      break;
    case 2:  // a handful of values: collisions
      kh = 0x1234'5678'9abc'de00ull | (kh & 3);
      break;
    case 3:  // the ends of the space
      kh = (kh & 1) ? ~0ull - (kh >> 60) : (kh >> 60);
      break;
  }
  return kh;
}

inline Ts make_ts(uint64_t *rng) {
  uint64_t r = splitmix64(rng);
  return Ts{0x6500'0000'0000'0000ull + (r & 0xffff), static_cast<uint32_t>(r >> 32) & ~0xfeu};
}

}  // namespace trlmdb::fuzz
