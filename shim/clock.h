// Hybrid logical clock (DESIGN.md section 2). Every timestamp it issues is
// greater than every timestamp it issued or observed before, and equals the
// wall clock whenever the wall clock is ahead. Persistence across restarts is
// the caller's business (the meta database's "clock" high-water mark).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>

namespace trlmdb {

// Wall clock as seconds<<32 | fraction (units of 2^-32 s).
uint64_t wall_clock_now();

class HybridClock {
 public:
  using WallFn = std::function<uint64_t()>;

  // `shift` is added to every wall-clock reading; only tests set it (see
  // TRLMDB_TEST_CLOCK_SHIFT_MS).
  explicit HybridClock(WallFn wall = wall_clock_now, int64_t shift = 0)
      : wall_(std::move(wall)), shift_(shift) {}

  // Raises the high-water mark to at least `t` (a received or persisted time).
  void observe(uint64_t t);
  // Issues `n` consecutive strictly increasing times; returns the first.
  uint64_t issue(uint64_t n = 1);
  uint64_t high_water() const;
  void set_shift(int64_t shift);

 private:
  WallFn wall_;
  int64_t shift_;
  mutable std::mutex mu_;
  uint64_t last_ = 0;
};

// Converts milliseconds to clock units (2^-32 s), for the test-only shift.
int64_t clock_units_from_ms(int64_t ms);

}  // namespace trlmdb
