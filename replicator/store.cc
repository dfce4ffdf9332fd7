#include "store.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "bookkeeping.h"
#include "dbi_gate.h"
#include "format.h"
#include "log.h"
#include "meta.h"
#include "real_lmdb.h"

namespace trlmdb::repl {

namespace {

const RealLmdb &R() { return real(); }

// The flags that decide a database's key and duplicate order; a receiver
// creates the database with these.
constexpr unsigned kOrderFlags =
    MDB_REVERSEKEY | MDB_DUPSORT | MDB_INTEGERKEY | MDB_DUPFIXED | MDB_INTEGERDUP | MDB_REVERSEDUP;

MDB_val as_val(std::string_view s) { return MDB_val{s.size(), const_cast<char *>(s.data())}; }

std::string_view view(const MDB_val &v) {
  return {static_cast<const char *>(v.mv_data), v.mv_size};
}

// Printable form of an xkey for one-line messages.
std::string printable(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s.substr(0, 64)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (s.size() > 64) out += "...";
  return out;
}

std::optional<Ts> read_stamp(MDB_txn *txn, MDB_dbi dbi, std::string_view xkey, int *rc) {
  MDB_val k = as_val(xkey), v;
  *rc = R().mdb_get(txn, dbi, &k, &v);
  if (*rc == MDB_NOTFOUND) {
    *rc = 0;
    return std::nullopt;
  }
  Ts ts;
  // A malformed stamp counts as none: the change received replaces it.
  if (*rc || !parse_ts(view(v), &ts)) return std::nullopt;
  return ts;
}

// An LMDB object that is let go of with Release (through the real library)
// when it goes out of scope, whatever path the code took.
template <typename T, void (*Release)(T *)>
class Owned {
 public:
  Owned() = default;
  Owned(const Owned &) = delete;
  Owned &operator=(const Owned &) = delete;
  ~Owned() { reset(); }
  T *get() const { return p_; }
  void reset() {
    if (p_) Release(std::exchange(p_, nullptr));
  }

 protected:
  T *p_ = nullptr;
};

void abort_txn(MDB_txn *txn) { R().mdb_txn_abort(txn); }
void close_cursor(MDB_cursor *mc) { R().mdb_cursor_close(mc); }

// A transaction that is aborted unless committed. Cursors of it must be
// closed before it ends (read transactions do not free them).
class Txn : public Owned<MDB_txn, abort_txn> {
 public:
  int begin(MDB_env *env, unsigned flags) {
    EnvState *st = (flags & MDB_RDONLY) ? nullptr : env_state(env);
    if (st) st->repl_write_wanted(true);  // the program's next write waits for us
    int rc = R().mdb_txn_begin(env, nullptr, flags, &p_);
    if (st) st->repl_write_wanted(false);
    return rc;
  }
  int commit() { return R().mdb_txn_commit(std::exchange(p_, nullptr)); }
  void abort() { reset(); }
};

class Cursor : public Owned<MDB_cursor, close_cursor> {
 public:
  int open(MDB_txn *txn, MDB_dbi dbi) { return R().mdb_cursor_open(txn, dbi, &p_); }
};

struct DbInfo {
  bool exists = false;
  MDB_dbi dbi = 0;
  unsigned flags = 0;   // kOrderFlags bits
  bool custom = false;  // recorded in _trlmdb_meta as ordered by the program's comparator
  bool dupsort() const { return flags & MDB_DUPSORT; }
};

// LMDB wants a transaction that opens a database handle to end before any
// other transaction of the process opens one (both would take the same free
// slot). The shim's opens take g_dbi_open_mu for the call; the store keeps it
// from its first open until its transaction has ended. Declared before the
// Txn so that it is released after the transaction ends.
// open_handle's answer in a read transaction that is not the newest.
constexpr int kStaleSnapshot = -31000;

class DbiLock {
 public:
  // EBUSY when a program transaction that opened a handle stays open: the
  // batch is retried later rather than risk sharing its handle slot.
  explicit DbiLock(MDB_env *env) : env_(env) {}
  int hold() {
    if (lock_.owns_lock()) return 0;
    for (int attempt = 0; attempt < 20; ++attempt) {
      if (!dbi_gate::wait_idle(env_, std::chrono::milliseconds(50))) continue;
      lock_.lock();
      if (dbi_gate::idle(env_)) return 0;  // program opens take the same mutex
      lock_.unlock();
    }
    return EBUSY;
  }

 private:
  MDB_env *env_;
  std::unique_lock<std::mutex> lock_{g_dbi_open_mu, std::defer_lock};
};

// Handles that survived a commit; LMDB hands out the same handle for a name
// to every opener in the process, so they are the program's too.
using Handles = std::map<std::string, MDB_dbi, std::less<>>;

// The user databases as one transaction sees them. Handles opened here join
// the store's cache (and the shim's name table) only once the transaction
// commits: LMDB forgets them when it aborts.
class TxnDbs {
 public:
  TxnDbs(EnvState *st, Handles *handles, MDB_txn *txn, DbiLock *lock)
      : st_(st), handles_(handles), txn_(txn), lock_(lock) {}

