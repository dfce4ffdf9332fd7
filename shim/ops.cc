#include "ops.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <thread>

#include "bookkeeping.h"
#include "cursor_layout.h"
#include "dbi_gate.h"
#include "env_state.h"
#include "format.h"
#include "main_cursor.h"
#include "real_lmdb.h"
#include "repl_hooks.h"
#include "repl_presence.h"

namespace trlmdb::ops {

namespace {

const RealLmdb &R() { return real(); }

int locked_dbi_open(MDB_txn *txn, const char *name, unsigned flags, MDB_dbi *dbi) {
  std::lock_guard lock(g_dbi_open_mu);
  return R().mdb_dbi_open(txn, name, flags, dbi);
}

constexpr unsigned kPutFlags = MDB_NOOVERWRITE | MDB_NODUPDATA | MDB_CURRENT | MDB_RESERVE |
                               MDB_APPEND | MDB_APPENDDUP | MDB_MULTIPLE;

std::string_view view(const MDB_val &v) {
  return {static_cast<const char *>(v.mv_data), v.mv_size};
}

using main_cursor::reserved_key;

bool is_dupsort(MDB_txn *txn, MDB_dbi dbi) {
  unsigned flags = 0;
  return R().mdb_dbi_flags(txn, dbi, &flags) == 0 && (flags & MDB_DUPSORT);
}

// What a write call needs to stamp its change: the frame of the innermost
// write transaction and the database's name. Null members mean "not ours to
// stamp": the real call decides (and fails, e.g. in a read-only txn).
struct WriteTarget {
  EnvState *st = nullptr;
  Frame *frame = nullptr;
  const std::string *name = nullptr;
};

WriteTarget write_target(MDB_txn *txn, MDB_dbi dbi) {
  WriteTarget t;
  t.st = txn_state(txn);
  if (!t.st) return t;
  t.frame = t.st->writer_frame(txn);
  if (t.frame) t.name = t.st->db_name(dbi);
  return t;
}

// The xkey `dbname\0key` must itself be a valid LMDB key (DESIGN.md section 1),
// so the shim's key limit is LMDB's less the name and its terminator.
bool xkey_too_long(const WriteTarget &t, const MDB_val *key) {
  return t.name && key && key->mv_size > 0 && key->mv_size <= t.st->max_key &&
         t.name->size() + 1 + key->mv_size > t.st->max_key;
}

int note_change(const WriteTarget &t, MDB_dbi dbi, std::string_view key, Op op) {
  if (!t.name) {
    std::fprintf(stderr, "trlmdb: change to an unknown database handle %u was not stamped\n", dbi);
    return 0;
  }
  t.frame->pending.add(dbi, *t.name, key, op);
  if (t.frame->pending.size() >= kEarlyFlushRecords && t.st->frame_count() == 1)
    return flush_pending(t.st, t.frame);
  return 0;
}

int count_reserved_in_main(MDB_txn *txn) {
  // LMDB sets the main database's comparator when it is first opened; a
  // program may not have done so yet in this environment.
  MDB_dbi main_dbi;
  if (locked_dbi_open(txn, nullptr, 0, &main_dbi) != 0) return 0;
  int n = 0;
  for (std::string_view name : {kTimeDb, kRecentDb, kMetaDb}) {
    MDB_val k{name.size(), const_cast<char *>(name.data())}, v;
    if (R().mdb_get(txn, kMainDbi, &k, &v) == 0) ++n;
  }
  return n;
}

// Until the reserved databases hold their three handle slots, LMDB would let
// the program open three databases more than its mdb_env_set_maxdbs allows;
// count its open handles instead, as LMDB does for a name not yet open.
bool user_dbs_full(MDB_txn *txn, const char *name, unsigned flags) {
  constexpr unsigned kValidFlags = MDB_REVERSEKEY | MDB_DUPSORT | MDB_INTEGERKEY | MDB_DUPFIXED |
                                   MDB_INTEGERDUP | MDB_REVERSEDUP | MDB_CREATE;
  EnvState *st = txn_state(txn);
  if (!st || !st->opened || (flags & ~kValidFlags)) return false;
  unsigned f;
  // A transaction that began before the reserved databases were created does
  // not see their handles either.
  if (st->reserved_ready.load(std::memory_order_acquire) &&
      R().mdb_dbi_flags(txn, st->reserved.time, &f) == 0)
    return false;
  unsigned open_handles = 0;
  const MDB_dbi slots = st->user_maxdbs + kReservedDbCount + 2;
  for (MDB_dbi dbi = kMainDbi + 1; dbi < slots; ++dbi) {
    if (st->is_reserved_dbi(dbi) || R().mdb_dbi_flags(txn, dbi, &f) != 0) continue;
    const std::string *open_name = st->db_name(dbi);
    if (open_name && *open_name == name) return false;  // already open: LMDB returns it
    ++open_handles;
  }
  return open_handles >= st->user_maxdbs;
}

// MDB_APPEND compares with the last key of the database, which in the main
// database may be a reserved record; compare with the last visible key.
// `user_cursor`, when given, is left on the last visible key, where LMDB's
// comparison leaves it.
int append_on_main(MDB_txn *txn, MDB_val *key, unsigned *flags, MDB_cursor *user_cursor) {
  EnvState *st = txn_state(txn);
  if (!(*flags & MDB_APPEND) || !key || key->mv_size == 0 || !st || key->mv_size > st->max_key)
    return 0;  // LMDB's own checks come first
  MDB_cursor *mc = user_cursor;
  if (!mc && R().mdb_cursor_open(txn, kMainDbi, &mc) != 0) return 0;
  MDB_val k, d;
  int rc = R().mdb_cursor_get(mc, &k, &d, MDB_LAST);
  while (rc == 0 && reserved_key(&k)) rc = R().mdb_cursor_get(mc, &k, &d, MDB_PREV);
  const bool refused = rc == 0 && R().mdb_cmp(txn, kMainDbi, key, &k) <= 0;
  if (mc != user_cursor) R().mdb_cursor_close(mc);
  if (refused) return MDB_KEYEXIST;
  *flags &= ~MDB_APPEND;  // after every visible key: an ordinary insert
  return 0;
}

void abort_frames(EnvState *st, std::size_t depth) {
  Frame *f = st->frame_at(depth);
  const bool opened = f->opened_reserved;
  for (std::size_t d = depth; Frame *g = st->frame_at(d); ++d) main_cursor::forget_txn(g->txn);
  R().mdb_txn_abort(f->txn);
  st->pop_frames(depth);
  if (opened) st->reserved_ready.store(false, std::memory_order_release);
}

int commit_frame(EnvState *st, std::size_t depth) {
  // LMDB commits a transaction's open child first; doing it here lets the
  // child's bookkeeping join the parent's.
  while (st->frame_count() > depth + 1) {
    int rc = commit_frame(st, st->frame_count() - 1);
    if (rc) {
      abort_frames(st, depth);
      return rc;
    }
  }
  Frame *f = st->frame_at(depth);
  main_cursor::forget_txn(f->txn);
  if (depth > 0) {
    int rc = R().mdb_txn_commit(f->txn);
    if (rc == 0) st->frame_at(depth - 1)->pending.append(f->pending);
    st->pop_frames(depth);
    return rc;
  }
  int rc = flush_pending(st, f);
  if (rc) {
    abort_frames(st, 0);
    return rc;
  }
  const bool opened = f->opened_reserved;
  const std::optional<Ts> last = f->last_stamp;
  rc = R().mdb_txn_commit(f->txn);
  st->pop_frames(0);
  if (rc && opened) st->reserved_ready.store(false, std::memory_order_release);
  if (rc == 0 && last) st->set_last_commit(*last);
  if (rc == 0 && opened) st->reserved_committed.store(true, std::memory_order_release);
  if (rc == 0 && last) {
    if (const ReplHooks *h = repl_hooks()) h->committed(st);
  }
  return rc;
}

// The main database holds the reserved databases' records, so its key order
// (and whether it may hold named databases at all) must stay LMDB's default.
constexpr unsigned kKeyOrderFlags =
    MDB_REVERSEKEY | MDB_DUPSORT | MDB_INTEGERKEY | MDB_DUPFIXED | MDB_INTEGERDUP | MDB_REVERSEDUP;

// Refused where the reserved databases are, or will be once something is
// written; a read-only environment without them may use any flags.
bool main_flags_would_change(MDB_txn *txn, unsigned flags) {
  unsigned current = 0;
  if (!(flags & kKeyOrderFlags) || R().mdb_dbi_flags(txn, kMainDbi, &current) != 0) return false;
  if (!(flags & kKeyOrderFlags & ~current)) return false;
  EnvState *st = txn_state(txn);
  return (st && !st->read_only) || count_reserved_in_main(txn) > 0;
}

// mdb_drop on the main database empties it; here that must spare the reserved
// databases' records, so the visible keys are deleted one by one.
int drop_main(const WriteTarget &t, MDB_txn *txn) {
  MDB_cursor *mc = nullptr;
  int rc = R().mdb_cursor_open(txn, kMainDbi, &mc);
  if (rc) return rc;
  MDB_val k, d;
  bool changed = false;
  rc = R().mdb_cursor_get(mc, &k, &d, MDB_FIRST);
  while (rc == 0) {
    if (reserved_key(&k)) {
      rc = R().mdb_cursor_get(mc, &k, &d, MDB_NEXT);
      continue;
    }
    std::string key(view(k));
    rc = R().mdb_cursor_del(mc, 0);
    if (rc == MDB_INCOMPATIBLE) {  // a named database's record: kept
      rc = R().mdb_cursor_get(mc, &k, &d, MDB_NEXT);
      continue;
    }
    changed = changed || rc == 0;
    if (rc == 0) rc = note_change(t, kMainDbi, key, Op::kDelete);
    if (rc == 0) rc = R().mdb_cursor_get(mc, &k, &d, MDB_NEXT);
  }
  R().mdb_cursor_close(mc);
  if (rc != MDB_NOTFOUND) return rc;
  if (changed) return 0;
  // LMDB's drop dirties the transaction even when there was nothing to
  // delete (its commit gets a new transaction id); so does a scratch record.
  static constexpr char kScratch[] = "_trlmdb_drop";
  MDB_val sk{sizeof kScratch - 1, const_cast<char *>(kScratch)}, sv{0, nullptr};
  rc = R().mdb_put(txn, kMainDbi, &sk, &sv, 0);
  return rc ? rc : R().mdb_del(txn, kMainDbi, &sk, nullptr);
}

}  // namespace

int set_comparator(MDB_txn *txn, MDB_dbi dbi, MDB_cmp_func *cmp, bool dup) {
  int rc = dup ? R().mdb_set_dupsort(txn, dbi, cmp) : R().mdb_set_compare(txn, dbi, cmp);
  EnvState *st = txn_state(txn);
  if (rc || !st || !cmp) return rc;
  st->note_comparator(dbi);
  if (const ReplHooks *h = repl_hooks(); h && st->repl.load(std::memory_order_acquire))
    h->comparator(st);
  return rc;
}

bool is_reserved_handle(MDB_txn *txn, MDB_dbi dbi) {
  if (dbi <= kMainDbi || dbi > g_max_reserved_dbi.load(std::memory_order_relaxed)) return false;
  EnvState *st = txn_state(txn);
  return st && st->is_reserved_dbi(dbi);
}

// A read-only environment cannot run the shim's write transaction: its
// reserved databases are opened by a read transaction on a thread of its own,
// whose reader slot LMDB frees when the thread ends. Until the program reads,
// mdb_env_info leaves out the high-water mark that slot raised.
void open_reserved_read_only(EnvState *st) {
  MDB_envinfo before{}, after{};
  R().mdb_env_info(st->env(), &before);
  std::thread([st] {
    MDB_txn *txn = nullptr;
    if (R().mdb_txn_begin(st->env(), nullptr, MDB_RDONLY, &txn) != 0) return;
    int setup;
    {
      std::lock_guard lock(g_dbi_open_mu);
      setup = setup_reserved(st, txn, false);
    }
    st->reserved_in_main.store(count_reserved_in_main(txn), std::memory_order_relaxed);
    if (setup == 0 && R().mdb_txn_commit(txn) == 0) {
      st->reserved_ready.store(true, std::memory_order_release);
      st->reserved_committed.store(true, std::memory_order_release);
    } else if (setup != 0) {
      R().mdb_txn_abort(txn);
    }
  }).join();
  R().mdb_env_info(st->env(), &after);
  st->phantom_reader.store(after.me_numreaders > before.me_numreaders, std::memory_order_relaxed);
}

int env_create(MDB_env **env) {
  int rc = R().mdb_env_create(env);
  if (rc) return rc;
  auto *st = new (std::nothrow) EnvState(*env);
  if (!st) {
    R().mdb_env_close(*env);
    *env = nullptr;
    return ENOMEM;
  }
  R().mdb_env_set_userctx(*env, st);
  R().mdb_env_set_maxdbs(*env, kReservedDbCount);
  return 0;
}

int env_open(MDB_env *env, const char *path, unsigned flags, mdb_mode_t mode) {
  int rc = R().mdb_env_open(env, path, flags, mode);
  EnvState *st = env_state(env);
  if (rc || !st) return rc;
  unsigned env_flags = 0;
  R().mdb_env_get_flags(env, &env_flags);
  st->read_only = env_flags & MDB_RDONLY;
  if (path) {
    // Absolute: the lock file is first opened at some later commit, after
    // the program may have changed its working directory.
    char *abs = realpath(path, nullptr);
    st->repl_lock = repl_lock_path(abs ? abs : path, env_flags & MDB_NOSUBDIR);
    std::free(abs);
  }
  st->max_key = static_cast<unsigned>(R().mdb_env_get_maxkeysize(env));
  st->on_open(st->user_maxdbs + kReservedDbCount + 2);
  if (st->read_only) {
    open_reserved_read_only(st);
    return 0;  // nothing to replicate into: no replicator
  }
  // Reserved databases that exist are opened now, so they hold their handle
  // slots (the program's maxdbs stays exact) and the node word is known. A
  // write transaction that changes nothing commits without a new transaction
  // id. Missing ones are created by the program's first write transaction:
  // a commit of the shim's own would move every transaction id it sees.
  MDB_txn *txn = nullptr;
  if (R().mdb_txn_begin(env, nullptr, 0, &txn) != 0) return 0;
  int setup;
  {
    std::lock_guard lock(g_dbi_open_mu);
    setup = setup_reserved(st, txn, false);
  }
  if (setup == 0 && R().mdb_txn_commit(txn) == 0) {
    st->reserved_ready.store(true, std::memory_order_release);
    st->reserved_committed.store(true, std::memory_order_release);
  } else if (setup != 0) {
    R().mdb_txn_abort(txn);
  }
  if (const ReplHooks *h = repl_hooks()) h->opened(st, path, flags);
  return 0;
}

int env_info(MDB_env *env, MDB_envinfo *info) {
  int rc = R().mdb_env_info(env, info);
  EnvState *st = env_state(env);
  if (rc == 0 && info && st && st->phantom_reader.load(std::memory_order_relaxed))
    --info->me_numreaders;
  return rc;
}

void env_close(MDB_env *env) {
  EnvState *st = env_state(env);
  if (st && st->repl.load(std::memory_order_acquire)) {
    if (const ReplHooks *h = repl_hooks()) h->closing(st);
  }
  R().mdb_env_close(env);
  delete st;
}

// LMDB requires that no transaction of the process is active while an open
// environment's map is resized: the replicator's thread is one more user.
int env_set_mapsize(MDB_env *env, size_t size) {
  EnvState *st = env_state(env);
  const ReplHooks *h = repl_hooks();
  if (!st || !h || !st->repl.load(std::memory_order_acquire))
    return R().mdb_env_set_mapsize(env, size);
  struct Args {
    MDB_env *env;
    size_t size;
  } args{env, size};
  return h->exclusive(
      st,
      [](void *p) {
        auto *a = static_cast<Args *>(p);
        return R().mdb_env_set_mapsize(a->env, a->size);
      },
      &args);
}

int env_set_maxdbs(MDB_env *env, MDB_dbi dbs) {
  EnvState *st = env_state(env);
  if (!st || dbs > ~MDB_dbi{0} - kReservedDbCount) return R().mdb_env_set_maxdbs(env, dbs);
  int rc = R().mdb_env_set_maxdbs(env, dbs + kReservedDbCount);
  if (rc == 0) st->user_maxdbs = dbs;
  return rc;
}

int env_set_userctx(MDB_env *env, void *ctx) {
  EnvState *st = env_state(env);
  if (!st) return R().mdb_env_set_userctx(env, ctx);
  st->user_ctx = ctx;
  return 0;
}

void *env_get_userctx(MDB_env *env) {
  EnvState *st = env_state(env);
  return st ? st->user_ctx : (env ? R().mdb_env_get_userctx(env) : nullptr);
}

int env_stat(MDB_env *env, MDB_stat *stat) {
  int rc = R().mdb_env_stat(env, stat);
  if (rc || !stat) return rc;
  // No transaction of the shim's own here: it would take a reader slot that
  // mdb_env_info reports. Read-write environments hold all the reserved
  // databases once set up; read-only ones learn it in their first read txn.
  EnvState *st = env_state(env);
  if (st && st->reserved_committed.load(std::memory_order_acquire))
    stat->ms_entries -= kReservedDbCount;
  else if (st && st->reserved_in_main.load(std::memory_order_relaxed) > 0)
    stat->ms_entries -= st->reserved_in_main.load(std::memory_order_relaxed);
  return 0;
}

int txn_begin(MDB_env *env, MDB_txn *parent, unsigned flags, MDB_txn **txn) {
  EnvState *st = env_state(env);
  if (st && !parent && !(flags & MDB_RDONLY)) st->wait_repl_turn();
  int rc = R().mdb_txn_begin(env, parent, flags, txn);
  if (rc) return rc;
  if (!st) return 0;
  if ((flags & MDB_RDONLY) || st->read_only) {
    st->phantom_reader.store(false, std::memory_order_relaxed);
    if (st->reserved_in_main.load(std::memory_order_relaxed) < 0)
      st->reserved_in_main.store(count_reserved_in_main(*txn), std::memory_order_relaxed);
    return 0;
  }
  st->push_frame(*txn);
  return 0;
}

// The gate is told after the real call: until then the transaction's new
// handles are still private to it.
int txn_commit(MDB_txn *txn) {
  EnvState *st = txn_state(txn);
  std::size_t depth = 0;
  int rc =
      (!st || !st->find_frame(txn, &depth)) ? R().mdb_txn_commit(txn) : commit_frame(st, depth);
  dbi_gate::ended(txn);
  return rc;
}

void txn_abort(MDB_txn *txn) {
  EnvState *st = txn_state(txn);
  std::size_t depth = 0;
  if (!st || !st->find_frame(txn, &depth))
    R().mdb_txn_abort(txn);
  else
    abort_frames(st, depth);
  dbi_gate::ended(txn);
}

// LMDB finds a name among the handles the process opened before this
// transaction began (and does not look in the snapshot then), but a slot
// freed by a drop and reused later keeps its new name there. When the
// replicator opened such a handle after a read transaction began, LMDB hands
// the transaction a handle it cannot use (EINVAL on every call); without the
// replicator the name would have been looked up in the snapshot, where a
// database created meanwhile does not exist.
static bool replicator_opened_later(MDB_txn *txn, const char *name, MDB_dbi dbi) {
  unsigned flags;
  if (R().mdb_dbi_flags(txn, dbi, &flags) != EINVAL) return false;
  MDB_val k{std::strlen(name), const_cast<char *>(name)}, v;
  return R().mdb_get(txn, kMainDbi, &k, &v) == MDB_NOTFOUND;
}

int dbi_open(MDB_txn *txn, const char *name, unsigned flags, MDB_dbi *dbi) {
  if (name && is_reserved_name(name)) return EACCES;
  if (!txn) return R().mdb_dbi_open(txn, name, flags, dbi);
  if (!name && main_flags_would_change(txn, flags)) {
    std::fprintf(stderr,
                 "trlmdb: the main database cannot take key flags 0x%x: it holds the reserved "
                 "databases, and LMDB cannot order their records with other flags\n",
                 flags & kKeyOrderFlags);
    return MDB_INCOMPATIBLE;
  }
  if (name && user_dbs_full(txn, name, flags)) return MDB_DBS_FULL;
  WriteTarget t = write_target(txn, kMainDbi);
  bool created = false;
  if (name && t.frame && (flags & MDB_CREATE)) {
    MDB_val k{std::strlen(name), const_cast<char *>(name)}, v;
    created = R().mdb_get(txn, kMainDbi, &k, &v) == MDB_NOTFOUND;
    if (created && k.mv_size + 1 > t.st->max_key) return MDB_BAD_VALSIZE;
  }
  int rc;
  {
    std::lock_guard lock(g_dbi_open_mu);
    rc = R().mdb_dbi_open(txn, name, flags, dbi);
    if (rc == 0 && t.st) {
      // The handle is private to the transaction tree until its root ends.
      Frame *root = t.st->writer_frame(txn) ? t.st->frame_at(0) : nullptr;
      dbi_gate::opened_in(t.st->env(), root ? root->txn : txn);
    }
  }
  if (rc || !t.st) return rc;
  if (name && !t.frame && !t.st->program_handle(*dbi) && replicator_opened_later(txn, name, *dbi))
    return MDB_NOTFOUND;
  if (name) t.st->set_db_name(*dbi, name);
  if (name) t.st->set_program_handle(*dbi, true);
  if (created) {
    t.name = t.st->db_name(*dbi);
    return note_change(t, *dbi, {}, Op::kPut);
  }
  return 0;
}

void dbi_close(MDB_env *env, MDB_dbi dbi) {
  EnvState *st = env_state(env);
  if (st && st->is_reserved_dbi(dbi)) return;
  if (st) st->set_program_handle(dbi, false);
  R().mdb_dbi_close(env, dbi);
}

int stat(MDB_txn *txn, MDB_dbi dbi, MDB_stat *stat) {
  if (is_reserved_handle(txn, dbi)) return EINVAL;
  int rc = R().mdb_stat(txn, dbi, stat);
  if (rc == 0 && dbi == kMainDbi) stat->ms_entries -= count_reserved_in_main(txn);
  return rc;
}

int drop(MDB_txn *txn, MDB_dbi dbi, int del) {
  if (is_reserved_handle(txn, dbi) || static_cast<unsigned>(del) > 1) return EINVAL;
  WriteTarget t = write_target(txn, dbi);
  if (!t.name) return R().mdb_drop(txn, dbi, del);
  if (dbi == kMainDbi) {
    int rc = drop_main(t, txn);
    if (rc == 0) main_cursor::emptied(txn);
    return rc;
  }
  PendingSet dropped;
  int rc = record_drop(t.st, txn, dbi, del, &dropped);
  if (rc) return rc;
  // Deleting the database deletes its record in the main database too,
  // which moves the main database's cursors that stood on it, as mdb_del does.
  const std::string record = del ? *t.name : std::string();
  const MDB_val record_key{record.size(), const_cast<char *>(record.data())};
  std::vector<MDB_cursor *> moved;
  if (del) {
    moved = main_cursor::standing_on(txn, record_key, nullptr);
    // Deleting closes the handle at once, env-wide, like a change of the
    // handle table by mdb_dbi_open: the replicator must not be reading that
    // database meanwhile, nor open handles until this transaction ended.
    struct Args {
      EnvState *st;
      MDB_txn *txn, *root;
      MDB_dbi dbi;
    } args{t.st, txn, t.st->frame_at(0) ? t.st->frame_at(0)->txn : txn, dbi};
    auto locked_drop = [](void *p) {
      auto *a = static_cast<Args *>(p);
      std::lock_guard lock(g_dbi_open_mu);
      dbi_gate::opened_in(a->st->env(), a->root);
      return R().mdb_drop(a->txn, a->dbi, 1);
    };
    // Not through the replicator's loop: it may be waiting for the write
    // lock this transaction holds.
    std::unique_lock handles(t.st->user_handles_mu);
    rc = locked_drop(&args);
  } else {
    rc = R().mdb_drop(txn, dbi, del);
  }
  if (rc == 0 && del) t.st->set_program_handle(dbi, false);
  if (rc == 0 && del) main_cursor::after_delete(txn, record_key, std::move(moved), nullptr);
  if (rc == 0) t.frame->pending.append(dropped);
  return rc;
}

int get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data) {
  if (is_reserved_handle(txn, dbi)) return EINVAL;
  if (dbi == kMainDbi && reserved_key(key) && data) {
    MDB_val scratch;
    int rc = R().mdb_get(txn, dbi, key, &scratch);
    return rc == 0 ? MDB_NOTFOUND : rc;
  }
  return R().mdb_get(txn, dbi, key, data);
}

