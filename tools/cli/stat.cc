// `trlmdb stat ENV`: what the bookkeeping of an environment looks like.
// The output is a list of sections; a later section (the replicator's) is
// one more entry in kSections.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cli_common.h"
#include "commands.h"
#include "env_walk.h"
#include "format.h"
#include "meta.h"
#include "repl_presence.h"

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
    "Then the replicator of ENV, if a process runs it (a program using libtrlmdb\n"
    "or `trlmdb serve`), from the status it writes every 200 ms: its process,\n"
    "node, listening address, backlog (changes not yet acknowledged by every\n"
    "peer), bytes sent and received, changes applied, and for every peer its\n"
    "address, direction (out: configured, in: it connected to us), state, node,\n"
    "last contact, entries awaiting acknowledgement, bytes sent and received, and\n"
    "why it is not connected. Otherwise \"replicator: not running\".\n"
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

// --- the replicator ----------------------------------------------------------
//
// The process running an environment's replicator holds an exclusive flock on
// <env>/trlmdb.lock, announces itself there (shim/repl_presence.h) and rewrites
// <env>/trlmdb.status every 200 ms; a process killed with SIGKILL leaves the
// status file behind but not the locks.

struct PeerStatus {
  std::string addr, dir;
  std::map<std::string, std::string> fields;  // state, node, last_contact, ...
  std::string note;
};

struct ReplStatus {
  std::map<std::string, std::string> fields;  // pid, env, node, backlog, listen, ...
  std::vector<PeerStatus> peers;
};

ReplStatus parse_status(const std::string &text) {
  ReplStatus out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const std::size_t sp = line.find(' ');
    if (sp == std::string::npos) continue;
    const std::string key = line.substr(0, sp), rest = line.substr(sp + 1);
    if (key != "peer") {
      out.fields[key] = rest;
      continue;
    }
    // peer ADDR DIR k=v ... [note=TEXT TO THE END OF THE LINE]
    PeerStatus p;
    std::string body = rest;
    if (std::size_t n = body.find(" note="); n != std::string::npos) {
      p.note = body.substr(n + 6);
      body.resize(n);
    }
    std::istringstream words(body);
    words >> p.addr >> p.dir;
    std::string word;
    while (words >> word) {
      const std::size_t eq = word.find('=');
      if (eq != std::string::npos) p.fields[word.substr(0, eq)] = word.substr(eq + 1);
    }
    out.peers.push_back(std::move(p));
  }
  return out;
}

std::string field(const std::map<std::string, std::string> &m, const char *key,
                  const char *missing = "?") {
  auto it = m.find(key);
  return it == m.end() || it->second.empty() ? missing : it->second;
}

enum class LockState { kHeld, kFree, kUnknown };

// Whether a replicator holds the environment, asked without taking anything
// (taking even a shared flock for an instant can turn a replicator that starts
// at that moment away). `holder` gets the pid the holder wrote into the file.
LockState probe_lock(const std::string &lock_path, std::string *holder, std::string *error) {
  int fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return LockState::kFree;
    *error = std::string("cannot open ") + lock_path + ": " + std::strerror(errno);
    return LockState::kUnknown;
  }
  LockState state = LockState::kFree;
  switch (trlmdb::replicator_present(fd)) {
    case 1: {
      state = LockState::kHeld;
      char buf[32] = {};
      ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
      *holder = std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
      while (!holder->empty() && (holder->back() == '\n' || holder->back() == ' '))
        holder->pop_back();
      break;
    }
    case 0:
      break;
    default:
      *error = std::string("cannot check the lock ") + lock_path + ": " + std::strerror(errno);
      state = LockState::kUnknown;
  }
  ::close(fd);
  return state;
}

double now_seconds() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// "3 s ago" for whole seconds, "3.2 s ago" when the status has fractions.
std::string contact_age(const std::string &value, double now) {
  char *end = nullptr;
  const double t = std::strtod(value.c_str(), &end);
  if (end == value.c_str() || *end != '\0') return value;
  if (t <= 0) return "never";
  const bool fractional = value.find('.') != std::string::npos;
  double age = (fractional ? now : std::floor(now)) - t;
  if (age < 0) age = 0;  // a clock step, or the status was written a moment ago
  char buf[48];
  if (fractional)
    std::snprintf(buf, sizeof buf, "%.1f s ago", age);
  else
    std::snprintf(buf, sizeof buf, "%.0f s ago", age);
  return buf;
}

