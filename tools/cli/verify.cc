// `trlmdb verify ENV`: checks the invariant of DESIGN.md section 1 in one
// read-only transaction, by lookups in both directions (user databases may
// use INTEGERKEY or REVERSEKEY order, so the two sides are never merge-joined).
#include <cstdio>
#include <map>
#include <set>
#include <string>

#include "cli_common.h"
#include "commands.h"
#include "env_walk.h"
#include "format.h"
#include "meta.h"

namespace trlmdb::cli {
namespace {

constexpr uint64_t kDefaultLimit = 100;

const char kHelp[] =
    "usage: trlmdb verify [--limit N] ENV\n"
    "\n"
    "Checks the trlmdb bookkeeping of the LMDB environment ENV (a directory, or\n"
    "the data file of an MDB_NOSUBDIR environment) in one read-only transaction;\n"
    "it can run while other processes use the environment. It checks that:\n"
    "  - every key of every user database has a put timestamp in _trlmdb_time,\n"
    "    and every put timestamp names an existing key (DUPSORT: key level);\n"
    "  - every named user database has its marker (DB\\0) stamped as a put, and\n"
    "    every marker stamped as a put names an existing database;\n"
    "  - every timestamp is 12 bytes with op byte 0 or 1, every xkey has a 0x00;\n"
    "  - every _trlmdb_recent entry equals the _trlmdb_time entry of its xkey;\n"
    "  - the node word exists and the clock high-water mark is not behind any\n"
    "    timestamp of _trlmdb_time.\n"
    "\n"
    "Prints \"ok: N keys in M databases\" and exits 0 when all holds; otherwise\n"
    "lists the violations (at most N lines, default 100; --limit 0 for all) and\n"
    "exits 1. Exits 2 on usage or I/O errors, or when ENV was never stamped by\n"
    "trlmdb (run `trlmdb adopt ENV` first).\n"
    "\n"
    "options:\n"
    "  --limit N   print at most N violations (0: no limit)\n"
    "  -h, --help  show this help\n";

class Violations {
 public:
  explicit Violations(uint64_t limit) : limit_(limit) {}

  void add(const std::string &what) {
    ++count_;
    if (limit_ == 0 || count_ <= limit_) std::printf("%s\n", what.c_str());
  }
  uint64_t count() const { return count_; }
  void finish() const {
    if (limit_ != 0 && count_ > limit_) {
      std::printf("... and %llu more\n", static_cast<unsigned long long>(count_ - limit_));
    }
    std::printf("verify: %llu violation%s\n", static_cast<unsigned long long>(count_),
                count_ == 1 ? "" : "s");
  }

 private:
  uint64_t limit_;
  uint64_t count_ = 0;
};

// "main database key "k"" / "database "d" key "k"" / "database "d" marker".
std::string xkey_label(std::string_view dbname, std::string_view key) {
  if (key.empty()) return db_label(dbname) + " marker";
  return db_label(dbname) + " key " + escape(key);
}

class Verifier {
 public:
  Verifier(const Env &env, MDB_txn *txn, const Catalog &cat, Violations *out)
      : env_(env), txn_(txn), cat_(cat), out_(*out) {}

  void run() {
    time_ = *cat_.reserved(kTimeDb);
    recent_ = cat_.reserved(kRecentDb);
    meta_ = cat_.reserved(kMetaDb);
    if (!recent_) out_.add("missing reserved database " + std::string(kRecentDb));
    if (!meta_) out_.add("missing reserved database " + std::string(kMetaDb));
    check_user_databases();
    check_time();
    if (recent_) check_recent();
    check_meta();
  }

  uint64_t keys() const { return keys_; }

 private:
  // Direction 1: everything in the user databases is stamped as a put.
  void check_user_databases() {
    for (const UserDb &db : cat_.user_dbs()) {
      if (drop_pending(txn_, cat_, db)) continue;
      if (!db.is_main()) check_stamp_is_put(db.name, "", "missing database marker");
      for_each_key(txn_, cat_, db, std::nullopt, [&](std::string_view key) {
        ++keys_;
        check_stamp_is_put(db.name, key, "key without stamp");
        return true;
      });
    }
  }