int put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned flags) {
  if (is_reserved_handle(txn, dbi)) return EINVAL;
  if (dbi == kMainDbi && data && reserved_key(key)) return EACCES;
  WriteTarget t = write_target(txn, dbi);
  if (data && !(flags & ~kPutFlags) && xkey_too_long(t, key)) return MDB_BAD_VALSIZE;
  if (dbi == kMainDbi && t.frame && data && !(flags & ~kPutFlags)) {
    if (int rc = append_on_main(txn, key, &flags, nullptr)) return rc;
  }
  int rc = R().mdb_put(txn, dbi, key, data, flags);
  if (rc || !t.frame) return rc;
  return note_change(t, dbi, view(*key), Op::kPut);
}

int del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data) {
  if (is_reserved_handle(txn, dbi)) return EINVAL;
  if (dbi == kMainDbi && reserved_key(key)) return EACCES;
  WriteTarget t = write_target(txn, dbi);
  if (dbi == kMainDbi && key && t.frame) {
    // The key may point into the map, which the delete changes.
    const std::string deleted(view(*key));
    const auto moved = main_cursor::standing_on(txn, *key, nullptr);
    int rc = R().mdb_del(txn, dbi, key, data);
    if (rc) return rc;
    main_cursor::after_delete(txn, MDB_val{deleted.size(), const_cast<char *>(deleted.data())},
                              moved, nullptr);
    return note_change(t, dbi, deleted, Op::kDelete);
  }
  int rc = R().mdb_del(txn, dbi, key, data);
  if (rc || !t.frame) return rc;
  const Op op = (data && is_dupsort(txn, dbi)) ? Op::kUnknown : Op::kDelete;
  return note_change(t, dbi, view(*key), op);
}

