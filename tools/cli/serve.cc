// `trlmdb serve ENV`: hosts the replicator of one environment in the
// foreground, for environments whose writers are short-lived programs
// (mdb_load, scripts) that would otherwise take the replicator with them.
//
// Unlike the other commands it goes through the shim's C++ core (ops::*),
// which starts the replicator when a configured environment is opened
// read-write, exactly as it does inside any program using libtrlmdb.
#include <lmdb.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include "cli_common.h"
#include "commands.h"
#include "config.h"
#include "log.h"
#include "ops.h"
#include "real_lmdb.h"
#include "replicator.h"

namespace trlmdb::cli {
namespace {

const char kHelp[] =
    "usage: trlmdb serve [--map-size BYTES] [--log LEVEL] ENV\n"
    "\n"
    "Runs the replicator of the LMDB environment ENV (a directory, or the data file\n"
    "of an MDB_NOSUBDIR environment) in the foreground until SIGINT or SIGTERM,\n"
    "then closes the environment after a bounded flush and exits 0. Use it when the\n"
    "programs writing ENV are short-lived (mdb_load, scripts): they only wake the\n"
    "replicator after each commit, and it ships their changes to the peers.\n"
    "\n"
    "The replication settings are read as by any program using trlmdb: TRLMDB_*\n"
    "environment variables (TRLMDB_LISTEN, TRLMDB_PEERS, TRLMDB_SECRET or\n"
    "TRLMDB_SECRET_FILE, TRLMDB_NAME, TRLMDB_LOG, ...), then the file named by\n"
    "TRLMDB_CONFIG, then ENV/trlmdb.conf. Put them in ENV/trlmdb.conf so that the\n"
    "writers see them too and wake the replicator at once.\n"
    "\n"
    "ENV must exist; an empty directory becomes a new environment. At start one line\n"
    "goes to stdout:\n"
    "  serving ENV as node XXXXXXXX, listening on HOST:PORT\n"
    "(the bound port, useful with port 0); the replicator's messages go to stderr.\n"
    "`trlmdb stat ENV` shows the peers.\n"
    "\n"
    "options:\n"
    "  --map-size BYTES  map size to use if larger than the environment's own\n"
    "                    (default: the environment's own; 1 GiB for a new one)\n"
    "  --log LEVEL       error, warn, info or debug (default: the configured level,\n"
    "                    else warn); overrides TRLMDB_LOG and the files\n"
    "  -h, --help        show this help\n"
    "\n"
    "exit status: 0 stopped by a signal, 2 not configured, bad configuration,\n"
    "another process runs the replicator of ENV, or an I/O error\n";

constexpr std::size_t kNewEnvMapSize = std::size_t{1} << 30;

// How long to wait for the replicator's first status (it ticks every 200 ms).
constexpr int kStartTimeoutMs = 5000;

// The map size recorded in ENV (0 when there is none yet), read before the
// real open: LMDB would shrink the map to a smaller configured size.
std::size_t existing_map_size(const std::string &path, unsigned flags) {
  struct stat sb;
  // A read-only open would still create lock.mdb in an empty directory.
  if (!(flags & MDB_NOSUBDIR) && ::stat((path + "/data.mdb").c_str(), &sb) != 0) return 0;
  MDB_env *env = nullptr;
  if (real().mdb_env_create(&env) != 0) return 0;
  std::size_t size = 0;
  MDB_envinfo info;
  if (real().mdb_env_open(env, path.c_str(), flags | MDB_RDONLY, 0644) == 0 &&
      real().mdb_env_info(env, &info) == 0)
    size = info.me_mapsize;
  real().mdb_env_close(env);
  return size;
}

// Owns the environment opened through the shim's core; closing it stops the
// replicator after its bounded flush.
class ServedEnv {
 public:
  ServedEnv(const std::string &path, unsigned flags, std::size_t map_size) {
    check(ops::env_create(&env_), "mdb_env_create");
    // The replicator opens the program's databases by name; room for many.
    check(ops::env_set_maxdbs(env_, 1024), "mdb_env_set_maxdbs");
    if (map_size) check(real().mdb_env_set_mapsize(env_, map_size), "mdb_env_set_mapsize");
    int rc = ops::env_open(env_, path.c_str(), flags, 0644);
    if (rc != 0) {
      ops::env_close(env_);
      env_ = nullptr;
      if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
        throw Error(escape(path) + ": not an LMDB environment (" + mdb_strerror(rc) + ")");
      throw Error(escape(path) + ": cannot open the environment: " + mdb_strerror(rc));
    }
  }
  ~ServedEnv() {
    if (env_) ops::env_close(env_);
  }
  ServedEnv(const ServedEnv &) = delete;
  ServedEnv &operator=(const ServedEnv &) = delete;
  MDB_env *get() const { return env_; }

