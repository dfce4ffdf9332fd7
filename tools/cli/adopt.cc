// `trlmdb adopt ENV`: brings an environment to the invariant of DESIGN.md
// section 1, whether it was written without the shim or only drifted.
//
// Three passes, each in bounded write transactions that resume by key
// (MDB_SET_RANGE) after every commit; every decision is taken in the
// transaction that writes it, so writers running beside adopt are safe:
//   1. user databases: every marker and key without a put stamp gets a fresh
//      put timestamp;
//   2. _trlmdb_time: every put (or malformed) stamp whose key or database is
//      gone gets a fresh delete timestamp; entries that are no xkey of a user
//      database are removed;
//   3. _trlmdb_recent: entries without a time entry are removed, entries that
//      differ from it are set to it.
// Fresh timestamps come from a HybridClock that first observes the meta clock
// and the newest existing timestamp; each transaction that writes raises the
// meta clock to the clock's high-water mark. A run that finds nothing to do
// writes nothing (the environment's last transaction id stays the same).
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "cli_common.h"
#include "clock.h"
#include "commands.h"
#include "env_walk.h"
#include "format.h"
#include "meta.h"
#include "progress.h"

namespace trlmdb::cli {
namespace {

constexpr uint64_t kDefaultBatch = 10000;
// A transaction also ends after this many entries read per change allowed, so
// long runs of already-stamped keys do not hold the write lock for long.
constexpr uint64_t kScanPerChange = 10;
constexpr int kMaxMapGrowths = 48;
constexpr uint64_t kMaxWarnings = 100;

const char kHelp[] =
    "usage: trlmdb adopt [--batch N] [--progress] ENV\n"
    "\n"
    "Stamps the LMDB environment ENV (a directory, or the data file of an\n"
    "MDB_NOSUBDIR environment) so that it satisfies `trlmdb verify` and can join\n"
    "a trlmdb cluster: an environment written without the trlmdb shim, or one\n"
    "where someone wrote around the shim. It\n"
    "  - creates the reserved databases and the node word when missing;\n"
    "  - writes a fresh put timestamp for every key and named-database marker\n"
    "    without one (missing, stamped as deleted or malformed);\n"
    "  - writes a fresh delete timestamp for every put stamp whose key or\n"
    "    database is gone;\n"
    "  - removes _trlmdb_time entries that are no xkey of a user database, and\n"
    "    makes _trlmdb_recent agree with _trlmdb_time;\n"
    "  - raises the clock high-water mark to the newest timestamp.\n"
    "Fresh timestamps are newer than every timestamp already in ENV. Work is done\n"
    "in transactions of at most N changes, so other processes may keep using\n"
    "ENV; the map is grown when it fills up. Running adopt again changes nothing.\n"
    "Keys too long to have an xkey (511 - length of the database name - 1\n"
    "bytes) are reported on stderr and skipped.\n"
    "\n"
    "Prints \"adopt: stamped X, tombstoned Y, repaired Z\" at the end.\n"
    "\n"
    "options:\n"
    "  --batch N   at most N changes per transaction (default 10000)\n"
    "  --progress  show progress on stderr even when it is not a terminal\n"
    "  -h, --help  show this help\n";

struct Counters {
  uint64_t stamped = 0, tombstoned = 0, repaired = 0, skipped = 0;

  void add(const Counters &o) {
    stamped += o.stamped;
    tombstoned += o.tombstoned;
    repaired += o.repaired;
    skipped += o.skipped;
  }
};

// One planned change; applied after the scan that found it, in the same
// transaction.
struct Fix {
  enum Kind { kStamp, kDropStamp, kSetRecent, kDropRecent, kRaiseClock } kind;
  std::string xkey;
  Ts ts{};            // kStamp
  std::string value;  // kSetRecent
};

// The work of one transaction.
struct Batch {
  MDB_txn *txn = nullptr;
  uint64_t max_changes = 0;
  std::vector<Fix> fixes;
  Counters counts;
  std::vector<std::string> warnings;
  uint64_t scanned = 0;
  std::optional<std::string> last_key;  // resume after this key
  bool finished = false;                // the pass reached its end

  bool full() const {
    return fixes.size() >= max_changes || scanned >= max_changes * kScanPerChange;
  }
};

class Adopter {
 public:
  Adopter(Env &env, Progress &progress, uint64_t batch)
      : env_(env), progress_(progress), batch_(batch) {}

