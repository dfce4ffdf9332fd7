// Unit tests for clock.h: the hybrid logical clock, with an injected wall clock.
#include "clock.h"

#include <gtest/gtest.h>
#include <time.h>

#include <algorithm>
#include <memory>
#include <set>
#include <thread>
#include <vector>

namespace trlmdb {
namespace {

constexpr uint64_t kSec = uint64_t{1} << 32;

// A wall clock the test moves by hand.
struct FakeWall {
  std::shared_ptr<uint64_t> now = std::make_shared<uint64_t>(uint64_t{1700000000} * kSec);
  HybridClock::WallFn fn() const {
    auto p = now;
    return [p] { return *p; };
  }
  void set(uint64_t t) { *now = t; }
  uint64_t get() const { return *now; }
};

TEST(HybridClock, FreshClockHasNoHighWater) {
  FakeWall w;
  HybridClock c(w.fn());
  EXPECT_EQ(c.high_water(), 0u);
}

TEST(HybridClock, EqualsWallClockWhenWallIsAhead) {
  FakeWall w;
  HybridClock c(w.fn());
  EXPECT_EQ(c.issue(), w.get());
  EXPECT_EQ(c.high_water(), w.get());
  w.set(w.get() + 12345);
  EXPECT_EQ(c.issue(), w.get());
  w.set(w.get() + 10 * kSec);
  EXPECT_EQ(c.issue(), w.get());
  EXPECT_EQ(c.high_water(), w.get());
}

TEST(HybridClock, StrictlyIncreasingWhenWallStandsStill) {
  FakeWall w;
  HybridClock c(w.fn());
  uint64_t prev = c.issue();
  EXPECT_EQ(prev, w.get());
  for (int i = 0; i < 10000; ++i) {
    uint64_t t = c.issue();
    ASSERT_GT(t, prev);
    ASSERT_EQ(t, prev + 1) << "should stay as close to the wall clock as possible";
    prev = t;
  }
}

TEST(HybridClock, StrictlyIncreasingWhenWallStepsBack) {
  FakeWall w;
  HybridClock c(w.fn());
  uint64_t t1 = c.issue();
  w.set(w.get() - 3600 * kSec);  // an NTP step back by an hour
  uint64_t t2 = c.issue();
  EXPECT_GT(t2, t1);
  w.set(w.get() - 1);
  uint64_t t3 = c.issue();
  EXPECT_GT(t3, t2);
  // Once the wall clock catches up again, the clock follows it.
  w.set(t3 + 5 * kSec);
  EXPECT_EQ(c.issue(), w.get());
}

TEST(HybridClock, ObserveOfFutureTimePushesLaterIssuesAboveIt) {
  FakeWall w;
  HybridClock c(w.fn());
  const uint64_t future = w.get() + 100 * kSec;
  c.observe(future);
  EXPECT_EQ(c.high_water(), future);
  uint64_t t = c.issue();
  EXPECT_GT(t, future);
  EXPECT_EQ(t, future + 1);
}

TEST(HybridClock, ObserveOfPastTimeChangesNothing) {
  FakeWall w;
  HybridClock c(w.fn());
  uint64_t t1 = c.issue();
  c.observe(t1 - kSec);
  EXPECT_EQ(c.high_water(), t1);
  c.observe(0);
  EXPECT_EQ(c.high_water(), t1);
  w.set(w.get() + 1);
  EXPECT_EQ(c.issue(), w.get());
}

TEST(HybridClock, ObservePersistedHighWaterAfterRestart) {
  // A new clock (restart) that observes the persisted high-water mark issues
  // above it even if the wall clock went back meanwhile.
  FakeWall w;
  uint64_t persisted;
  {
    HybridClock c(w.fn());
    c.issue(10);
    persisted = c.high_water();
  }
  w.set(w.get() - 60 * kSec);
  HybridClock c2(w.fn());
  c2.observe(persisted);
  EXPECT_GT(c2.issue(), persisted);
}

TEST(HybridClock, IssueNReturnsNConsecutiveValues) {
  FakeWall w;
  HybridClock c(w.fn());
  uint64_t first = c.issue(5);
  EXPECT_EQ(first, w.get());
  EXPECT_EQ(c.high_water(), first + 4);
  // The wall clock stands still: the next value comes right after the block.
  EXPECT_EQ(c.issue(), first + 5);
  uint64_t b = c.issue(1000);
  EXPECT_EQ(b, first + 6);
  EXPECT_EQ(c.high_water(), b + 999);
  EXPECT_EQ(c.issue(3), b + 1000);
}

TEST(HybridClock, IssueNAfterObserve) {
  FakeWall w;
  HybridClock c(w.fn());
  c.observe(w.get() + kSec);
  uint64_t first = c.issue(4);
  EXPECT_EQ(first, w.get() + kSec + 1);
  EXPECT_EQ(c.high_water(), first + 3);
}

TEST(HybridClock, ShiftIsAddedToTheWallClock) {
  FakeWall w;
  const int64_t back = clock_units_from_ms(-3600000);
  HybridClock c(w.fn(), back);
  EXPECT_EQ(c.issue(), w.get() - 3600 * kSec);
  // Shift forward: the wall clock (shifted) is ahead again and is followed.
  c.set_shift(clock_units_from_ms(1000));
  EXPECT_EQ(c.issue(), w.get() + kSec);
  // Shift back again: still strictly increasing.
  uint64_t hw = c.high_water();
  c.set_shift(clock_units_from_ms(-3600000));
  EXPECT_EQ(c.issue(), hw + 1);
}

TEST(HybridClock, ClockUnitsFromMs) {
  EXPECT_EQ(clock_units_from_ms(0), 0);
  EXPECT_EQ(clock_units_from_ms(1000), int64_t{1} << 32);
  EXPECT_EQ(clock_units_from_ms(500), int64_t{1} << 31);
  EXPECT_EQ(clock_units_from_ms(-1000), -(int64_t{1} << 32));
  EXPECT_EQ(clock_units_from_ms(-1500), -(int64_t{3} << 31));
  EXPECT_EQ(clock_units_from_ms(3600000), int64_t{3600} << 32);
  EXPECT_EQ(clock_units_from_ms(-3600000), -(int64_t{3600} << 32));
  EXPECT_EQ(clock_units_from_ms(1), (int64_t{1} << 32) / 1000);
  // Large shifts (a year) do not overflow.
  const int64_t year_ms = int64_t{366} * 24 * 3600 * 1000;
  EXPECT_EQ(clock_units_from_ms(year_ms), (year_ms / 1000) << 32);
}

TEST(HybridClock, WallClockNowIsRealTime) {
  uint64_t w = wall_clock_now();
  time_t now = time(nullptr);
  int64_t secs = static_cast<int64_t>(w >> 32);
  EXPECT_LE(std::abs(secs - static_cast<int64_t>(now)), 2);
  HybridClock c;  // default wall function
  uint64_t t = c.issue();
  EXPECT_LE(std::abs(static_cast<int64_t>(t >> 32) - static_cast<int64_t>(time(nullptr))), 2);
}

TEST(HybridClock, UniqueAcrossThreads) {
  FakeWall w;  // standing still: every value must come from the counter
  HybridClock c(w.fn());
  constexpr int kThreads = 4, kPer = 20000;
  std::vector<std::vector<uint64_t>> got(kThreads);
  std::vector<std::thread> th;
  for (int i = 0; i < kThreads; ++i)
    th.emplace_back([&, i] {
      uint64_t prev = 0;
      for (int j = 0; j < kPer; ++j) {
        uint64_t t = c.issue((j % 3) + 1);
        if (t <= prev) ADD_FAILURE() << "not increasing within a thread";
        prev = t;
        for (int k = 0; k <= j % 3; ++k) got[i].push_back(t + k);
      }
    });
  for (auto &t : th) t.join();
  std::set<uint64_t> all;
  size_t n = 0;
  for (auto &v : got) {
    n += v.size();
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), n) << "two threads were issued the same time";
  EXPECT_EQ(*all.rbegin(), c.high_water());
}

TEST(HybridClock, UniqueAcrossThreadsWithMovingWall) {
  // Real wall clock, concurrent issue(): still unique.
  HybridClock c;
  constexpr int kThreads = 4, kPer = 20000;
  std::vector<std::vector<uint64_t>> got(kThreads);
  std::vector<std::thread> th;
  for (int i = 0; i < kThreads; ++i)
    th.emplace_back([&, i] {
      for (int j = 0; j < kPer; ++j) got[i].push_back(c.issue());
    });
  for (auto &t : th) t.join();
  std::set<uint64_t> all;
  for (auto &v : got) {
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), size_t{kThreads} * kPer);
}

}  // namespace
}  // namespace trlmdb
