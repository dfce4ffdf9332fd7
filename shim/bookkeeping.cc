#include "bookkeeping.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "real_lmdb.h"

namespace trlmdb {

namespace {

MDB_val as_val(std::string_view s) { return MDB_val{s.size(), const_cast<char *>(s.data())}; }

int64_t test_clock_shift() {
  const char *s = std::getenv("TRLMDB_TEST_CLOCK_SHIFT_MS");
  return (s && *s) ? clock_units_from_ms(std::strtoll(s, nullptr, 10)) : 0;
}

// Entries recorded with kUnknown (a duplicate removed) exist after the change
// iff the key still has data.
Op resolve_op(MDB_txn *txn, const PendingSet::Entry &e) {
  if (e.op != Op::kUnknown) return e.op;
  std::string_view db, key;
  split_xkey(e.xkey, &db, &key);
  MDB_val k = as_val(key), v;
  return real().mdb_get(txn, e.dbi, &k, &v) == 0 ? Op::kPut : Op::kDelete;
}

// _trlmdb_recent is the live stream's queue: an entry leaves once the
// connected peers have it. While no replicator holds the environment there
// are no connected peers and nothing ships from it; a replicator that starts
// later reconciles _trlmdb_time with every peer it connects to, which covers
// every change committed before it started. So the first flush of a
// transaction clears what earlier transactions left there, and the tree stays
// about one transaction's size instead of one entry per key ever written
// (a third of the page writes of a random put). The question costs a system
// call, hence asked only once the entries are worth clearing. A replicator
// that starts after the question reads this transaction's own entries, which
// stay.
int clear_unshipped(EnvState *st, Frame *frame) {
  if (frame->recent_checked) return 0;
  frame->recent_checked = true;
  MDB_stat ms;
  int rc = real().mdb_stat(frame->txn, st->reserved.recent, &ms);
  if (rc || ms.ms_entries < kClearRecentAt || !st->replicator_absent()) return rc;
  return real().mdb_drop(frame->txn, st->reserved.recent, 0);
}

}  // namespace

int setup_reserved(EnvState *st, MDB_txn *txn, bool create) {
  int rc = open_reserved(txn, create, &st->reserved);
  if (rc == 0)
    rc = create ? meta_init_node(txn, st->reserved.meta, 0, &st->node)
                : meta_get_node(txn, st->reserved.meta, &st->node);
  uint64_t persisted = 0;
  if (rc == 0) rc = meta_get_clock(txn, st->reserved.meta, &persisted);
  if (rc) return rc;
  st->clock.set_shift(test_clock_shift());
  st->clock.observe(persisted);
  MDB_dbi hi = std::max({st->reserved.time, st->reserved.recent, st->reserved.meta});
  MDB_dbi cur = g_max_reserved_dbi.load();
  while (hi > cur && !g_max_reserved_dbi.compare_exchange_weak(cur, hi)) {
  }
  return 0;
}

int flush_pending(EnvState *st, Frame *frame) {
  if (frame->pending.empty()) return 0;
  MDB_txn *txn = frame->txn;
  // The reserved databases are created with the first change that needs
  // them: a transaction that changes nothing must stay an empty commit.
  if (!st->reserved_ready.load(std::memory_order_acquire)) {
    int rc;
    {
      std::lock_guard lock(g_dbi_open_mu);
      rc = setup_reserved(st, txn, true);
    }
    if (rc) {
      if (rc == MDB_INCOMPATIBLE)
        std::fprintf(stderr,
                     "trlmdb: the main database's flags (INTEGERKEY or DUPSORT) cannot hold the "
                     "reserved databases, so nothing can be written through trlmdb\n");
      return rc;
    }
    frame->opened_reserved = true;
    st->reserved_ready.store(true, std::memory_order_release);
  }
  const std::vector<PendingSet::Entry> entries = frame->pending.resolve();

  // Other processes may have written this environment since our last
  // transaction: their high-water mark is in meta, read under the write lock.
  uint64_t persisted = 0;
  int rc = meta_get_clock(txn, st->reserved.meta, &persisted);
  if (rc) return rc;
  st->clock.observe(persisted);
  const uint64_t first = st->clock.issue(entries.size());

  rc = clear_unshipped(st, frame);
  if (rc) return rc;

  MDB_cursor *time_cur = nullptr, *recent_cur = nullptr;
  rc = real().mdb_cursor_open(txn, st->reserved.time, &time_cur);
  if (rc == 0) rc = real().mdb_cursor_open(txn, st->reserved.recent, &recent_cur);
  Ts ts;
  std::vector<std::pair<std::string_view, Ts>> drops;
  // Sorted keys let LMDB's cursor_put find the next position on the page it
  // is already on instead of searching from the root.
  for (std::size_t i = 0; rc == 0 && i < entries.size(); ++i) {
    const Op op = resolve_op(txn, entries[i]);
    ts = Ts{first + i, st->node | (op == Op::kPut ? kOpPut : kOpDelete)};
    std::string_view db, key;
    if (entries[i].deleted && split_xkey(entries[i].xkey, &db, &key) && key.empty() && !db.empty())
      drops.emplace_back(db, Ts{ts.time, st->node | kOpDelete});
    unsigned char buf[kTsSize];
    encode_ts(ts, buf);
    MDB_val k = as_val(entries[i].xkey), v{sizeof buf, buf};
    rc = real().mdb_cursor_put(time_cur, &k, &v, 0);
    if (rc == 0) rc = real().mdb_cursor_put(recent_cur, &k, &v, 0);
  }
  if (recent_cur) real().mdb_cursor_close(recent_cur);
  if (time_cur) real().mdb_cursor_close(time_cur);
  // A database created again in this transaction or later keeps no trace of
  // its deletion in its marker; the replicator still needs it.
  for (const auto &[db, drop_ts] : drops)
    if (rc == 0) rc = meta_note_drop(txn, st->reserved.meta, db, drop_ts);
  if (rc == 0) rc = meta_put_clock(txn, st->reserved.meta, ts.time);
  // Other processes (a `trlmdb serve`) must not write these databases.
  for (const std::string &name : st->take_unrecorded_comparators())
    if (rc == 0) rc = meta_put_custom_compare(txn, st->reserved.meta, name);
  if (rc) return rc;
  frame->pending.clear();
  frame->last_stamp = ts;
  return 0;
}

int record_drop(EnvState *st, MDB_txn *txn, MDB_dbi dbi, bool del, PendingSet *out) {
  const std::string *name = st->db_name(dbi);
  if (!name) return 0;
  MDB_cursor *cur = nullptr;
  int rc = real().mdb_cursor_open(txn, dbi, &cur);
  if (rc) return rc;
  MDB_val k, v;
  for (rc = real().mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = real().mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP)) {
    out->add(dbi, *name, {static_cast<char *>(k.mv_data), k.mv_size}, Op::kDelete);
  }
  real().mdb_cursor_close(cur);
  if (rc != MDB_NOTFOUND) return rc;
  // Keys pending in open frames but already gone from the database.
  for (std::size_t d = 0; Frame *f = st->frame_at(d); ++d) f->pending.mark_db_deleted(*name, out);
  if (del) out->add(dbi, *name, {}, Op::kDelete);
  return 0;
}

}  // namespace trlmdb