int cursor_open(MDB_txn *txn, MDB_dbi dbi, MDB_cursor **cursor) {
  if (is_reserved_handle(txn, dbi)) return EINVAL;
  int rc = R().mdb_cursor_open(txn, dbi, cursor);
  if (rc) return rc;
  cursor_layout::check(*cursor, R().mdb_cursor_dbi(*cursor));
  if (dbi == kMainDbi) main_cursor::opened(*cursor, write_target(txn, dbi).frame != nullptr);
  return rc;
}

int cursor_renew(MDB_txn *txn, MDB_cursor *mc) {
  int rc = R().mdb_cursor_renew(txn, mc);
  if (rc) return rc;  // a refused renewal leaves the cursor as it was
  main_cursor::forget(mc);
  const MDB_dbi dbi = R().mdb_cursor_dbi(mc);
  cursor_layout::check(mc, dbi);
  if (dbi == kMainDbi) main_cursor::opened(mc, false);
  return rc;
}

int cursor_put(MDB_cursor *mc, MDB_val *key, MDB_val *data, unsigned flags) {
  if (!mc || !key) return R().mdb_cursor_put(mc, key, data, flags);
  const MDB_dbi dbi = R().mdb_cursor_dbi(mc);
  WriteTarget t = write_target(R().mdb_cursor_txn(mc), dbi);
  if (dbi == kMainDbi && t.frame) {  // else LMDB refuses the transaction first
    if (flags & MDB_CURRENT) {
      if (int rc = main_cursor::check_write(mc, false)) return rc;
    } else if (reserved_key(key)) {
      return EACCES;
    }
  }
  if (!(flags & MDB_CURRENT) && data && !(flags & ~kPutFlags) && xkey_too_long(t, key))
    return MDB_BAD_VALSIZE;
  if (dbi == kMainDbi && t.frame && data && !(flags & ~kPutFlags)) {
    if (int rc = append_on_main(t.frame->txn, key, &flags, mc)) {
      main_cursor::repositioned(mc, rc, key, false);
      return rc;
    }
  }
  const std::size_t multiple_in = (flags & MDB_MULTIPLE) && data ? data[1].mv_size : 0;
  int rc = R().mdb_cursor_put(mc, key, data, flags);
  // A put searches first: even a refused one moved the cursor, onto the key
  // it found (MDB_KEYEXIST, or MDB_INCOMPATIBLE for a named database's
  // record), unless MDB_MULTIPLE was refused before the search.
  const bool searched =
      rc == 0 || rc == MDB_KEYEXIST || (rc == MDB_INCOMPATIBLE && !(flags & MDB_MULTIPLE));
  if (searched && dbi == kMainDbi) main_cursor::repositioned(mc, rc, key, true);
  // MDB_MULTIPLE may store some items and then fail: they were written, and
  // LMDB reports how many in data[1] (left untouched by an early refusal).
  const bool partial = rc && multiple_in && data[1].mv_size && data[1].mv_size != multiple_in;
  if ((rc && !partial) || !t.frame) return rc;
  if (partial) {
    int stamp = note_change(t, dbi, view(*key), Op::kPut);
    return stamp ? stamp : rc;
  }
  MDB_val k = *key, d;
  if (flags & MDB_CURRENT) R().mdb_cursor_get(mc, &k, &d, MDB_GET_CURRENT);
  return note_change(t, dbi, view(k), Op::kPut);
}