  void run() {
    prepare();
    for (const UserDb &db : cat_.user_dbs()) {
      run_pass("stamping " + db_label(db.name),
               [&](Batch &b, auto &resume) { scan_user_db(b, db, resume); });
    }
    run_pass("checking " + std::string(kTimeDb),
             [&](Batch &b, auto &resume) { scan_time(b, resume); });
    run_pass("checking " + std::string(kRecentDb),
             [&](Batch &b, auto &resume) { scan_recent(b, resume); });
    if (clock_behind_) {
      // Transactions that wrote raised the clock already; this one only
      // writes when none did.
      ++total_.repaired;
      run_batch([&](Batch &b) {
        uint64_t meta_clock = 0;
        int rc = meta_get_clock(b.txn, dbis_.meta, &meta_clock);
        if (rc != MDB_CORRUPTED) check(rc, "cannot read the clock");
        if (rc == MDB_CORRUPTED || meta_clock < max_existing_) {
          b.fixes.push_back({Fix::kRaiseClock, "", {}, ""});
        }
        b.finished = true;
      });
    }
    progress_.finish();
    if (created_) {
      std::printf("adopt: created the trlmdb bookkeeping, node %06" PRIx32 "\n", node_ >> 8);
    }
    if (total_.skipped) {
      progress_.note("adopt: warning: skipped " + std::to_string(total_.skipped) +
                     " key(s) too long for an xkey; trlmdb cannot replicate them");
    }
    std::printf("adopt: stamped %" PRIu64 ", tombstoned %" PRIu64 ", repaired %" PRIu64 "\n",
                total_.stamped, total_.tombstoned, total_.repaired);
  }

 private:
  // Reserved databases and node word, then the catalog and the newest
  // existing timestamp.
  void prepare() {
    for (int attempt = 0;; ++attempt) {
      Txn txn(env_, /*read_only=*/false);
      MDB_dbi main = open_main(txn.get());
      unsigned main_flags = 0;
      check(mdb_dbi_flags(txn.get(), main, &main_flags), "mdb_dbi_flags");
      if (main_flags & (MDB_DUPSORT | MDB_INTEGERKEY)) {
        throw Error(escape(env_.path()) + ": the main database is " +
                    db_flags_string(main_flags & (MDB_DUPSORT | MDB_INTEGERKEY)) +
                    "; LMDB allows no named databases beside it, so trlmdb cannot keep its "
                    "bookkeeping there");
      }
      bool was_stamped = try_open_named(txn.get(), std::string(kTimeDb)).has_value();
      int rc = open_reserved(txn.get(), /*create=*/true, &dbis_);
      uint32_t node = 0;
      bool node_created = false;
      if (rc == 0) {
        rc = meta_get_node(txn.get(), dbis_.meta, &node);
        if (rc == MDB_NOTFOUND) {
          node_created = true;
          rc = meta_init_node(txn.get(), dbis_.meta, 0, &node);
        } else if (rc == MDB_CORRUPTED) {
          // A malformed node word: replace it.
          MDB_val k = as_val(kMetaNodeKey);
          rc = mdb_del(txn.get(), dbis_.meta, &k, nullptr);
          node_created = true;
          if (rc == 0) rc = meta_init_node(txn.get(), dbis_.meta, 0, &node);
        }
      }
      if (rc == 0) rc = txn.commit();
      if (rc == MDB_MAP_FULL && attempt < kMaxMapGrowths) {
        txn.abort();
        grow_map();
        continue;
      }
      check(rc, "cannot create the reserved databases");
      node_ = node;
      created_ = !was_stamped;
      if (node_created && was_stamped) ++total_.repaired;
      break;
    }

    Txn txn(env_, /*read_only=*/true);
    cat_ = Catalog::discover(txn.get());
    dbis_.time = *cat_.reserved(kTimeDb);
    dbis_.recent = *cat_.reserved(kRecentDb);
    dbis_.meta = *cat_.reserved(kMetaDb);
    uint64_t meta_clock = 0;
    int rc = meta_get_clock(txn.get(), dbis_.meta, &meta_clock);
    if (rc == MDB_CORRUPTED) {
      meta_clock = 0;  // rewritten by the first transaction that writes
      clock_behind_ = true;
    } else {
      check(rc, "cannot read the clock");
    }
    for (MDB_dbi dbi : {dbis_.time, dbis_.recent}) {
      for_each_pair(txn.get(), dbi, std::nullopt, [&](std::string_view, std::string_view value) {
        Ts ts;
        if (parse_ts(value, &ts)) max_existing_ = std::max(max_existing_, ts.time);
        return true;
      });
    }
    if (meta_clock < max_existing_) clock_behind_ = true;
    clock_.observe(std::max(meta_clock, max_existing_));
    // Committing a read-only transaction keeps the handles it opened.
    check(txn.commit(), "mdb_txn_commit");
  }