  void check_stamp_is_put(std::string_view dbname, std::string_view key, const char *missing) {
    std::string xkey = make_xkey(dbname, key);
    if (xkey.size() > env_.max_key_size()) {
      out_.add("key too long for an xkey: " + xkey_label(dbname, key) + " (" +
               std::to_string(xkey.size()) + "-byte xkey, LMDB's limit is " +
               std::to_string(env_.max_key_size()) + ")");
      return;
    }
    const std::string label = key.empty() ? db_label(dbname) : xkey_label(dbname, key);
    std::optional<std::string_view> stamp = lookup(txn_, time_, xkey);
    if (!stamp) {
      out_.add(std::string(missing) + ": " + label);
      return;
    }
    Ts ts;
    // A malformed timestamp is reported by check_time().
    if (parse_ts(*stamp, &ts) && !ts.is_put()) {
      out_.add(std::string(key.empty() ? "database marker" : "existing key") +
               " stamped as deleted: " + label + " (" + describe_ts_bytes(*stamp) + ")");
    }
  }

  // A database ordered by the program's comparator (recorded in the meta
  // database) cannot be searched here, where only byte order is known: its
  // keys are read once, in the tree's own order, into a set.
  bool has_key(const UserDb &db, std::string_view key) {
    bool custom = false;
    if (meta_ && !db.is_main() && meta_has_custom_compare(txn_, *meta_, db.name, &custom) == 0 &&
        custom) {
      auto [it, fresh] = custom_keys_.try_emplace(db.name);
      if (fresh) {
        MDB_cursor *cur = nullptr;
        if (mdb_cursor_open(txn_, db.dbi, &cur) == 0) {
          MDB_val k, v;
          for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
               rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP))
            it->second.emplace(static_cast<const char *>(k.mv_data), k.mv_size);
          mdb_cursor_close(cur);
        }
      }
      return it->second.count(std::string(key)) != 0;
    }
    return key_exists(txn_, cat_, db, key, env_.max_key_size());
  }

  // Direction 2: every put stamp names something that exists.
  void check_time() {
    for_each_pair(txn_, time_, std::nullopt, [&](std::string_view xkey, std::string_view value) {
      std::string_view dbname, key;
      if (!split_xkey(xkey, &dbname, &key)) {
        out_.add("xkey without 0x00 in " + std::string(kTimeDb) + ": " + escape(xkey));
        return true;
      }
      if (is_reserved_name(dbname)) {
        out_.add("stamp for a reserved database in " + std::string(kTimeDb) + ": " +
                 xkey_label(dbname, key));
        return true;
      }
      Ts ts;
      if (!parse_ts(value, &ts)) {
        out_.add("bad timestamp in " + std::string(kTimeDb) + ": " + xkey_label(dbname, key) +
                 " (" + describe_ts_bytes(value) + ")");
        return true;
      }
      if (ts.time > max_time_) max_time_ = ts.time;
      if (ts.is_put()) {
        const UserDb *db = cat_.find_user(dbname);
        if (key.empty()) {
          if (!db)
            out_.add("marker for a missing database: " + db_label(dbname) + " (" +
                     describe_ts_bytes(value) + ")");
        } else if (!db) {
          out_.add("stamp for a key of a missing database: " + xkey_label(dbname, key) + " (" +
                   describe_ts_bytes(value) + ")");
        } else if (!has_key(*db, key)) {
          out_.add("stamp for a missing key: " + xkey_label(dbname, key) + " (" +
                   describe_ts_bytes(value) + ")");
        }
      }
      return true;
    });
  }