  // *out lives as long as this object. MDB_INCOMPATIBLE: `name` is a key of
  // the main database, not a database.
  int find(std::string_view name, DbInfo **out) {
    auto it = infos_.find(name);
    if (it != infos_.end()) {
      *out = &it->second;
      return 0;
    }
    DbInfo info;
    int rc = 0;
    if (name.empty()) {
      info.exists = true;
      info.dbi = kMainDbi;
    } else {
      // The main database's record says whether the database exists now;
      // a cached handle may outlive a drop by another process.
      MDB_val k = as_val(name), v;
      rc = R().mdb_get(txn_, kMainDbi, &k, &v);
      if (rc == 0) {
        info.exists = true;
        rc = open_handle(name, 0, &info.dbi);
        if (rc == MDB_NOTFOUND) {
          info.exists = false;
          rc = 0;
        }
      } else if (rc == MDB_NOTFOUND) {
        rc = 0;
      }
    }
    if (rc == 0 && info.exists) rc = read_flags(&info);
    if (rc == 0) rc = meta_has_custom_compare(txn_, st_->reserved.meta, name, &info.custom);
    if (rc) return rc;
    *out = &infos_.emplace(std::string(name), info).first->second;
    return 0;
  }

  int create(std::string_view name, unsigned flags, DbInfo *info) {
    int rc = open_handle(name, (flags & kOrderFlags) | MDB_CREATE, &info->dbi);
    if (rc) return rc;
    info->exists = true;
    return read_flags(info);
  }

  // mdb_drop(dbi, 1) closes the handle at once, whatever becomes of the txn.
  int drop(std::string_view name, DbInfo *info) {
    int rc = lock_->hold();  // the handle table changes
    if (rc) return rc;
    rc = R().mdb_drop(txn_, info->dbi, 1);
    opened_.erase(std::string(name));
    if (auto it = handles_->find(name); it != handles_->end()) handles_->erase(it);
    if (rc == 0) info->exists = false;
    return rc;
  }

  void committed() {
    for (const auto &[name, dbi] : opened_) {
      st_->set_db_name(dbi, name);
      (*handles_)[name] = dbi;
    }
    opened_.clear();
  }

 private:
  int open_handle(std::string_view name, unsigned flags, MDB_dbi *dbi) {
    unsigned f;
    if (!(flags & MDB_CREATE)) {
      auto it = handles_->find(name);
      // The program may have closed the handle and LMDB reused its slot.
      if (it != handles_->end()) {
        const std::string *slot_name = st_->db_name(it->second);
        if (slot_name && *slot_name == name && R().mdb_dbi_flags(txn_, it->second, &f) == 0) {
          *dbi = it->second;
          return 0;
        }
        handles_->erase(it);
      }
    }
    const std::string cname(name);
    int rc = lock_->hold();
    if (rc) return rc;
    // A read transaction older than the last commit may still see a
    // database that a newer transaction dropped; a handle it opened would
    // outlive the database once committed. Its caller retries with a fresh
    // snapshot, begun while this lock keeps handle changes out.
    MDB_envinfo info;
    if (R().mdb_env_info(st_->env(), &info) == 0 && R().mdb_txn_id(txn_) < info.me_last_txnid)
      return kStaleSnapshot;
    rc = R().mdb_dbi_open(txn_, cname.c_str(), flags, dbi);
    if (rc == 0) opened_[cname] = *dbi;
    return rc;
  }

  int read_flags(DbInfo *info) {
    unsigned f = 0;
    int rc = R().mdb_dbi_flags(txn_, info->dbi, &f);
    info->flags = f & kOrderFlags;
    return rc;
  }