namespace {

// The key under a cursor, read without changing anything LMDB would show
// later. Every mdb_cursor_get clears the cursor's "just deleted" flag (C_DEL),
// which its next MDB_NEXT/MDB_NEXT_DUP obeys, and mdb_cursor_del leaves that
// flag as it was when it fails, deletes one duplicate of several, or empties
// the database. A child transaction borrows the cursor (LMDB keeps a copy of
// every cursor of the parent) and its abort puts that copy back: flag,
// position and duplicate sub-cursor. MDB_WRITEMAP has no child transactions:
// there the cursor is read directly and loses the flag (README), but not its
// duplicate sub-cursor's: no data is read.
int undisturbed_key(MDB_cursor *mc, std::string *key) {
  MDB_txn *txn = R().mdb_cursor_txn(mc);
  MDB_env *env = R().mdb_txn_env(txn);
  MDB_txn *borrower = nullptr;
  if (R().mdb_txn_begin(env, txn, 0, &borrower) == MDB_BAD_TXN) {
    unsigned env_flags = 0;
    R().mdb_env_get_flags(env, &env_flags);
    // Else the transaction is blocked: LMDB refuses the delete before looking.
    if (!(env_flags & MDB_WRITEMAP)) return MDB_BAD_TXN;
  }
  MDB_val k;
  const int rc = R().mdb_cursor_get(mc, &k, nullptr, MDB_GET_CURRENT);
  if (rc == 0) key->assign(view(k));
  if (borrower) R().mdb_txn_abort(borrower);
  return rc;
}

}  // namespace