  void check_recent() {
    for_each_pair(txn_, *recent_, std::nullopt, [&](std::string_view xkey, std::string_view value) {
      std::string_view dbname, key;
      std::string label;
      if (split_xkey(xkey, &dbname, &key)) {
        label = xkey_label(dbname, key);
      } else {
        out_.add("xkey without 0x00 in " + std::string(kRecentDb) + ": " + escape(xkey));
        label = "xkey " + escape(xkey);
      }
      Ts ts;
      if (!parse_ts(value, &ts)) {
        out_.add("bad timestamp in " + std::string(kRecentDb) + ": " + label + " (" +
                 describe_ts_bytes(value) + ")");
      }
      std::optional<std::string_view> time = lookup(txn_, time_, xkey);
      if (!time) {
        out_.add("recent entry without time entry: " + label);
      } else if (*time != value) {
        out_.add("recent entry differs from time entry: " + label + " (recent " +
                 describe_ts_bytes(value) + ", time " + describe_ts_bytes(*time) + ")");
      }
      return true;
    });
  }

  void check_meta() {
    if (!meta_) return;
    uint32_t node = 0;
    int rc = meta_get_node(txn_, *meta_, &node);
    if (rc == MDB_NOTFOUND) {
      out_.add("missing node word in " + std::string(kMetaDb));
    } else if (rc == MDB_CORRUPTED) {
      out_.add("bad node word in " + std::string(kMetaDb) + " (not 4 bytes)");
    } else {
      check(rc, "cannot read the node word");
    }
    uint64_t clock = 0;
    rc = meta_get_clock(txn_, *meta_, &clock);
    if (rc == MDB_CORRUPTED) {
      out_.add("bad clock value in " + std::string(kMetaDb) + " (not 8 bytes)");
      return;
    }
    check(rc, "cannot read the clock");
    if (clock < max_time_) {
      out_.add("clock behind the timestamps: high-water mark " + format_clock(clock) +
               " is older than the newest timestamp " + format_clock(max_time_));
    }
  }

  const Env &env_;
  MDB_txn *txn_;
  const Catalog &cat_;
  Violations &out_;
  MDB_dbi time_ = 0;
  std::optional<MDB_dbi> recent_, meta_;
  std::map<std::string, std::set<std::string>> custom_keys_;
  uint64_t keys_ = 0;
  uint64_t max_time_ = 0;
};

int run(int argc, char **argv) {
  ParsedArgs args = parse_args(argc, argv, {{"--limit", true}});
  if (args.help) {
    std::fputs(kHelp, stdout);
    return kExitOk;
  }
  std::string path = single_env_arg(args);
  uint64_t limit = kDefaultLimit;
  if (args.has("--limit")) {
    limit = args.options["--limit"] == "0" ? 0 : args.number("--limit", kDefaultLimit);
  }

  Env env(path, /*read_only=*/true);
  Txn txn(env, /*read_only=*/true);
  Catalog cat = Catalog::discover(txn.get());
  if (!cat.stamped()) {
    // Nothing was ever written through trlmdb: consistent only while the
    // environment holds no user data either (the shim creates the reserved
    // databases with the first change).
    std::size_t keys = 0;
    for (const UserDb &db : cat.user_dbs())
      keys += for_each_key(txn.get(), cat, db, std::nullopt, [](std::string_view) { return true; });
    if (keys == 0 && cat.user_dbs().size() <= 1) {
      std::printf("ok: 0 keys in %zu databases (nothing stamped yet)\n", cat.user_dbs().size());
      return kExitOk;
    }
    throw Error(escape(path) + ": not stamped by trlmdb (no " + std::string(kTimeDb) +
                "); run trlmdb adopt");
  }
  Violations violations(limit);
  Verifier verifier(env, txn.get(), cat, &violations);
  verifier.run();
  if (violations.count() == 0) {
    std::printf("ok: %llu keys in %zu databases\n",
                static_cast<unsigned long long>(verifier.keys()), cat.user_dbs().size());
    return kExitOk;
  }
  violations.finish();
  return kExitFailed;
}

}  // namespace

const Command kVerifyCommand = {"verify", "check the timestamp bookkeeping of an environment",
                                kHelp, run};

}  // namespace trlmdb::cli