  EnvState *st_;
  Handles *handles_;
  MDB_txn *txn_;
  DbiLock *lock_;
  std::map<std::string, DbInfo, std::less<>> infos_;
  std::map<std::string, MDB_dbi> opened_;
};

// Whether the reserved handles in st are usable in txn (a program's
// transaction that created them may have aborted since they were set).
bool reserved_usable(EnvState *st, MDB_txn *txn) {
  if (!st->reserved_ready.load(std::memory_order_acquire)) return false;
  unsigned f;
  return R().mdb_dbi_flags(txn, st->reserved.time, &f) == 0 &&
         R().mdb_dbi_flags(txn, st->reserved.recent, &f) == 0 &&
         R().mdb_dbi_flags(txn, st->reserved.meta, &f) == 0;
}

// In a write transaction: opens or creates the reserved databases when
// needed. *opened: this transaction did, so its commit makes them ready.
int prepare_reserved(EnvState *st, MDB_txn *txn, DbiLock *lock, bool *opened) {
  *opened = false;
  if (reserved_usable(st, txn)) return 0;
  int rc = lock->hold();
  if (rc) return rc;
  rc = setup_reserved(st, txn, true);
  if (rc == 0) *opened = true;
  return rc;
}

void reserved_committed(EnvState *st) {
  st->reserved_ready.store(true, std::memory_order_release);
  st->reserved_committed.store(true, std::memory_order_release);
}

int begin_read(EnvState *st, Txn *txn) {
  int rc = txn->begin(st->env(), MDB_RDONLY);
  if (rc == 0 && !reserved_usable(st, txn->get())) rc = MDB_BAD_DBI;
  return rc;
}

// Positions cur on the first entry after pos; MDB_NOTFOUND at the end.
int seek_after(MDB_cursor *cur, const ScanPos &pos, MDB_val *k, MDB_val *v) {
  if (pos.at_start) return R().mdb_cursor_get(cur, k, v, MDB_FIRST);
  *k = as_val(pos.after_xkey);
  int rc = R().mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
  if (rc == 0 && view(*k) == pos.after_xkey) rc = R().mdb_cursor_get(cur, k, v, MDB_NEXT);
  return rc;
}

// Builds the change for one stamp from the data committed in txn. Returns
// an LMDB error, or 0 with *ok false when the entry is to be skipped.
int read_change(EnvState *st, TxnDbs *dbs, MDB_txn *txn, std::string_view xkey, const Ts &ts,
                Change *out, bool *ok) {
  *ok = false;
  std::string_view dbname, key;
  if (!split_xkey(xkey, &dbname, &key)) {
    TRLMDB_LOG(LogLevel::kWarn, "store: skipped a stamp without 0x00 in its xkey: %s",
               printable(xkey).c_str());
    return 0;
  }
  if (is_reserved_name(dbname) || (dbname.empty() && is_reserved_name(key))) {
    TRLMDB_LOG(LogLevel::kWarn, "store: skipped a stamp of a reserved database: %s",
               printable(xkey).c_str());
    return 0;
  }
  DbInfo *db = nullptr;
  int rc = dbs->find(dbname, &db);
  if (rc == MDB_INCOMPATIBLE) {
    TRLMDB_LOG(LogLevel::kWarn,
               "store: skipped %s: its database name is a key of the main database",
               printable(xkey).c_str());
    return 0;
  }
  if (rc) return rc;
  out->xkey.assign(xkey);
  out->ts = ts;
  out->db_flags = db->exists ? db->flags : 0;
  if (db->custom) out->db_flags |= kDbFlagCustomCompare;
  out->values.clear();
  // Without the program's comparator LMDB would search the database in the
  // wrong order: its keys cannot be looked up yet.
  const bool searchable = db->exists && (!db->custom || st->has_comparator(dbname));
  if (key.empty()) {
    if (ts.is_put() && !db->exists) {
      TRLMDB_LOG(LogLevel::kDebug, "store: skipped the marker of a missing database: %s",
                 printable(xkey).c_str());
      return 0;
    }
    *ok = true;
    return 0;
  }
  if (ts.is_delete()) {
    if (searchable) {
      MDB_val k = as_val(key), v;
      rc = R().mdb_get(txn, db->dbi, &k, &v);
      if (rc == 0) {
        TRLMDB_LOG(LogLevel::kWarn, "store: skipped %s: stamped as deleted but present",
                   printable(xkey).c_str());
        return 0;
      }
      if (rc != MDB_NOTFOUND) return rc;
    }
    *ok = true;
    return 0;
  }
  if (!searchable) {
    if (db->exists)
      TRLMDB_LOG(LogLevel::kDebug, "store: %s waits for the program's comparator",
                 printable(xkey).c_str());
    else
      TRLMDB_LOG(LogLevel::kWarn,
                 "store: skipped %s: stamped as present but its database is missing",
                 printable(xkey).c_str());
    return 0;
  }
  MDB_val k = as_val(key), v;
  if (!db->dupsort()) {
    rc = R().mdb_get(txn, db->dbi, &k, &v);
    if (rc == 0) out->values.emplace_back(view(v));
  } else {
    Cursor cur;
    rc = cur.open(txn, db->dbi);
    if (rc == 0) rc = R().mdb_cursor_get(cur.get(), &k, &v, MDB_SET);
    while (rc == 0) {
      out->values.emplace_back(view(v));
      rc = R().mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT_DUP);
    }
    if (rc == MDB_NOTFOUND && !out->values.empty()) rc = 0;
  }
  if (rc == MDB_NOTFOUND) {
    TRLMDB_LOG(LogLevel::kWarn, "store: skipped %s: stamped as present but missing",
               printable(xkey).c_str());
    return 0;
  }
  if (rc) return rc;
  *ok = true;
  return 0;
}

// Scans `dbi` (a reserved database of xkey -> ts) after pos, adding a change
// for every entry `want` accepts, within the limits.
template <typename Want>
int scan_once(EnvState *st, Handles *handles, MDB_dbi dbi, ScanPos *pos, std::size_t max_entries,
              std::size_t max_bytes, const Want &want, std::vector<Change> *out, uint64_t *txnid,
              DbiLock &lock) {
  Txn txn;
  int rc = begin_read(st, &txn);
  if (rc) return rc;
  if (txnid) *txnid = R().mdb_txn_id(txn.get());
  TxnDbs dbs(st, handles, txn.get(), &lock);
  std::size_t added = 0, bytes = 0;
  {
    Cursor cur;
    rc = cur.open(txn.get(), dbi);
    MDB_val k, v;
    if (rc == 0) rc = seek_after(cur.get(), *pos, &k, &v);
    while (rc == 0) {
      const std::string_view xkey = view(k);
      bool full = false;
      Ts ts;
      if (!parse_ts(view(v), &ts)) {
        TRLMDB_LOG(LogLevel::kWarn, "store: skipped a malformed timestamp of %s",
                   printable(xkey).c_str());
      } else if (want(xkey, ts)) {
        Change c;
        bool ok = false;
        rc = read_change(st, &dbs, txn.get(), xkey, ts, &c, &ok);
        if (rc) break;
        if (ok) {
          bytes += c.payload_bytes();
          out->push_back(std::move(c));
          ++added;
          full = added >= max_entries || bytes >= max_bytes;
        }
      }
      // Only past an entry once it is handled: after an error the next scan
      // starts with it again.
      pos->after_xkey.assign(xkey);
      pos->at_start = false;
      if (full) break;
      rc = R().mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT);
    }
  }
  if (rc == MDB_NOTFOUND) {
    pos->finished = true;
    rc = 0;
  }
  if (rc) return rc;
  // Committing keeps the handles this read transaction opened.
  rc = txn.commit();
  if (rc == 0) dbs.committed();
  return rc;
}