 private:
  MDB_env *env_ = nullptr;
};

int run(int argc, char **argv) {
  ParsedArgs args = parse_args(argc, argv, {{"--map-size", true}, {"--log", true}});
  if (args.help) {
    std::fputs(kHelp, stdout);
    return kExitOk;
  }
  const std::string path = single_env_arg(args);
  const uint64_t map_size = args.number("--map-size", 0);
  if (args.has("--log")) {
    const std::string &level = args.options.at("--log");
    static const std::pair<const char *, repl::LogLevel> kLevels[] = {
        {"error", repl::LogLevel::kError},
        {"warn", repl::LogLevel::kWarn},
        {"info", repl::LogLevel::kInfo},
        {"debug", repl::LogLevel::kDebug}};
    bool known = false;
    for (const auto &[word, value] : kLevels) {
      if (level != word) continue;
      known = true;
      // The environment variable beats the files; the global level is set too
      // because the replicator only ever raises it (default warn).
      setenv("TRLMDB_LOG", word, 1);
      repl::g_log_level.store(static_cast<int>(value));
    }
    if (!known) throw UsageError("--log needs error, warn, info or debug, got '" + level + "'");
  }

  struct stat sb;
  if (::stat(path.c_str(), &sb) != 0) throw Error(escape(path) + ": " + std::strerror(errno));
  unsigned flags = 0;
  if (S_ISREG(sb.st_mode)) {
    flags |= MDB_NOSUBDIR;
  } else if (!S_ISDIR(sb.st_mode)) {
    throw Error(escape(path) + ": not a directory or a regular file");
  }
  const bool no_subdir = flags & MDB_NOSUBDIR;

  // The replicator reports a bad configuration only as a log line and runs
  // without replication; serve must refuse instead, with the same message.
  repl::Config cfg;
  std::string error;
  if (!repl::load_config(repl::inputs_from_process(path.c_str(), no_subdir), &cfg, &error))
    throw Error("bad replication configuration for " + escape(path) + ": " + error);
  if (!cfg.configured) {
    const std::string conf = no_subdir ? path + ".trlmdb.conf" : path + "/trlmdb.conf";
    throw Error("no replication configured for " + escape(path) +
                ": set TRLMDB_LISTEN / TRLMDB_PEERS or write " + escape(conf));
  }

  // Signals are taken with sigwait in this thread. Blocking them before the
  // replicator's thread exists makes that thread inherit the mask, so no
  // signal is ever delivered to it.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  // A peer closing its socket mid-write must not kill the server.
  signal(SIGPIPE, SIG_IGN);

  // LMDB takes a configured size even when it is smaller than the one the
  // environment records, so the existing size is read first and kept.
  const std::size_t existing = existing_map_size(path, flags);
  std::size_t size = 0;
  if (map_size) {
    size = std::max<std::size_t>(map_size, existing);
  } else if (!existing) {
    // A new environment receives everything its peers hold: LMDB's 1 MiB
    // default would fill at once. The map is virtual; the file grows with use.
    size = kNewEnvMapSize;
  }

  repl::install();
  ServedEnv env(path, flags, size);
  std::string why;
  if (!repl::running(env.get(), &why)) throw Error(escape(path) + ": not serving: " + why);

  // The bound port is known from the replicator's first status.
  TRLMDB_repl_status st{};
  const timespec poll{0, 20 * 1000 * 1000};
  for (int waited = 0; waited < kStartTimeoutMs; waited += 20) {
    if (repl::status(env.get(), &st) == 0 && st.running) break;
    if (sigtimedwait(&stop, nullptr, &poll) > 0) return kExitOk;  // stopped while starting
  }
  if (!st.running) throw Error(escape(path) + ": the replicator did not start");
  std::string where = "not listening (outgoing connections only)";
  if (cfg.listen) {
    if (st.listen_port == 0)
      throw Error(escape(path) + ": cannot listen on " + cfg.listen->str() +
                  " (see the message above)");
    repl::HostPort bound = *cfg.listen;
    bound.port = static_cast<uint16_t>(st.listen_port);
    where = "listening on " + bound.str();
  }
  uint32_t node = 0;
  char node_text[16] = "(none yet)";
  if (ops::env_node(env.get(), &node) == 0)
    std::snprintf(node_text, sizeof node_text, "%08" PRIx32, node);
  std::printf("serving %s as node %s, %s\n", path.c_str(), node_text, where.c_str());
  std::fflush(stdout);

  int sig = 0;
  while (sigwait(&stop, &sig) != 0) {
  }
  return kExitOk;  // ~ServedEnv stops the replicator
}

}  // namespace

const Command kServeCommand = {"serve", "run the replicator of an environment in the foreground",
                               kHelp, run};

}  // namespace trlmdb::cli
