// `trlmdb stat ENV`: what the bookkeeping of an environment looks like.
// The output is a list of sections; a later section (the replicator's) is
// one more entry in kSections.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "cli_common.h"
#include "commands.h"
#include "env_walk.h"
#include "format.h"
#include "meta.h"

namespace trlmdb::cli {
namespace {

const char kHelp[] =
    "usage: trlmdb stat ENV\n"
    "\n"
    "Shows the trlmdb bookkeeping of the LMDB environment ENV (a directory, or the\n"
    "data file of an MDB_NOSUBDIR environment), read in one read-only transaction:\n"
    "the node word, the clock high-water mark (UTC and raw), the entries of\n"
    "_trlmdb_time (puts and tombstones) and _trlmdb_recent, and for every user\n"
    "database its name, flags, entries and distinct keys.\n"
    "\n"
    "options:\n"
    "  -h, --help  show this help\n";

struct StatContext {
  const Env &env;
  MDB_txn *txn;
  const Catalog &cat;
};

void print_environment(const StatContext &ctx) {
  MDB_envinfo info;
  check(mdb_env_info(ctx.env.get(), &info), "mdb_env_info");
  MDB_stat st;
  check(mdb_env_stat(ctx.env.get(), &st), "mdb_env_stat");
  std::printf("environment:    %s\n", escape(ctx.env.path(), 4096).c_str());
  std::printf("map size:       %zu bytes (page size %u, last page %zu, last txn %zu)\n",
              info.me_mapsize, st.ms_psize, info.me_last_pgno, info.me_last_txnid);
}

void print_bookkeeping(const StatContext &ctx) {
  if (!ctx.cat.stamped()) {
    std::printf("bookkeeping:    none (not stamped by trlmdb; run trlmdb adopt)\n");
    return;
  }
  std::optional<MDB_dbi> meta = ctx.cat.reserved(kMetaDb);
  if (!meta) {
    std::printf("node:           missing (no %s)\n", std::string(kMetaDb).c_str());
  } else {
    uint32_t node = 0;
    int rc = meta_get_node(ctx.txn, *meta, &node);
    if (rc == MDB_NOTFOUND) {
      std::printf("node:           missing\n");
    } else if (rc == MDB_CORRUPTED) {
      std::printf("node:           malformed (not 4 bytes)\n");
    } else {
      check(rc, "cannot read the node word");
      std::printf("node:           %06" PRIx32 " (node word 0x%08" PRIx32 ")\n", node >> 8, node);
    }
    uint64_t clock = 0;
    rc = meta_get_clock(ctx.txn, *meta, &clock);
    if (rc == MDB_CORRUPTED) {
      std::printf("clock:          malformed (not 8 bytes)\n");
    } else {
      check(rc, "cannot read the clock");
      if (clock == 0) {
        std::printf("clock:          none yet\n");
      } else {
        std::printf("clock:          %s (raw 0x%016" PRIx64 ")\n", format_clock(clock).c_str(),
                    clock);
      }
    }
  }

  uint64_t puts = 0, tombstones = 0, malformed = 0;
  std::size_t total = for_each_pair(ctx.txn, *ctx.cat.reserved(kTimeDb), std::nullopt,
                                    [&](std::string_view, std::string_view value) {
                                      Ts ts;
                                      if (!parse_ts(value, &ts)) {
                                        ++malformed;
                                      } else if (ts.is_put()) {
                                        ++puts;
                                      } else {
                                        ++tombstones;
                                      }
                                      return true;
                                    });
  std::printf("%-15s %zu entries (%" PRIu64 " puts, %" PRIu64 " tombstones", "_trlmdb_time:", total,
              puts, tombstones);
  if (malformed) std::printf(", %" PRIu64 " malformed", malformed);
  std::printf(")\n");

  if (std::optional<MDB_dbi> recent = ctx.cat.reserved(kRecentDb)) {
    MDB_stat st;
    check(mdb_stat(ctx.txn, *recent, &st), "mdb_stat");
    std::printf("%-15s %zu entries (changes not yet shipped)\n", "_trlmdb_recent:", st.ms_entries);
  } else {
    std::printf("%-15s missing\n", "_trlmdb_recent:");
  }
  for (const std::string &name : ctx.cat.reserved_names()) {
    if (name == kTimeDb || name == kRecentDb || name == kMetaDb) continue;
    MDB_stat st;
    check(mdb_stat(ctx.txn, *ctx.cat.reserved(name), &st), "mdb_stat");
    std::printf("%-15s %zu entries\n", (name + ":").c_str(), st.ms_entries);
  }
}

void print_databases(const StatContext &ctx) {
  struct Row {
    std::string name, flags;
    std::size_t entries, keys;
  };
  std::vector<Row> rows;
  for (const UserDb &db : ctx.cat.user_dbs()) {
    MDB_stat st;
    check(mdb_stat(ctx.txn, db.dbi, &st), "mdb_stat on " + db_label(db.name));
    Row row{db.is_main() ? "(main)" : escape(db.name), db_flags_string(db.flags), st.ms_entries,
            st.ms_entries};
    if (db.is_main()) {
      // The main database's records of the named databases are not user data.
      row.entries -= std::min(row.entries, ctx.cat.subdb_count());
      row.keys = row.entries;
    }
    if (db.dupsort())
      row.keys = for_each_key(ctx.txn, ctx.cat, db, std::nullopt, [](auto) { return true; });
    rows.push_back(std::move(row));
  }
  std::size_t w = 8;
  for (const Row &r : rows) w = std::max(w, r.name.size());
  std::printf("user databases: %zu\n", rows.size());
  std::printf("  %-*s  %-24s %12s %12s\n", static_cast<int>(w), "name", "flags", "entries", "keys");
  for (const Row &r : rows) {
    std::printf("  %-*s  %-24s %12zu %12zu\n", static_cast<int>(w), r.name.c_str(), r.flags.c_str(),
                r.entries, r.keys);
  }
}

struct Section {
  const char *name;
  void (*print)(const StatContext &);
};

const Section kSections[] = {
    {"environment", print_environment},
    {"bookkeeping", print_bookkeeping},
    {"databases", print_databases},
};

int run(int argc, char **argv) {
  ParsedArgs args = parse_args(argc, argv, {});
  if (args.help) {
    std::fputs(kHelp, stdout);
    return kExitOk;
  }
  std::string path = single_env_arg(args);
  Env env(path, /*read_only=*/true);
  Txn txn(env, /*read_only=*/true);
  Catalog cat = Catalog::discover(txn.get());
  StatContext ctx{env, txn.get(), cat};
  for (const Section &s : kSections) s.print(ctx);
  return kExitOk;
}

}  // namespace

const Command kStatCommand = {"stat", "show node, clock and entry counts of an environment", kHelp,
                              run};

}  // namespace trlmdb::cli