  // Runs one pass in as many transactions as it takes.
  template <class ScanFn>
  void run_pass(const std::string &what, ScanFn scan) {
    std::optional<std::string> resume;
    uint64_t scanned = 0;
    for (;;) {
      Batch b = run_batch([&](Batch &batch) { scan(batch, resume); });
      scanned += b.scanned;
      resume = b.last_key;
      progress_.update("adopt: " + what + ": " + std::to_string(scanned) + " entries read; " +
                       summary());
      if (b.finished) break;
    }
  }

  // One transaction: scan, apply, raise the clock, commit. Retried from the
  // same position with a larger map when the map is full.
  template <class ScanFn>
  Batch run_batch(ScanFn scan) {
    for (int attempt = 0;; ++attempt) {
      Txn txn(env_, /*read_only=*/false);
      Batch b;
      b.txn = txn.get();
      b.max_changes = batch_;
      uint64_t meta_clock = 0;
      if (meta_get_clock(txn.get(), dbis_.meta, &meta_clock) == 0) clock_.observe(meta_clock);
      scan(b);
      int rc = apply(b, meta_clock);
      if (rc == 0) {
        if (b.fixes.empty()) {
          txn.abort();  // nothing to write: leave the environment untouched
        } else {
          rc = txn.commit();
        }
      }
      if (rc == MDB_MAP_FULL && attempt < kMaxMapGrowths) {
        txn.abort();
        grow_map();
        continue;
      }
      check(rc, "cannot write the bookkeeping");
      total_.add(b.counts);
      for (const std::string &w : b.warnings) warn(w);
      return b;
    }
  }

  int apply(const Batch &b, uint64_t meta_clock) {
    int rc = 0;
    for (const Fix &f : b.fixes) {
      MDB_val k = as_val(f.xkey);
      switch (f.kind) {
        case Fix::kStamp:
          rc = write_stamp(b.txn, dbis_, f.xkey, f.ts);
          break;
        case Fix::kDropStamp:
          rc = mdb_del(b.txn, dbis_.time, &k, nullptr);
          if (rc == 0 || rc == MDB_NOTFOUND) rc = mdb_del(b.txn, dbis_.recent, &k, nullptr);
          if (rc == MDB_NOTFOUND) rc = 0;
          break;
        case Fix::kSetRecent: {
          MDB_val v = as_val(f.value);
          rc = mdb_put(b.txn, dbis_.recent, &k, &v, 0);
          break;
        }
        case Fix::kDropRecent:
          rc = mdb_del(b.txn, dbis_.recent, &k, nullptr);
          if (rc == MDB_NOTFOUND) rc = 0;
          break;
        case Fix::kRaiseClock:
          break;  // below
      }
      if (rc) return rc;
    }
    if (!b.fixes.empty()) {
      uint64_t hw = std::max({meta_clock, clock_.high_water(), max_existing_});
      rc = meta_put_clock(b.txn, dbis_.meta, hw);
    }
    return rc;
  }

  Ts fresh(uint32_t op) { return Ts{clock_.issue(), node_ | op}; }

  // Pass 1: the marker (first batch of a named database) and every key.
  void scan_user_db(Batch &b, const UserDb &db, const std::optional<std::string> &resume) {
    if (!resume && !db.is_main()) stamp_if_needed(b, db.name, "");
    bool stopped = false;
    for_each_key(b.txn, cat_, db, resume, [&](std::string_view key) {
      ++b.scanned;
      stamp_if_needed(b, db.name, key);
      b.last_key = std::string(key);
      if (b.full()) stopped = true;
      return !stopped;
    });
    b.finished = !stopped;
  }

  void stamp_if_needed(Batch &b, std::string_view dbname, std::string_view key) {
    std::string xkey = make_xkey(dbname, key);
    if (xkey.size() > env_.max_key_size()) {
      ++b.counts.skipped;
      b.warnings.push_back("adopt: warning: " + db_label(dbname) +
                           (key.empty() ? " marker" : " key " + escape(key)) +
                           " is too long for an xkey (" + std::to_string(xkey.size()) +
                           " bytes, LMDB's limit is " + std::to_string(env_.max_key_size()) +
                           "); skipped");
      return;
    }
    std::optional<std::string_view> stamp = lookup(b.txn, dbis_.time, xkey);
    Ts ts;
    if (stamp && parse_ts(*stamp, &ts) && ts.is_put()) return;
    b.fixes.push_back({Fix::kStamp, std::move(xkey), fresh(kOpPut), ""});
    ++b.counts.stamped;
  }

  // Pass 2: stamps of things that are gone, and entries that are no xkey.
  void scan_time(Batch &b, const std::optional<std::string> &resume) {
    bool stopped = false;
    for_each_pair(b.txn, dbis_.time, resume, [&](std::string_view xkey, std::string_view value) {
      ++b.scanned;
      check_time_entry(b, xkey, value);
      b.last_key = std::string(xkey);
      if (b.full()) stopped = true;
      return !stopped;
    });
    b.finished = !stopped;
  }

