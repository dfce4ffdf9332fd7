#include "main_cursor.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "env_state.h"
#include "format.h"
#include "real_lmdb.h"

namespace trlmdb::main_cursor {

namespace {

const RealLmdb &R() { return real(); }

// Where LMDB's cursor would be when the real one cannot be put there.
enum class Virtual {
  kNone,
  kUninit,       // never positioned, or its database became empty
  kPastEnd,      // after the last key (a miss beyond the end)
  kPendingNext,  // after a delete: the next MDB_NEXT returns the current key
};

struct Entry {
  Virtual v;
  MDB_txn *txn;  // LMDB frees a write transaction's cursors when it ends
};
std::mutex g_mu;
std::unordered_map<MDB_cursor *, Entry> g_states;
std::atomic<std::size_t> g_count{0};

void set_state(MDB_cursor *mc, Virtual v) {
  std::lock_guard lock(g_mu);
  if (v == Virtual::kNone)
    g_states.erase(mc);
  else
    g_states[mc] = Entry{v, R().mdb_cursor_txn(mc)};
  g_count.store(g_states.size(), std::memory_order_relaxed);
}

// Every open cursor of the main database, with its transaction, so a drop of
// the main database can reach them all (LMDB empties the tree under them).
std::unordered_map<MDB_cursor *, MDB_txn *> g_main_cursors;

Virtual take_state(MDB_cursor *mc) {
  if (g_count.load(std::memory_order_relaxed) == 0) return Virtual::kNone;
  std::lock_guard lock(g_mu);
  auto it = g_states.find(mc);
  if (it == g_states.end()) return Virtual::kNone;
  Virtual v = it->second.v;
  g_states.erase(it);
  g_count.store(g_states.size(), std::memory_order_relaxed);
  return v;
}

Virtual peek_state(MDB_cursor *mc) {
  if (g_count.load(std::memory_order_relaxed) == 0) return Virtual::kNone;
  std::lock_guard lock(g_mu);
  auto it = g_states.find(mc);
  return it == g_states.end() ? Virtual::kNone : it->second.v;
}

bool is_main(MDB_cursor *mc) { return R().mdb_cursor_dbi(mc) == kMainDbi; }

bool is_next(MDB_cursor_op op) {
  return op == MDB_NEXT || op == MDB_NEXT_DUP || op == MDB_NEXT_NODUP;
}
bool is_prev(MDB_cursor_op op) {
  return op == MDB_PREV || op == MDB_PREV_DUP || op == MDB_PREV_NODUP;
}
bool is_seek(MDB_cursor_op op) {
  return op == MDB_SET || op == MDB_SET_KEY || op == MDB_SET_RANGE;
}
bool key_is_output(MDB_cursor_op op) {
  return !is_seek(op) && op != MDB_GET_BOTH && op != MDB_GET_BOTH_RANGE;
}

// Moves mc one entry at a time until it leaves the reserved records.
int skip_hidden(MDB_cursor *mc, bool forward, MDB_val *k, MDB_val *d) {
  int rc;
  do {
    rc = R().mdb_cursor_get(mc, k, d, forward ? MDB_NEXT : MDB_PREV);
  } while (rc == 0 && reserved_key(k));
  return rc;
}

bool visibly_empty(MDB_cursor *mc) {
  MDB_cursor *probe = nullptr;
  if (R().mdb_cursor_open(R().mdb_cursor_txn(mc), kMainDbi, &probe) != 0) return false;
  MDB_val k, d;
  int rc = R().mdb_cursor_get(probe, &k, &d, MDB_FIRST);
  if (rc == 0 && reserved_key(&k)) rc = skip_hidden(probe, true, &k, &d);
  R().mdb_cursor_close(probe);
  return rc == MDB_NOTFOUND;
}

// A missed exact lookup leaves LMDB's cursor at the insertion point, i.e. on
// the next visible key, or past the end.
void place_at_insertion_point(MDB_cursor *mc) {
  MDB_val k, d;
  if (R().mdb_cursor_get(mc, &k, &d, MDB_GET_CURRENT) != 0 || !reserved_key(&k)) return;
  if (skip_hidden(mc, true, &k, &d) == MDB_NOTFOUND) set_state(mc, Virtual::kPastEnd);
}

struct Call {
  MDB_cursor *mc;
  MDB_val *key;  // the program's, may be null
  MDB_val *data;
  MDB_val orig_key, orig_data;
  void restore() const {
    if (key) *key = orig_key;
    if (data) *data = orig_data;
  }
  int deliver(const MDB_val &k, const MDB_val &d) const {
    if (key) *key = k;
    if (data) *data = d;
    return 0;
  }
};

// The real cursor landed on a hidden record. (A lookup initialises LMDB's
// cursor even when it misses, unless the database is empty.)
int landed_on_hidden(const Call &c, MDB_cursor_op op) {
  MDB_val k, d;
  const bool forward = is_next(op) || op == MDB_FIRST || op == MDB_SET_RANGE;
  const bool backward = is_prev(op) || op == MDB_LAST;
  if (forward || backward) {
    int rc = skip_hidden(c.mc, forward, &k, &d);
    if (rc == 0) return c.deliver(k, d);
    if (rc != MDB_NOTFOUND) return rc;
    c.restore();
    if (is_next(op) || is_prev(op)) {
      // LMDB's cursor stays on the last item it returned; with none at all,
      // the database looks empty and LMDB's cursor was never positioned.
      if (skip_hidden(c.mc, !forward, &k, &d) == MDB_NOTFOUND) set_state(c.mc, Virtual::kUninit);
    } else if (op == MDB_SET_RANGE) {
      set_state(c.mc, visibly_empty(c.mc) ? Virtual::kUninit : Virtual::kPastEnd);
    } else {
      set_state(c.mc, Virtual::kUninit);  // FIRST/LAST: nothing visible at all
    }
    return MDB_NOTFOUND;
  }
  if (op == MDB_GET_CURRENT) {
    // Another cursor deleted the key this one stood on; LMDB moved it to the
    // successor, which here may be hidden: the visible successor stands in.
    int rc = skip_hidden(c.mc, true, &k, &d);
    if (rc == 0) return c.deliver(k, d);
    c.restore();
    if (rc == MDB_NOTFOUND)
      set_state(c.mc, visibly_empty(c.mc) ? Virtual::kUninit : Virtual::kPastEnd);
    return rc == MDB_NOTFOUND && peek_state(c.mc) == Virtual::kUninit ? EINVAL : rc;
  }
  c.restore();
  if (op == MDB_SET || op == MDB_SET_KEY) {
    if (skip_hidden(c.mc, true, &k, &d) == MDB_NOTFOUND)
      set_state(c.mc, visibly_empty(c.mc) ? Virtual::kUninit : Virtual::kPastEnd);
    return MDB_NOTFOUND;
  }
  return EINVAL;
}

int real_get(const Call &c, MDB_cursor_op op, bool seek_on_main);

// Answers LMDB would give from a virtual state; false: run the real call.
bool virtual_get(const Call &c, Virtual v, MDB_cursor_op op, int *rc) {
  {
    // LMDB refuses a blocked or failed transaction before anything else.
    MDB_val k, d;
    if (R().mdb_cursor_get(c.mc, &k, &d, MDB_GET_CURRENT) == MDB_BAD_TXN) {
      set_state(c.mc, v);
      *rc = MDB_BAD_TXN;
      return true;
    }
  }
  const bool positionless = op == MDB_GET_CURRENT || op == MDB_GET_MULTIPLE ||
                            op == MDB_FIRST_DUP || op == MDB_LAST_DUP;
  switch (v) {
    case Virtual::kUninit:
      if (positionless) {
        set_state(c.mc, v);
        *rc = EINVAL;
        return true;
      }
      if (is_next(op) || is_prev(op)) {
        *rc = real_get(c, is_next(op) ? MDB_FIRST : MDB_LAST, false);
        return true;
      }
      break;
    case Virtual::kPastEnd:
      if (op == MDB_GET_CURRENT || is_next(op)) {
        set_state(c.mc, v);
        *rc = MDB_NOTFOUND;
        return true;
      }
      if (is_prev(op)) {
        *rc = real_get(c, MDB_LAST, false);
        return true;
      }
      break;
    case Virtual::kPendingNext:
      // As after LMDB's own delete: the next MDB_NEXT, or a GET_CURRENT,
      // returns the key the cursor now stands on; either ends the state.
      if (op == MDB_NEXT_DUP) {  // LMDB: no "next duplicate" right after a delete
        set_state(c.mc, v);
        *rc = MDB_NOTFOUND;
        return true;
      }
      if (is_next(op) || op == MDB_GET_CURRENT) {
        MDB_val k, d;
        *rc = R().mdb_cursor_get(c.mc, &k, &d, MDB_GET_CURRENT);
        if (*rc == 0) c.deliver(k, d);
        return true;
      }
      break;
    case Virtual::kNone:
      break;
  }
  if (op == MDB_NEXT_MULTIPLE || op == MDB_PREV_MULTIPLE || op == MDB_GET_BOTH ||
      op == MDB_GET_BOTH_RANGE || positionless) {
    // Not for a main database (LMDB refuses before moving): state unchanged.
    *rc = R().mdb_cursor_get(c.mc, c.key, c.data, op);
    set_state(c.mc, v);
    return true;
  }
  return false;
}

int real_get(const Call &c, MDB_cursor_op op, bool seek_on_main) {
  MDB_val scratch{0, nullptr};
  MDB_val *k = (c.key || !key_is_output(op)) ? c.key : &scratch;
  int rc = R().mdb_cursor_get(c.mc, k, c.data, op);
  if (rc == 0 && reserved_key(k) && (seek_on_main || is_main(c.mc)))
    return landed_on_hidden(c, op);
  if (rc == MDB_NOTFOUND && seek_on_main) {
    if (visibly_empty(c.mc))
      set_state(c.mc, Virtual::kUninit);  // LMDB's lookup in an empty tree
    else if (op != MDB_SET_RANGE)
      place_at_insertion_point(c.mc);
  }
  return rc;
}

}  // namespace

bool reserved_key(const MDB_val *k) {
  return k && k->mv_size >= kReservedPrefix.size() &&
         std::memcmp(k->mv_data, kReservedPrefix.data(), kReservedPrefix.size()) == 0;
}

int get(MDB_cursor *mc, MDB_val *key, MDB_val *data, MDB_cursor_op op) {
  Call c{mc, key, data, key ? *key : MDB_val{}, data ? *data : MDB_val{}};
  const Virtual v = take_state(mc);
  int rc;
  if (v != Virtual::kNone && virtual_get(c, v, op, &rc)) return rc;
  // A lookup on the main database may miss where LMDB would have missed too,
  // but leave the cursor on a hidden record.
  const bool seek_on_main = mc && is_seek(op) && key && is_main(mc);
  rc = real_get(c, op, seek_on_main);
  // Argument errors leave LMDB's cursor where it was.
  if (rc != 0 && rc != MDB_NOTFOUND && v != Virtual::kNone && peek_state(mc) == Virtual::kNone)
    set_state(mc, v);
  return rc;
}

int check_write(MDB_cursor *mc, bool is_del) {
  switch (peek_state(mc)) {
    case Virtual::kUninit:
      return EINVAL;
    case Virtual::kPastEnd:
      return is_del ? MDB_NOTFOUND : EINVAL;
    default:
      return 0;
  }
}

void after_delete(MDB_cursor *mc, const MDB_val &deleted) {
  take_state(mc);
  // LMDB's cursor now stands on the deleted key's successor, and the next
  // MDB_NEXT returns it. Look at the successor with a probe: asking the
  // program's cursor (GET_CURRENT) would end that state.
  MDB_cursor *probe = nullptr;
  if (R().mdb_cursor_open(R().mdb_cursor_txn(mc), kMainDbi, &probe) != 0) return;
  MDB_val k = deleted, d;
  int rc = R().mdb_cursor_get(probe, &k, &d, MDB_SET_RANGE);
  const bool hidden_successor = rc == 0 && reserved_key(&k);
  if (hidden_successor) rc = skip_hidden(probe, true, &k, &d);
  R().mdb_cursor_close(probe);
  if (!hidden_successor && rc == 0) return;
  if (rc == 0) {
    MDB_val visible = k;
    R().mdb_cursor_get(mc, &visible, &d, MDB_SET);
    set_state(mc, Virtual::kPendingNext);
    return;
  }
  if (rc == MDB_NOTFOUND) set_state(mc, visibly_empty(mc) ? Virtual::kUninit : Virtual::kPastEnd);
}

void opened(MDB_cursor *mc) {
  std::lock_guard lock(g_mu);
  g_main_cursors[mc] = R().mdb_cursor_txn(mc);
}

void emptied(MDB_txn *txn) {
  std::lock_guard lock(g_mu);
  for (const auto &[mc, t] : g_main_cursors)
    if (t == txn) g_states[mc] = Entry{Virtual::kUninit, txn};
  g_count.store(g_states.size(), std::memory_order_relaxed);
}

void forget_txn(MDB_txn *txn) {
  std::lock_guard lock(g_mu);
  std::erase_if(g_states, [txn](const auto &e) { return e.second.txn == txn; });
  std::erase_if(g_main_cursors, [txn](const auto &e) { return e.second == txn; });
  g_count.store(g_states.size(), std::memory_order_relaxed);
}

void forget(MDB_cursor *mc) {
  std::lock_guard lock(g_mu);
  g_states.erase(mc);
  g_main_cursors.erase(mc);
  g_count.store(g_states.size(), std::memory_order_relaxed);
}

void repositioned(MDB_cursor *mc) {
  if (g_count.load(std::memory_order_relaxed) != 0) set_state(mc, Virtual::kNone);
}

void after_main_delete(MDB_txn *txn) {
  MDB_cursor *probe = nullptr;
  if (R().mdb_cursor_open(txn, kMainDbi, &probe) != 0) return;
  const bool empty = visibly_empty(probe);
  R().mdb_cursor_close(probe);
  if (empty) emptied(txn);
}

int guard_delete(MDB_cursor *mc, MDB_val *current) {
  if (!reserved_key(current)) return 0;
  // Standing on a hidden record stands for the next visible key.
  MDB_val d;
  if (skip_hidden(mc, true, current, &d) == 0) return 0;
  return visibly_empty(mc) ? EINVAL : MDB_NOTFOUND;
}

}  // namespace trlmdb::main_cursor