template <typename Want>
int scan(EnvState *st, Handles *handles, MDB_dbi dbi, ScanPos *pos, std::size_t max_entries,
         std::size_t max_bytes, const Want &want, std::vector<Change> *out, uint64_t *txnid) {
  std::shared_lock handles_held(st->user_handles_mu);  // no program drop closes one meanwhile
  DbiLock lock(st->env());  // held across the retry: its snapshot is then the newest
  const ScanPos pos0 = *pos;
  const std::size_t out0 = out->size();
  int rc = scan_once(st, handles, dbi, pos, max_entries, max_bytes, want, out, txnid, lock);
  if (rc == kStaleSnapshot) {
    *pos = pos0;
    out->resize(out0);
    rc = scan_once(st, handles, dbi, pos, max_entries, max_bytes, want, out, txnid, lock);
  }
  return rc == kStaleSnapshot ? MDB_BAD_DBI : rc;
}

bool is_empty(MDB_txn *txn, MDB_dbi dbi, int *rc) {
  MDB_stat s;
  *rc = R().mdb_stat(txn, dbi, &s);
  return *rc == 0 && s.ms_entries == 0;
}

// One apply batch inside its write transaction.
class Applier {
 public:
  Applier(EnvState *st, Handles *handles, MDB_txn *txn, DbiLock *lock, ApplyStats *stats)
      : st_(st), txn_(txn), dbs_(st, handles, txn, lock), stats_(*stats) {}

  TxnDbs &dbs() { return dbs_; }
  bool wrote() const { return wrote_; }

  int apply(const Change &c) {
    std::string_view dbname, key;
    if (!split_xkey(c.xkey, &dbname, &key) || is_reserved_name(dbname) ||
        (dbname.empty() && is_reserved_name(key)) || !(c.ts.is_put() || c.ts.is_delete())) {
      TRLMDB_LOG(LogLevel::kWarn, "store: ignored a change of %s: not a user database's xkey",
                 printable(c.xkey).c_str());
      ++stats_.ignored;
      return 0;
    }
    int rc;
    std::optional<Ts> local = read_stamp(txn_, st_->reserved.time, c.xkey, &rc);
    if (rc) return rc;
    if (local && *local >= c.ts) {
      // The database was created again after this drop, and that reached us
      // first: the drop still deletes the keys older than it.
      if (key.empty() && !dbname.empty() && c.ts.is_delete() && local->is_put()) {
        rc = late_drop(c, dbname);
        if (rc) return rc;
      }
      ++stats_.ignored;
      return 0;
    }
    if (key.empty()) return c.ts.is_put() ? marker_put(c, dbname) : marker_delete(c, dbname);
    return c.ts.is_put() ? key_put(c, dbname, key) : key_delete(c, dbname, key);
  }