int cursor_del(MDB_cursor *mc, unsigned flags) {
  if (!mc) return R().mdb_cursor_del(mc, flags);
  const MDB_dbi dbi = R().mdb_cursor_dbi(mc);
  WriteTarget t = write_target(R().mdb_cursor_txn(mc), dbi);
  if (dbi == kMainDbi && t.frame) {  // else LMDB refuses the transaction first
    if (int rc = main_cursor::check_write(mc, true)) return rc;
  }
  std::string key;
  bool have_key = false;
  std::vector<MDB_cursor *> moved;
  // No key: LMDB refuses the delete as well (the transaction is blocked, or
  // the cursor stands on no item).
  if (t.frame && undisturbed_key(mc, &key) == 0) {
    if (dbi == kMainDbi) {
      MDB_val k{key.size(), key.data()};
      if (reserved_key(&k)) {
        if (int rc = main_cursor::guard_delete(mc, &k)) return rc;
        key.assign(view(k));
      }
      moved = main_cursor::standing_on(R().mdb_cursor_txn(mc), k, mc);
    }
    have_key = true;
  }
  int rc = R().mdb_cursor_del(mc, flags);
  if (rc == 0 && dbi == kMainDbi && have_key) {
    main_cursor::after_delete(R().mdb_cursor_txn(mc), MDB_val{key.size(), key.data()},
                              std::move(moved), mc);
  }
  if (rc || !have_key) return rc;
  const bool whole_key = !is_dupsort(t.frame->txn, dbi) || (flags & MDB_NODUPDATA);
  return note_change(t, dbi, key, whole_key ? Op::kDelete : Op::kUnknown);
}