  void check_time_entry(Batch &b, std::string_view xkey, std::string_view value) {
    std::string_view dbname, key;
    if (!split_xkey(xkey, &dbname, &key) || is_reserved_name(dbname)) {
      b.fixes.push_back({Fix::kDropStamp, std::string(xkey), {}, ""});
      ++b.counts.repaired;
      return;
    }
    Ts ts;
    bool valid = parse_ts(value, &ts);
    if (valid && ts.is_delete()) return;
    bool exists = entry_exists(b.txn, dbname, key);
    if (valid && exists) return;
    if (exists) {
      // Malformed stamp of an existing key (pass 1 normally fixed it).
      b.fixes.push_back({Fix::kStamp, std::string(xkey), fresh(kOpPut), ""});
      ++b.counts.stamped;
    } else {
      b.fixes.push_back({Fix::kStamp, std::string(xkey), fresh(kOpDelete), ""});
      ++b.counts.tombstoned;
    }
  }

  // Whether the key (or, for an empty key, the database) exists now.
  bool entry_exists(MDB_txn *txn, std::string_view dbname, std::string_view key) {
    const UserDb *db = cat_.find_user(dbname);
    std::optional<UserDb> late;  // created by another process since discovery
    if (!db) {
      late = try_open_named(txn, std::string(dbname));
      if (!late) return false;
      db = &*late;
    } else if (!db->is_main() && !lookup(txn, cat_.main_db().dbi, db->name)) {
      // Dropped by another process since discovery (an open handle does not
      // tell: mdb_dbi_open answers from its table of open names).
      return false;
    }
    if (key.empty()) return true;
    return key_exists(txn, cat_, *db, key, env_.max_key_size());
  }

  // Pass 3: _trlmdb_recent must agree with _trlmdb_time.
  void scan_recent(Batch &b, const std::optional<std::string> &resume) {
    bool stopped = false;
    for_each_pair(b.txn, dbis_.recent, resume, [&](std::string_view xkey, std::string_view value) {
      ++b.scanned;
      std::optional<std::string_view> time = lookup(b.txn, dbis_.time, xkey);
      if (!time) {
        b.fixes.push_back({Fix::kDropRecent, std::string(xkey), {}, ""});
        ++b.counts.repaired;
      } else if (*time != value) {
        b.fixes.push_back({Fix::kSetRecent, std::string(xkey), {}, std::string(*time)});
        ++b.counts.repaired;
      }
      b.last_key = std::string(xkey);
      if (b.full()) stopped = true;
      return !stopped;
    });
    b.finished = !stopped;
  }

  void grow_map() {
    MDB_envinfo info;
    check(mdb_env_info(env_.get(), &info), "mdb_env_info");
    std::size_t next = std::max<std::size_t>(info.me_mapsize * 2, std::size_t{1} << 24);
    check(mdb_env_set_mapsize(env_.get(), next), "cannot grow the map");
    progress_.note("adopt: the map is full; growing it to " + std::to_string(next >> 20) + " MiB");
  }

  void warn(const std::string &message) {
    if (warnings_ < kMaxWarnings) {
      progress_.note(message);
    } else if (warnings_ == kMaxWarnings) {
      progress_.note("adopt: warning: more keys too long for an xkey; not listing them");
    }
    ++warnings_;
  }

  std::string summary() const {
    return "stamped " + std::to_string(total_.stamped) + ", tombstoned " +
           std::to_string(total_.tombstoned) + ", repaired " + std::to_string(total_.repaired);
  }

  Env &env_;
  Progress &progress_;
  uint64_t batch_;
  Catalog cat_;
  ReservedDbis dbis_;
  uint32_t node_ = 0;
  bool created_ = false;
  bool clock_behind_ = false;
  uint64_t max_existing_ = 0;
  HybridClock clock_;
  Counters total_;
  uint64_t warnings_ = 0;
};

int run(int argc, char **argv) {
  ParsedArgs args = parse_args(argc, argv, {{"--batch", true}, {"--progress", false}});
  if (args.help) {
    std::fputs(kHelp, stdout);
    return kExitOk;
  }
  std::string path = single_env_arg(args);
  uint64_t batch = args.number("--batch", kDefaultBatch);
  Env env(path, /*read_only=*/false);
  Progress progress(args.has("--progress"));
  Adopter(env, progress, batch).run();
  return kExitOk;
}

}  // namespace

const Command kAdoptCommand = {"adopt", "stamp an environment written without trlmdb, or repair it",
                               kHelp, run};

}  // namespace trlmdb::cli