  // Databases whose marker says deleted: dropped when empty, re-stamped as
  // created when keys newer than the deletion remain. Then the clock.
  int finish() {
    std::vector<std::string> to_drop;
    for (const std::string &name : touched_) {
      DbInfo *db = nullptr;
      int rc = dbs_.find(name, &db);
      if (rc) return rc;
      if (!db->exists) continue;
      const std::string marker = make_xkey(name, {});
      std::optional<Ts> m = read_stamp(txn_, st_->reserved.time, marker, &rc);
      if (rc) return rc;
      if (m && m->is_put()) continue;
      if (m) {
        const bool empty = is_empty(txn_, db->dbi, &rc);
        if (rc) return rc;
        if (empty) {
          to_drop.push_back(name);
          continue;
        }
      }
      // A database exists iff its marker says created (verify checks it):
      // one created here by a key, or holding keys newer than its deletion,
      // is created anew now, which replicates like any other change.
      rc = stamp(marker, Ts{st_->clock.issue(), st_->node | kOpPut});
      if (rc) return rc;
    }
    if (wrote_) {
      uint64_t persisted = 0;
      int rc = meta_get_clock(txn_, st_->reserved.meta, &persisted);
      const uint64_t high = st_->clock.high_water();
      if (rc == 0 && high > persisted) rc = meta_put_clock(txn_, st_->reserved.meta, high);
      if (rc) return rc;
    }
    // Last, because LMDB closes a dropped database's handle at once, even if
    // the transaction then aborts.
    for (const std::string &name : to_drop) {
      DbInfo *db = nullptr;
      int rc = dbs_.find(name, &db);
      if (rc) return rc;
      if (st_->program_handle(db->dbi)) {
        // The program holds the handle: dropping would close it under it.
        // The database stays, empty, its marker a deletion (what verify and
        // digest read as dropped), until the program lets go.
        pending_drops_.push_back(name);
        continue;
      }
      rc = dbs_.drop(name, db);
      if (rc) return rc;
    }
    return 0;
  }

  const std::vector<std::string> &pending_drops() const { return pending_drops_; }
  const std::vector<std::pair<std::string, unsigned>> &recreate() const { return recreate_; }

 private:
  std::vector<std::string> pending_drops_;
  std::vector<std::pair<std::string, unsigned>> recreate_;  // name, flags

  int stamp(std::string_view xkey, const Ts &ts) {
    wrote_ = true;
    return write_stamp(txn_, st_->reserved, xkey, ts);
  }

  int applied(const Change &c) {
    ++stats_.applied;
    return stamp(c.xkey, c.ts);
  }

  bool gated(std::string_view dbname, const DbInfo &db, uint32_t db_flags) const {
    return (db.custom || (db_flags & kDbFlagCustomCompare)) && !st_->has_comparator(dbname);
  }

  // A name that is a key of the main database cannot also be a database.
  int find_or_skip(const Change &c, std::string_view dbname, DbInfo **db, bool *skip) {
    *skip = false;
    int rc = dbs_.find(dbname, db);
    if (rc == MDB_INCOMPATIBLE) {
      TRLMDB_LOG(LogLevel::kWarn,
                 "store: ignored a change of %s: its database name is a key of the main database",
                 printable(c.xkey).c_str());
      ++stats_.ignored;
      *skip = true;
      return 0;
    }
    return rc;
  }

  void touch(std::string_view dbname) {
    if (!dbname.empty()) touched_.emplace(dbname);
  }

  int key_put(const Change &c, std::string_view dbname, std::string_view key) {
    if (c.values.empty()) {
      TRLMDB_LOG(LogLevel::kWarn, "store: ignored a put of %s without a value",
                 printable(c.xkey).c_str());
      ++stats_.ignored;
      return 0;
    }
    DbInfo *db = nullptr;
    bool skip;
    int rc = find_or_skip(c, dbname, &db, &skip);
    if (rc || skip) return rc;
    if (gated(dbname, *db, c.db_flags)) {
      ++stats_.deferred;
      return 0;
    }
    // A put older than its database's deletion (mdb_drop(…, 1)) lost to it:
    // the node that dropped never had this key, so no tombstone of its own
    // will come. The key is deleted as of the drop, as everywhere else; the
    // tombstone travels on to the nodes that know of no drop (the database
    // may have been created again since, its marker then says so).
    std::optional<Ts> drop;
    rc = newest_drop(dbname, &drop);
    if (rc) return rc;
    if (drop && *drop > c.ts) {
      TRLMDB_LOG(LogLevel::kDebug, "store: a put of %s older than its database's drop: deleted",
                 printable(c.xkey).c_str());
      ++stats_.ignored;
      if (db->exists) {
        MDB_val k = as_val(key);
        rc = R().mdb_del(txn_, db->dbi, &k, nullptr);
        if (rc && rc != MDB_NOTFOUND) return rc;
        touch(dbname);
      }
      return stamp(c.xkey, *drop);
    }
    if (!db->exists) {
      rc = dbs_.create(dbname, c.db_flags, db);
      if (rc) return rc;
    }
    touch(dbname);
    MDB_val k = as_val(key);
    if (!db->dupsort()) {
      // The sender's database is DUPSORT and ours is not: LMDB cannot change
      // a database's order, so the key keeps one of the values.
      MDB_val v = as_val(c.values.front());
      rc = R().mdb_put(txn_, db->dbi, &k, &v, 0);
      if (rc == MDB_INCOMPATIBLE && dbname.empty()) {
        TRLMDB_LOG(LogLevel::kWarn, "store: ignored a put of %s: a database has that name",
                   printable(c.xkey).c_str());
        ++stats_.ignored;
        return 0;
      }
    } else {
      rc = R().mdb_del(txn_, db->dbi, &k, nullptr);
      if (rc == MDB_NOTFOUND) rc = 0;
      for (std::size_t i = 0; rc == 0 && i < c.values.size(); ++i) {
        MDB_val v = as_val(c.values[i]);
        rc = R().mdb_put(txn_, db->dbi, &k, &v, 0);
        if (rc == MDB_KEYEXIST) rc = 0;  // a value listed twice
      }
    }
    if (rc) return rc;
    return applied(c);
  }