void cursor_forget(MDB_cursor *mc) { main_cursor::forget(mc); }

int last_commit_ts(MDB_env *env, unsigned char ts[12]) {
  EnvState *st = env_state(env);
  if (!st || !ts) return EINVAL;
  std::optional<Ts> last = st->last_commit();
  if (!last) return MDB_NOTFOUND;
  encode_ts(*last, ts);
  return 0;
}

int key_ts(MDB_txn *txn, MDB_dbi dbi, const MDB_val *key, unsigned char ts[12]) {
  EnvState *st = txn_state(txn);
  if (!st || !key || !ts || st->is_reserved_dbi(dbi)) return EINVAL;
  const std::string *name = st->db_name(dbi);
  if (!name) return EINVAL;
  if (!st->reserved_ready.load(std::memory_order_acquire)) return MDB_NOTFOUND;
  unsigned f;
  // A transaction older than the reserved databases does not see them.
  if (R().mdb_dbi_flags(txn, st->reserved.time, &f) != 0) return MDB_NOTFOUND;
  const std::string xkey =
      make_xkey(*name, {static_cast<const char *>(key->mv_data), key->mv_size});
  MDB_val k{xkey.size(), const_cast<char *>(xkey.data())}, v;
  int rc = R().mdb_get(txn, st->reserved.time, &k, &v);
  if (rc) return rc;
  if (v.mv_size != kTsSize) return MDB_CORRUPTED;
  std::memcpy(ts, v.mv_data, kTsSize);
  return 0;
}

int env_node(MDB_env *env, uint32_t *node) {
  EnvState *st = env_state(env);
  if (!st || !node || !st->opened || st->read_only) return EINVAL;
  if (!st->reserved_ready.load(std::memory_order_acquire)) return MDB_NOTFOUND;
  *node = st->node;
  return 0;
}

}  // namespace trlmdb::ops
