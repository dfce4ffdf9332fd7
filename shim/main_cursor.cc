#include "main_cursor.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
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
  // Not virtual: after a delete the real cursor stands, with LMDB's own C_DEL
  // (and end-of-data flag), on the same visible key as LMDB's. It answers
  // every get itself; the key is remembered because looking at the cursor
  // (GET_CURRENT) would clear the C_DEL.
  kNativeDel,
};

struct State {
  Virtual v = Virtual::kNone;
  // LMDB's C_DEL outlives the cursor's position (kPendingNext and kNativeDel
  // have it by definition): the item it stood on was deleted, and no get has
  // run since. Only MDB_NEXT_DUP and a refused put tell.
  bool del = false;
  // kPendingNext after a refused MDB_APPEND: LMDB's cursor also has its
  // end-of-data flag, which answers MDB_NEXT first while no key follows.
  bool eof = false;
  std::string key;  // kNativeDel's
};

struct Entry {
  State st;
  MDB_txn *txn;  // LMDB frees a write transaction's cursors when it ends
};
std::mutex g_mu;
std::unordered_map<MDB_cursor *, Entry> g_states;
}  // namespace
std::atomic<std::size_t> g_virtual_count{0};
namespace {
std::atomic<std::size_t> &g_count = g_virtual_count;

void set_state(MDB_cursor *mc, Virtual v, bool del = false, std::string key = {},
               bool eof = false) {
  std::lock_guard lock(g_mu);
  if (v == Virtual::kNone) {
    g_states.erase(mc);
  } else {
    del = del || v == Virtual::kPendingNext || v == Virtual::kNativeDel;
    g_states[mc] = Entry{State{v, del, eof, std::move(key)}, R().mdb_cursor_txn(mc)};
  }
  g_count.store(g_states.size(), std::memory_order_relaxed);
}

// Every open cursor of the main database, so a write can reach the cursors
// LMDB would move: those of the writing transaction, including a parent's
// cursors, which LMDB lends to a child transaction while it runs.
struct Registered {
  MDB_txn *opened_in;  // its cursors are freed when a write transaction ends
  bool writable;       // a read-only transaction's cursor never sees a write
};
std::unordered_map<MDB_cursor *, Registered> g_main_cursors;

std::vector<MDB_cursor *> cursors_of(MDB_txn *txn) {
  std::vector<MDB_cursor *> out;
  std::lock_guard lock(g_mu);
  for (const auto &[mc, r] : g_main_cursors)
    if (r.writable && R().mdb_cursor_txn(mc) == txn) out.push_back(mc);
  return out;
}

State take_state(MDB_cursor *mc) {
  if (g_count.load(std::memory_order_relaxed) == 0) return {};
  std::lock_guard lock(g_mu);
  auto it = g_states.find(mc);
  if (it == g_states.end()) return {};
  State st = std::move(it->second.st);
  g_states.erase(it);
  g_count.store(g_states.size(), std::memory_order_relaxed);
  return st;
}

State peek_full(MDB_cursor *mc) {
  if (g_count.load(std::memory_order_relaxed) == 0) return {};
  std::lock_guard lock(g_mu);
  auto it = g_states.find(mc);
  return it == g_states.end() ? State{} : it->second.st;
}

Virtual peek_state(MDB_cursor *mc) {
  if (g_count.load(std::memory_order_relaxed) == 0) return Virtual::kNone;
  std::lock_guard lock(g_mu);
  auto it = g_states.find(mc);
  return it == g_states.end() ? Virtual::kNone : it->second.st.v;
}

bool is_main(MDB_cursor *mc) { return R().mdb_cursor_dbi(mc) == kMainDbi; }

bool is_next(MDB_cursor_op op) {
  return op == MDB_NEXT || op == MDB_NEXT_DUP || op == MDB_NEXT_NODUP;
}
bool is_prev(MDB_cursor_op op) {
  return op == MDB_PREV || op == MDB_PREV_DUP || op == MDB_PREV_NODUP;
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
// (The real cursor may instead stand after the last node of a leaf page that
// has a successor; LMDB's does too, but only where its own pages end, which
// the hidden records move: the usual case, inside a page, stands in.)
void place_at_insertion_point(MDB_cursor *mc, const MDB_val &key) {
  MDB_val k, d;
  int rc = R().mdb_cursor_get(mc, &k, &d, MDB_GET_CURRENT);
  if (rc == MDB_NOTFOUND) {
    // Past the end of the tree, the real cursor is already where LMDB's is.
    MDB_cursor *probe = nullptr;
    if (R().mdb_cursor_open(R().mdb_cursor_txn(mc), kMainDbi, &probe) != 0) return;
    k = key;
    rc = R().mdb_cursor_get(probe, &k, &d, MDB_SET_RANGE);
    R().mdb_cursor_close(probe);
    if (rc != 0) return;
    rc = R().mdb_cursor_get(mc, &k, &d, MDB_SET);
  }
  if (rc != 0 || !reserved_key(&k)) return;
  if (skip_hidden(mc, true, &k, &d) == MDB_NOTFOUND) set_state(mc, Virtual::kPastEnd);
}

// No visible key after `key`.
bool last_visible(MDB_cursor *mc, const MDB_val &key) {
  MDB_cursor *probe = nullptr;
  if (R().mdb_cursor_open(R().mdb_cursor_txn(mc), kMainDbi, &probe) != 0) return false;
  MDB_val k = key, d;
  int rc = R().mdb_cursor_get(probe, &k, &d, MDB_SET);
  if (rc == 0) rc = skip_hidden(probe, true, &k, &d);
  R().mdb_cursor_close(probe);
  return rc == MDB_NOTFOUND;
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

// MDB_PREV from nowhere or past the end: LMDB's cursor ends on the last key
// without the end-of-data flag that the real MDB_LAST sets, and which would
// answer a later MDB_NEXT after a delete.
int last_for_prev(const Call &c) {
  int rc = real_get(c, MDB_LAST, false);
  MDB_val k, d;
  if (rc == 0 && R().mdb_cursor_get(c.mc, &k, &d, MDB_GET_CURRENT) == 0)
    R().mdb_cursor_get(c.mc, &k, &d, MDB_SET);
  return rc;
}

// Answers LMDB would give from a virtual state; false: run the real call.
bool virtual_get(const Call &c, State st, MDB_cursor_op op, int *rc) {
  const Virtual v = st.v;
  {
    // LMDB refuses a blocked or failed transaction before anything else.
    MDB_val k, d;
    if (R().mdb_cursor_get(c.mc, &k, &d, MDB_GET_CURRENT) == MDB_BAD_TXN) {
      set_state(c.mc, v, st.del, st.key, st.eof);
      *rc = MDB_BAD_TXN;
      return true;
    }
  }
  const bool positionless =
      op == MDB_GET_CURRENT || op == MDB_GET_MULTIPLE || op == MDB_FIRST_DUP || op == MDB_LAST_DUP;
  switch (v) {
    case Virtual::kUninit:
      if (st.del && op == MDB_NEXT_DUP) {  // as in kPendingNext, then uninitialised
        set_state(c.mc, v);
        *rc = MDB_NOTFOUND;
        return true;
      }
      if (positionless) {
        set_state(c.mc, v);
        *rc = EINVAL;
        return true;
      }
      if (is_next(op) || is_prev(op)) {
        *rc = is_next(op) ? real_get(c, MDB_FIRST, false) : last_for_prev(c);
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
        *rc = last_for_prev(c);
        return true;
      }
      break;
    case Virtual::kPendingNext:
      // As after LMDB's own delete: the next MDB_NEXT, or a GET_CURRENT,
      // returns the key the cursor now stands on. Any get ends the state,
      // even one that fails (LMDB clears C_DEL on its way out).
      if (op == MDB_NEXT_DUP) {  // LMDB: no "next duplicate" right after a delete
        *rc = MDB_NOTFOUND;
        return true;
      }
      if (is_next(op) || op == MDB_GET_CURRENT) {
        MDB_val k, d;
        *rc = R().mdb_cursor_get(c.mc, &k, &d, MDB_GET_CURRENT);
        if (*rc == 0 && st.eof && op != MDB_GET_CURRENT && last_visible(c.mc, k)) {
          c.restore();
          *rc = MDB_NOTFOUND;
        } else if (*rc == 0) {
          c.deliver(k, d);
        }
        return true;
      }
      break;
    case Virtual::kNone:
    case Virtual::kNativeDel:
      break;
  }
  if (op == MDB_NEXT_MULTIPLE || op == MDB_PREV_MULTIPLE || op == MDB_GET_BOTH ||
      op == MDB_GET_BOTH_RANGE || positionless) {
    // Not for a main database (LMDB refuses before moving): state unchanged.
    *rc = R().mdb_cursor_get(c.mc, c.key, c.data, op);
    if (v != Virtual::kPendingNext) set_state(c.mc, v);
    return true;
  }
  return false;
}

int real_get(const Call &c, MDB_cursor_op op, bool seek_on_main) {
  MDB_val scratch{0, nullptr};
  MDB_val *k = (c.key || !key_is_output(op)) ? c.key : &scratch;
  int rc = R().mdb_cursor_get(c.mc, k, c.data, op);
  if (rc == 0 && reserved_key(k) && (seek_on_main || is_main(c.mc))) return landed_on_hidden(c, op);
  if (rc == MDB_NOTFOUND && seek_on_main) {
    if (visibly_empty(c.mc))
      set_state(c.mc, Virtual::kUninit);  // LMDB's lookup in an empty tree
    else if (op != MDB_SET_RANGE)
      place_at_insertion_point(c.mc, c.orig_key);
  }
  return rc;
}

}  // namespace

bool reserved_key(const MDB_val *k) {
  return k && k->mv_size >= kReservedPrefix.size() &&
         std::memcmp(k->mv_data, kReservedPrefix.data(), kReservedPrefix.size()) == 0;
}

[[gnu::noinline]] int get_slow(MDB_cursor *mc, MDB_val *key, MDB_val *data, MDB_cursor_op op,
                               const MDB_val &orig_key, const MDB_val &orig_data, int landed_rc);

int get(MDB_cursor *mc, MDB_val *key, MDB_val *data, MDB_cursor_op op) {
  return get_slow(mc, key, data, op, key ? *key : MDB_val{}, data ? *data : MDB_val{}, -1);
}

int landed(MDB_cursor *mc, MDB_val *key, MDB_val *data, MDB_cursor_op op, const MDB_val &orig_key,
           const MDB_val &orig_data) {
  return get_slow(mc, key, data, op, orig_key, orig_data, 0);
}

int get_slow(MDB_cursor *mc, MDB_val *key, MDB_val *data, MDB_cursor_op op, const MDB_val &orig_key,
             const MDB_val &orig_data, int landed_rc) {
  Call c{mc, key, data, orig_key, orig_data};
  if (landed_rc == 0) {
    // Reached from the fast path: the real call already ran and landed on a
    // hidden record; only the main database has them.
    if (!is_main(mc)) return 0;
    return landed_on_hidden(c, op);
  }
  State st = take_state(mc);
  const Virtual v = st.v;
  int rc;
  if (v != Virtual::kNone && v != Virtual::kNativeDel && virtual_get(c, st, op, &rc)) return rc;
  // A lookup on the main database may miss where LMDB would have missed too,
  // but leave the cursor on a hidden record.
  const bool seek_on_main = mc && is_seek(op) && key && is_main(mc);
  rc = real_get(c, op, seek_on_main);
  if (v == Virtual::kNativeDel) {
    // A blocked transaction is refused before the C_DEL is looked at.
    if (rc == MDB_BAD_TXN) set_state(mc, v, true, std::move(st.key));
    return rc;
  }
  // Argument errors leave LMDB's cursor where it was (but end a pending next).
  if (rc != 0 && rc != MDB_NOTFOUND && v != Virtual::kNone && v != Virtual::kPendingNext &&
      peek_state(mc) == Virtual::kNone)
    set_state(mc, v);
  return rc;
}

int check_write(MDB_cursor *mc, bool is_del) {
  const Virtual v = peek_state(mc);
  if (v != Virtual::kUninit && v != Virtual::kPastEnd) return 0;
  // LMDB refuses a blocked or failed transaction before it looks at the
  // cursor; mdb_stat asks the same question and changes nothing.
  MDB_stat stat;
  if (R().mdb_stat(R().mdb_cursor_txn(mc), kMainDbi, &stat) == MDB_BAD_TXN) return MDB_BAD_TXN;
  return v == Virtual::kPastEnd && is_del ? MDB_NOTFOUND : EINVAL;
}

std::vector<MDB_cursor *> standing_on(MDB_txn *txn, const MDB_val &key, MDB_cursor *except) {
  std::vector<MDB_cursor *> out;
  for (MDB_cursor *mc : cursors_of(txn)) {
    if (mc == except) continue;
    State st = peek_full(mc);
    if (st.v == Virtual::kUninit || st.v == Virtual::kPastEnd) continue;
    MDB_val k{st.key.size(), st.key.data()}, d;
    // Side-effect free: a real cursor with LMDB's C_DEL, which GET_CURRENT
    // would clear, is a kNativeDel and not looked at.
    if (st.v != Virtual::kNativeDel && R().mdb_cursor_get(mc, &k, &d, MDB_GET_CURRENT) != 0)
      continue;
    if (k.mv_size == key.mv_size && std::memcmp(k.mv_data, key.mv_data, k.mv_size) == 0)
      out.push_back(mc);
  }
  return out;
}

void after_delete(MDB_txn *txn, const MDB_val &deleted, std::vector<MDB_cursor *> others,
                  MDB_cursor *deleter) {
  std::vector<MDB_cursor *> moved = others;
  if (deleter) moved.push_back(deleter);
  // LMDB's cursors that stood on the deleted key now stand on its successor
  // in the visible tree, and their next MDB_NEXT returns it. So do the real
  // ones when that successor is also the real one; when it is hidden, they
  // are put on the visible successor without C_DEL (so they can be looked
  // at freely), and the virtual state keeps the pending next.
  MDB_cursor *probe = nullptr;
  if (R().mdb_cursor_open(txn, kMainDbi, &probe) != 0) return;
  MDB_val k = deleted, d;
  int rc = R().mdb_cursor_get(probe, &k, &d, MDB_SET_RANGE);
  if (rc == 0 && !reserved_key(&k)) {
    const std::string successor(static_cast<const char *>(k.mv_data), k.mv_size);
    for (MDB_cursor *mc : moved) set_state(mc, Virtual::kNativeDel, true, successor);
    R().mdb_cursor_close(probe);
    return;
  }
  if (rc == 0) rc = skip_hidden(probe, true, &k, &d);
  if (rc == 0) {
    for (MDB_cursor *mc : moved) {
      MDB_val visible = k, vd;
      R().mdb_cursor_get(mc, &visible, &vd, MDB_SET);
      set_state(mc, Virtual::kPendingNext);
    }
    R().mdb_cursor_close(probe);
    return;
  }
  if (rc != MDB_NOTFOUND) {
    R().mdb_cursor_close(probe);
    return;
  }
  // Nothing visible after it: past the end, unless nothing visible is left.
  rc = R().mdb_cursor_get(probe, &k, &d, MDB_LAST);
  if (rc == 0 && reserved_key(&k)) rc = skip_hidden(probe, false, &k, &d);
  R().mdb_cursor_close(probe);
  if (rc == 0) {
    for (MDB_cursor *mc : moved) set_state(mc, Virtual::kPastEnd, true);
  } else if (rc == MDB_NOTFOUND) {
    emptied(txn);
    // LMDB marks the deleted item's other cursors before it finds the tree
    // empty, and the deleting cursor only after, which it then never reaches.
    for (MDB_cursor *mc : others) set_state(mc, Virtual::kUninit, true);
  }
}

void opened(MDB_cursor *mc, bool writable) {
  std::lock_guard lock(g_mu);
  g_main_cursors[mc] = Registered{R().mdb_cursor_txn(mc), writable};
}

void emptied(MDB_txn *txn) {
  std::lock_guard lock(g_mu);
  for (const auto &[mc, r] : g_main_cursors) {
    if (!r.writable || R().mdb_cursor_txn(mc) != txn) continue;
    auto it = g_states.find(mc);
    const bool del = it != g_states.end() && it->second.st.del;  // LMDB keeps C_DEL
    g_states[mc] = Entry{State{Virtual::kUninit, del, false, {}}, txn};
  }
  g_count.store(g_states.size(), std::memory_order_relaxed);
}

void forget_txn(MDB_txn *txn) {
  std::lock_guard lock(g_mu);
  std::erase_if(g_states, [txn](const auto &e) { return e.second.txn == txn; });
  std::erase_if(g_main_cursors, [txn](const auto &e) { return e.second.opened_in == txn; });
  g_count.store(g_states.size(), std::memory_order_relaxed);
}

void forget(MDB_cursor *mc) {
  std::lock_guard lock(g_mu);
  g_states.erase(mc);
  g_main_cursors.erase(mc);
  g_count.store(g_states.size(), std::memory_order_relaxed);
}

void repositioned(MDB_cursor *mc, int rc, const MDB_val *key, bool real_put) {
  if (g_count.load(std::memory_order_relaxed) == 0) return;
  const State st = peek_full(mc);
  // A refused put leaves LMDB's C_DEL in place: the next MDB_NEXT returns the
  // existing key the put found. The real cursor kept its own C_DEL only if
  // the real put was refused (not the shim's look for the last key).
  if (rc == MDB_KEYEXIST && st.del) {
    if (real_put && st.v == Virtual::kNativeDel && key)
      set_state(mc, Virtual::kNativeDel, true,
                std::string(static_cast<const char *>(key->mv_data), key->mv_size));
    else  // an append is refused after LMDB looked at the last key
      set_state(mc, Virtual::kPendingNext, true, {}, !real_put);
    return;
  }
  set_state(mc, Virtual::kNone);
}

int guard_delete(MDB_cursor *mc, MDB_val *current) {
  if (!reserved_key(current)) return 0;
  // Standing on a hidden record stands for the next visible key.
  MDB_val d;
  if (skip_hidden(mc, true, current, &d) == 0) return 0;
  return visibly_empty(mc) ? EINVAL : MDB_NOTFOUND;
}

}  // namespace trlmdb::main_cursor