  int key_delete(const Change &c, std::string_view dbname, std::string_view key) {
    DbInfo *db = nullptr;
    bool skip;
    int rc = find_or_skip(c, dbname, &db, &skip);
    if (rc || skip) return rc;
    if (db->exists) {
      if (gated(dbname, *db, c.db_flags)) {
        ++stats_.deferred;
        return 0;
      }
      MDB_val k = as_val(key);
      rc = R().mdb_del(txn_, db->dbi, &k, nullptr);
      if (rc == MDB_INCOMPATIBLE && dbname.empty()) {
        TRLMDB_LOG(LogLevel::kWarn, "store: ignored a delete of %s: a database has that name",
                   printable(c.xkey).c_str());
        ++stats_.ignored;
        return 0;
      }
      if (rc && rc != MDB_NOTFOUND) return rc;
      touch(dbname);
    }
    return applied(c);
  }

  int marker_put(const Change &c, std::string_view dbname) {
    DbInfo *db = nullptr;
    bool skip;
    int rc = find_or_skip(c, dbname, &db, &skip);
    if (rc || skip) return rc;
    // LMDB fixes a database's order at creation: a newer marker with other
    // flags can only re-create an empty database (one a deletion emptied),
    // and only once no program handle would be closed under it. A database
    // holding keys keeps its flags.
    const unsigned want = c.db_flags & kOrderFlags;
    if (db->exists && db->flags != want && !dbname.empty()) {
      const bool empty = is_empty(txn_, db->dbi, &rc);
      if (rc) return rc;
      if (empty && st_->program_handle(db->dbi)) {
        recreate_.emplace_back(std::string(dbname), want);
      } else if (empty) {
        rc = dbs_.drop(dbname, db);
        if (rc) return rc;
      }
    }
    if (!db->exists) {
      rc = dbs_.create(dbname, c.db_flags, db);
      if (rc) return rc;
    }
    if ((c.db_flags & kDbFlagCustomCompare) && !db->custom) {
      rc = meta_put_custom_compare(txn_, st_->reserved.meta, dbname);
      if (rc) return rc;
      db->custom = true;
    }
    touch(dbname);
    return applied(c);
  }

  // The newest mdb_drop(…, 1) of dbname known here: its marker if that says
  // deleted, else the one recorded when it was (meta_note_drop).
  int newest_drop(std::string_view dbname, std::optional<Ts> *out) {
    out->reset();
    if (dbname.empty()) return 0;
    int rc;
    std::optional<Ts> marker = read_stamp(txn_, st_->reserved.time, make_xkey(dbname, {}), &rc);
    if (rc) return rc;
    std::optional<Ts> noted;
    rc = meta_get_drop(txn_, st_->reserved.meta, dbname, &noted);
    if (rc == MDB_CORRUPTED) rc = 0;  // as a malformed stamp: none
    if (rc) return rc;
    if (marker && marker->is_delete()) *out = marker;
    if (noted && (!*out || *noted > **out)) *out = noted;
    return 0;
  }

  int note_drop(std::string_view dbname, const Ts &ts) {
    wrote_ = true;
    return meta_note_drop(txn_, st_->reserved.meta, dbname, ts);
  }

  // Keys written before the deletion go with it; newer ones survive it.
  int marker_delete(const Change &c, std::string_view dbname) {
    if (dbname.empty()) return applied(c);
    DbInfo *db = nullptr;
    bool skip;
    int rc = find_or_skip(c, dbname, &db, &skip);
    if (rc || skip) return rc;
    if (db->exists && gated(dbname, *db, c.db_flags)) {
      ++stats_.deferred;
      return 0;
    }
    // Kept for the puts older than it that arrive after a newer marker.
    rc = note_drop(dbname, c.ts);
    if (rc) return rc;
    if (!db->exists) return applied(c);
    rc = delete_older(dbname, db, c.ts);
    if (rc) return rc;
    touch(dbname);
    return applied(c);
  }

