#include "cursor_layout.h"

namespace trlmdb::cursor_layout {

std::atomic<int> g_state{0};

void check(const MDB_cursor *mc, MDB_dbi dbi) {
  MDB_dbi seen;
  std::memcpy(&seen, reinterpret_cast<const char *>(mc) + kDbiOffset, sizeof seen);
  if (seen != dbi) {
    g_state.store(-1, std::memory_order_relaxed);
    return;
  }
  int expected = 0;
  g_state.compare_exchange_strong(expected, 1, std::memory_order_relaxed);
}

}  // namespace trlmdb::cursor_layout