std::string with_unit(const std::string &n, const char *unit) { return n + " " + unit; }

void print_replicator_status(const ReplStatus &st) {
  const auto &f = st.fields;
  std::printf("replicator:     running in process %s (environment \"%s\" on the wire, node %s)\n",
              field(f, "pid").c_str(), field(f, "env").c_str(), field(f, "node").c_str());
  std::printf("listening on:   %s\n", field(f, "listen", "- (outgoing connections only)").c_str());
  std::printf("backlog:        %s changes not yet acknowledged by every peer\n",
              field(f, "backlog").c_str());
  std::printf("traffic:        %s sent, %s received, %s applied\n",
              with_unit(field(f, "sent"), "bytes").c_str(),
              with_unit(field(f, "received"), "bytes").c_str(),
              with_unit(field(f, "applied"), "changes").c_str());
  std::printf("peers:          %zu\n", st.peers.size());
  if (st.peers.empty()) return;

  const double now = now_seconds();
  const char *const kHeads[] = {"address",      "dir",          "state", "node",
                                "last contact", "awaiting ack", "sent",  "received"};
  constexpr std::size_t kCols = std::size(kHeads);
  const bool right[kCols] = {false, false, false, false, false, true, true, true};
  std::vector<std::vector<std::string>> rows;
  for (const PeerStatus &p : st.peers) {
    std::string node = field(p.fields, "node", "-");
    if (node.find_first_not_of('0') == std::string::npos) node = "-";  // never handshaken
    rows.push_back({p.addr, p.dir, field(p.fields, "state"), node,
                    contact_age(field(p.fields, "last_contact", "0"), now),
                    field(p.fields, "awaiting_ack"), field(p.fields, "sent"),
                    field(p.fields, "received")});
  }
  std::size_t w[kCols];
  for (std::size_t c = 0; c < kCols; ++c) {
    w[c] = std::strlen(kHeads[c]);
    for (const auto &r : rows) w[c] = std::max(w[c], r[c].size());
  }
  auto print_row = [&](const std::vector<std::string> &cells, const std::string &note) {
    std::string line;
    for (std::size_t c = 0; c < kCols; ++c) {
      const std::string pad(w[c] - cells[c].size(), ' ');
      line += "  ";
      line += right[c] ? pad + cells[c] : cells[c] + (c + 1 < kCols || !note.empty() ? pad : "");
    }
    if (!note.empty()) line += "  " + note;
    std::printf("%s\n", line.c_str());
  };
  print_row(std::vector<std::string>(std::begin(kHeads), std::end(kHeads)), "note");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::string note = st.peers[i].note;  // may quote a peer: printable bytes only
    for (char &ch : note)
      if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
    print_row(rows[i], note);
  }
}

void print_replicator(const StatContext &ctx) {
  unsigned flags = 0;
  check(mdb_env_get_flags(ctx.env.get(), &flags), "mdb_env_get_flags");
  const std::string &path = ctx.env.path();
  const bool no_subdir = flags & MDB_NOSUBDIR;

  std::string text;
  bool have_status = false;
  {
    std::ifstream in(trlmdb::env_sibling_path(path, no_subdir, "trlmdb.status"));
    if (in) {
      std::ostringstream buf;
      buf << in.rdbuf();
      text = buf.str();
      have_status = true;
    }
  }
  std::string holder, error;
  const LockState lock = probe_lock(trlmdb::repl_lock_path(path, no_subdir), &holder, &error);
  const ReplStatus st = parse_status(text);
  if (lock == LockState::kFree) {
    if (have_status) {
      std::printf("replicator:     not running (stale status from pid %s)\n",
                  field(st.fields, "pid").c_str());
    } else {
      std::printf("replicator:     not running\n");
    }
    return;
  }
  if (lock == LockState::kHeld && !have_status) {
    std::printf("replicator:     starting in process %s (no status yet)\n",
                holder.empty() ? "?" : holder.c_str());
    return;
  }
  if (lock == LockState::kUnknown && !have_status) {
    std::printf("replicator:     not running (%s)\n", error.c_str());
    return;
  }
  print_replicator_status(st);
  // The status may be stale: without the lock there is no telling.
  if (lock == LockState::kUnknown) std::printf("warning:        %s\n", error.c_str());
}

struct Section {
  const char *name;
  void (*print)(const StatContext &);
};

const Section kSections[] = {
    {"environment", print_environment},
    {"bookkeeping", print_bookkeeping},
    {"databases", print_databases},
    {"replicator", print_replicator},
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