  // A drop older than the database's marker (created again since): its keys
  // older than the drop go, the marker stays.
  int late_drop(const Change &c, std::string_view dbname) {
    DbInfo *db = nullptr;
    bool skip;
    int rc = find_or_skip(c, dbname, &db, &skip);
    if (rc || skip) return rc;
    rc = note_drop(dbname, c.ts);
    if (rc || !db->exists || gated(dbname, *db, c.db_flags)) return rc;
    rc = delete_older(dbname, db, c.ts);
    if (rc) return rc;
    touch(dbname);
    return 0;
  }

  // Deletes every key of db stamped older than `ts` (or not at all), stamping
  // it as deleted at ts.
  int delete_older(std::string_view dbname, DbInfo *db, const Ts &ts) {
    Cursor cur;
    int rc = cur.open(txn_, db->dbi);
    MDB_val k, v;
    if (rc == 0) rc = R().mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST);
    std::string xkey;
    while (rc == 0) {
      xkey.clear();
      append_xkey(&xkey, dbname, view(k));
      std::optional<Ts> ks = read_stamp(txn_, st_->reserved.time, xkey, &rc);
      if (rc) break;
      if (!ks || *ks < ts) {
        rc = R().mdb_cursor_del(cur.get(), db->dupsort() ? MDB_NODUPDATA : 0);
        if (rc == 0) rc = stamp(xkey, ts);
        // The cursor now rests on the next key, which MDB_NEXT_NODUP returns.
      }
      if (rc == 0) rc = R().mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT_NODUP);
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
  }

  EnvState *st_;
  MDB_txn *txn_;
  TxnDbs dbs_;
  ApplyStats &stats_;
  std::set<std::string, std::less<>> touched_;
  bool wrote_ = false;
};

}  // namespace

struct Store::Impl {
  Handles handles;
  std::set<std::string> pending_drops;       // see Applier::finish
  std::map<std::string, unsigned> recreate;  // see Applier::marker_put
};

Store::Store(EnvState *st) : st_(st), impl_(new Impl) {}

Store::~Store() { delete impl_; }

int Store::ensure_ready(uint32_t *node) {
  if (!st_->reserved_ready.load(std::memory_order_acquire) ||
      !st_->reserved_committed.load(std::memory_order_acquire)) {
    DbiLock lock(st_->env());
    Txn txn;
    int rc = txn.begin(st_->env(), 0);
    bool opened = false;
    if (rc == 0) rc = prepare_reserved(st_, txn.get(), &lock, &opened);
    if (rc) return rc;
    rc = txn.commit();
    if (rc) {
      if (opened) st_->reserved_ready.store(false, std::memory_order_release);
      return rc;
    }
    reserved_committed(st_);
  }
  if (node) *node = st_->node;
  return 0;
}

int Store::read_recent(ScanPos *pos, std::size_t max_entries, std::size_t max_bytes,
                       const std::function<bool(std::string_view xkey, const Ts &ts)> &skip,
                       std::vector<Change> *out, uint64_t *txnid) {
  int rc = ensure_ready(nullptr);
  if (rc) return rc;
  auto want = [&](std::string_view xkey, const Ts &ts) { return !skip || !skip(xkey, ts); };
  return scan(st_, &impl_->handles, st_->reserved.recent, pos, max_entries, max_bytes, want, out,
              txnid);
}

int Store::read_time(ScanPos *pos, const SendSet &set, std::size_t max_entries,
                     std::size_t max_bytes, std::vector<Change> *out) {
  if (set.empty()) {
    pos->finished = true;
    return 0;
  }
  int rc = ensure_ready(nullptr);
  if (rc) return rc;
  auto want = [&](std::string_view xkey, const Ts &) { return set.contains(key_hash(xkey)); };
  return scan(st_, &impl_->handles, st_->reserved.time, pos, max_entries, max_bytes, want, out,
              nullptr);
}

int Store::recent_count(std::size_t *n) {
  int rc = ensure_ready(nullptr);
  if (rc) return rc;
  Txn txn;
  rc = begin_read(st_, &txn);
  MDB_stat s;
  if (rc == 0) rc = R().mdb_stat(txn.get(), st_->reserved.recent, &s);
  if (rc == 0) *n = s.ms_entries;
  return rc;
}

int Store::apply(const std::vector<Change> &changes, ApplyStats *stats) {
  *stats = ApplyStats{};
  if (changes.empty()) return 0;
  if (st_->read_only) return EACCES;
  for (const Change &c : changes) stats->max_seen = std::max(stats->max_seen, c.ts.time);
  // Before any fresh timestamp of this batch (a database re-created by a
  // newer key) is issued: those must be newer than everything received.
  st_->clock.observe(stats->max_seen);

  DbiLock lock(st_->env());
  Txn txn;
  int rc = txn.begin(st_->env(), 0);
  bool opened = false;
  if (rc == 0) rc = prepare_reserved(st_, txn.get(), &lock, &opened);
  if (rc) return rc;
  Applier applier(st_, &impl_->handles, txn.get(), &lock, stats);
  for (std::size_t i = 0; rc == 0 && i < changes.size(); ++i) rc = applier.apply(changes[i]);
  if (rc == 0) rc = applier.finish();
  if (rc == 0 && (applier.wrote() || opened)) {
    rc = txn.commit();
    if (rc == 0) {
      applier.dbs().committed();
      if (opened) reserved_committed(st_);
      impl_->pending_drops.insert(applier.pending_drops().begin(), applier.pending_drops().end());
      for (const auto &[name, flags] : applier.recreate()) impl_->recreate[name] = flags;
      return 0;
    }
  } else {
    txn.abort();
  }
  if (opened) st_->reserved_ready.store(false, std::memory_order_release);
  if (rc) {
    const std::size_t deferred = stats->deferred;
    *stats = ApplyStats{};
    stats->deferred = deferred;
  }
  return rc;
}

