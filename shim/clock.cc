#include "clock.h"

#include <time.h>

#include <algorithm>

namespace trlmdb {

uint64_t wall_clock_now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t frac = (static_cast<uint64_t>(ts.tv_nsec) << 32) / 1000000000u;
  return (static_cast<uint64_t>(ts.tv_sec) << 32) | frac;
}

int64_t clock_units_from_ms(int64_t ms) {
  // 2^32 units per second; split to keep precision without overflow. The
  // clamp (about 34 years) keeps any strtoll result in range.
  ms = std::clamp<int64_t>(ms, -(int64_t{1} << 40), int64_t{1} << 40);
  return (ms / 1000) * (int64_t{1} << 32) + ((ms % 1000) * (int64_t{1} << 32)) / 1000;
}

void HybridClock::observe(uint64_t t) {
  std::lock_guard lock(mu_);
  if (t > last_) last_ = t;
}

uint64_t HybridClock::issue(uint64_t n) {
  uint64_t now = wall_() + static_cast<uint64_t>(shift_);
  std::lock_guard lock(mu_);
  uint64_t first = now > last_ ? now : last_ + 1;
  last_ = first + (n - 1);
  return first;
}

uint64_t HybridClock::high_water() const {
  std::lock_guard lock(mu_);
  return last_;
}

void HybridClock::set_shift(int64_t shift) {
  std::lock_guard lock(mu_);
  shift_ = shift;
}

}  // namespace trlmdb