int Store::forget_recent(const std::vector<std::pair<std::string, Ts>> &acked) {
  if (acked.empty()) return 0;
  int rc = ensure_ready(nullptr);
  if (rc) return rc;
  Txn txn;
  rc = txn.begin(st_->env(), 0);
  if (rc == 0 && !reserved_usable(st_, txn.get())) rc = MDB_BAD_DBI;
  for (std::size_t i = 0; rc == 0 && i < acked.size(); ++i) {
    MDB_val k = as_val(acked[i].first), v;
    rc = R().mdb_get(txn.get(), st_->reserved.recent, &k, &v);
    Ts ts;
    if (rc == 0 && parse_ts(view(v), &ts) && ts == acked[i].second)
      rc = R().mdb_del(txn.get(), st_->reserved.recent, &k, nullptr);
    if (rc == MDB_NOTFOUND) rc = 0;
  }
  if (rc) return rc;
  return txn.commit();
}

int Store::drop_pending() {
  if (impl_->pending_drops.empty() && impl_->recreate.empty()) return 0;
  int rc = ensure_ready(nullptr);
  if (rc) return rc;
  DbiLock lock(st_->env());
  Txn txn;
  rc = txn.begin(st_->env(), 0);
  if (rc) return rc;
  TxnDbs dbs(st_, &impl_->handles, txn.get(), &lock);
  bool dropped = false;
  for (auto it = impl_->pending_drops.begin(); rc == 0 && it != impl_->pending_drops.end();) {
    DbInfo *db = nullptr;
    rc = dbs.find(*it, &db);
    if (rc) break;
    if (!db->exists) {
      it = impl_->pending_drops.erase(it);
      continue;
    }
    if (st_->program_handle(db->dbi)) {
      ++it;
      continue;
    }
    std::optional<Ts> m = read_stamp(txn.get(), st_->reserved.time, make_xkey(*it, {}), &rc);
    if (rc) break;
    const bool empty = is_empty(txn.get(), db->dbi, &rc);
    if (rc) break;
    if (m && m->is_delete() && empty) {
      rc = dbs.drop(*it, db);
      dropped = dropped || rc == 0;
    }
    it = impl_->pending_drops.erase(it);  // re-created meanwhile: nothing to do
  }
  for (auto it = impl_->recreate.begin(); rc == 0 && it != impl_->recreate.end();) {
    DbInfo *db = nullptr;
    rc = dbs.find(it->first, &db);
    if (rc) break;
    if (db->exists && st_->program_handle(db->dbi)) {
      ++it;
      continue;
    }
    const bool empty = db->exists ? is_empty(txn.get(), db->dbi, &rc) : true;
    if (rc) break;
    if (db->exists && empty && db->flags != it->second) {
      rc = dbs.drop(it->first, db);
      if (rc == 0) rc = dbs.create(it->first, it->second, db);
      dropped = dropped || rc == 0;
    }
    it = impl_->recreate.erase(it);
  }
  if (rc == 0 && dropped) {
    rc = txn.commit();
    if (rc == 0) dbs.committed();
    return rc;
  }
  txn.abort();
  return rc;
}

int Store::snapshot(std::vector<ReconItem> *out) {
  int rc = ensure_ready(nullptr);
  if (rc) return rc;
  Txn txn;
  rc = begin_read(st_, &txn);
  if (rc) return rc;
  MDB_stat s;
  rc = R().mdb_stat(txn.get(), st_->reserved.time, &s);
  if (rc) return rc;
  out->clear();
  out->reserve(s.ms_entries);
  Cursor cur;
  rc = cur.open(txn.get(), st_->reserved.time);
  MDB_val k, v;
  if (rc == 0) rc = R().mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST);
  while (rc == 0) {
    Ts ts;
    if (parse_ts(view(v), &ts)) {
      out->push_back(ReconItem{key_hash(view(k)), ts});
    } else {
      TRLMDB_LOG(LogLevel::kWarn, "store: left out a malformed timestamp of %s",
                 printable(view(k)).c_str());
    }
    rc = R().mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT);
  }
  return rc == MDB_NOTFOUND ? 0 : rc;
}

}  // namespace trlmdb::repl
