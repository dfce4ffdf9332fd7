// trlmdb-repl-bench: replication figures of issue 3 on loopback (a program,
// not a timed test).
//
// Every node is a child process forked before any environment is opened (a
// process must not fork while it has an environment open), which sets its
// TRLMDB_* variables and opens its own environment through libtrlmdb, so the
// replicator runs inside it exactly as in an application. The parent opens no
// environment: it drives the nodes over pipes (protocol in
// repl_bench_node.cc), reads their status counters, and runs `trlmdb digest`
// to check that they converged. All times are CLOCK_MONOTONIC, which is the
// same clock in every process, so a commit time taken on A and a visibility
// time taken on B can be subtracted.
//
// Workloads:
//   latency     A -> B. A commits one put per transaction, paced at each
//               --rates value (default 1,000/s then 10,000/s); B polls for
//               each key and records when it became visible. Percentiles of
//               visible(B) - commit returned(A). Target: p50 <= 1 ms,
//               p99 <= 5 ms.
//   throughput  A, B, C in a mesh. A writes --keys random 16-byte keys with
//               --value-size values, --batch puts per transaction. T_A: A's
//               write time; T_B, T_C: from A's first write until the node
//               holds every key. Target: max(T_B, T_C) / T_A <= 1.5.
//   catchup     A -> B full load, B stops cleanly, A changes --changes keys
//               (50% new, 40% updated, 10% deleted), B restarts: bytes and
//               seconds from B's mdb_env_open until B holds A's state.
//               Target: bytes <= 3 x differing entries + 100 KB, time < 2 s;
//               compared with a full copy (A's data.mdb, and a fresh node C
//               joining by the same catch-up).
//
// Targets are reported, not asserted: the exit status is 1 only for a
// functional failure (a node died or answered an error, a wait timed out,
// digests differ), 2 for a usage error.

#include "repl_bench.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <trlmdb.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.h"

#ifndef TRLMDB_CLI_PATH
#define TRLMDB_CLI_PATH "trlmdb"
#endif

namespace rbench {
namespace {

namespace fs = std::filesystem;
using trlmdb::bench::fs_type;
using trlmdb::bench::loadavg;
using trlmdb::bench::split_list;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char *f, ...) {
  char buf[1024];
  std::va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

[[noreturn]] void usage_error(const std::string &msg) {
  std::fprintf(stderr, "trlmdb-repl-bench: %s (--help for usage)\n", msg.c_str());
  std::exit(2);
}

// ---------------------------------------------------------------------------
// Options.

struct Options {
  std::vector<std::string> workloads{"latency", "throughput", "catchup"};
  std::vector<uint64_t> rates{1000, 10000};
  std::vector<uint64_t> latency_n{5000, 20000};
  uint64_t warmup = 200;
  uint64_t keys = 1000000;
  uint64_t batch = 1000;
  uint64_t changes = 1000;
  size_t value_size = 100;
  uint64_t mapsize = uint64_t{4} << 30;
  uint64_t seed = 301;
  uint64_t watch_poll_us = 0;
  uint64_t wait_poll_us = 1000;
  double timeout_s = 600;
  bool join = true;
  bool star = false;  // throughput: C peers A only (no B-C link)
  bool sync = false;
  bool quick = false;
  bool keep = false;
  bool quiet = false;
  std::string dir;
  std::string cli = TRLMDB_CLI_PATH;
  std::string log = "warn";
  std::string secret = "trlmdb-repl-bench-secret";
};

// clang-format off
const char *const kUsage =
    "usage: trlmdb-repl-bench [options]\n"
    "Replication on loopback: one child process per node, each with libtrlmdb's\n"
    "replicator in-process. Reports latency, throughput and catch-up figures against\n"
    "the targets of issue 3 (reported, not enforced).\n"
    "\n"
    "  --workloads=LIST    comma-separated, default latency,throughput,catchup\n"
    "  --quick             tiny sizes for a smoke run: 200 commits per rate, 20000 keys,\n"
    "                      100 changes, 60 s timeouts (explicit options still apply)\n"
    "  --rates=LIST        latency: commits per second, default 1000,10000\n"
    "  --latency-n=LIST    latency: commits per rate (one value, or one per rate),\n"
    "                      default 5000,20000\n"
    "  --warmup=N          latency: unmeasured commits before each rate (default 200)\n"
    "  --keys=N            throughput and catchup: keys written on A (default 1000000)\n"
    "  --batch=N           puts per transaction for those writes (default 1000)\n"
    "  --changes=N         catchup: keys changed while B is down, 50% new, 40% updated,\n"
    "                      10% deleted (default 1000)\n"
    "  --no-join           catchup: skip the fresh-node full copy reference\n"
    "  --topology=T        throughput: mesh (default: B peers A, C peers A and B) or star\n"
    "                      (B and C peer A only), to see what relaying costs\n"
    "  --value-size=N      value bytes (default 100); keys are 16 bytes\n"
    "  --mapsize=BYTES     map size of every node (default 4294967296)\n"
    "  --sync              durable commits (default MDB_NOSYNC, so that the figures\n"
    "                      are replication's and not the disk's)\n"
    "  --poll-us=N         latency: B's pause between polls (default 0: busy, sched_yield)\n"
    "  --wait-poll-us=N    pause between the count/state polls of the other waits\n"
    "                      (default 1000)\n"
    "  --timeout=SECONDS   limit of every long wait (default 600; --quick: 60)\n"
    "  --seed=N            data seed (default 301)\n"
    "  --dir=PATH          where the temporary directory goes (default $TMPDIR or /tmp)\n"
    "  --cli=PATH          the trlmdb command, for digests (default " TRLMDB_CLI_PATH ")\n"
    "  --log=LEVEL         TRLMDB_LOG of the nodes (default warn); logs: <tmp>/<node>.log\n"
    "  --keep              keep the temporary directory (environments and node logs)\n"
    "  --quiet             no progress on stderr\n"
    "  --help              this text\n";
// clang-format on

uint64_t parse_u64(const std::string &opt, const std::string &v) {
  std::optional<uint64_t> x = trlmdb::bench::parse_u64(v);
  if (!x) usage_error(opt + ": not a non-negative integer: '" + v + "'");
  return *x;
}

Options parse_options(int argc, char **argv) {
  Options o;
  o.dir = trlmdb::bench::default_tmp_dir();
  std::vector<std::pair<std::string, std::string>> given;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (a.rfind("--", 0) != 0) usage_error("unexpected argument '" + a + "'");
    std::string name = a, value;
    bool has_value = false;
    if (auto eq = a.find('='); eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      has_value = true;
    }
    static const char *const kFlags[] = {"--quick", "--sync", "--keep", "--quiet", "--no-join"};
    bool is_flag = std::find_if(std::begin(kFlags), std::end(kFlags),
                                [&](const char *f) { return name == f; }) != std::end(kFlags);
    if (!is_flag && !has_value) {
      if (i + 1 >= argc) usage_error(name + " needs a value");
      value = argv[++i];
    }
    if (is_flag && has_value) usage_error(name + " takes no value");
    given.emplace_back(name, value);
  }
  // --quick first, so that explicit sizes override it wherever they appear.
  for (auto &[name, value] : given) {
    if (name == "--quick") {
      o.quick = true;
      o.latency_n = {200};
      o.warmup = 50;
      o.keys = 20000;
      o.changes = 100;
      o.timeout_s = 60;
      o.mapsize = uint64_t{256} << 20;
    }
  }
  for (auto &[name, value] : given) {
    auto list_u64 = [&] {
      std::vector<uint64_t> v;
      for (auto &s : split_list(value)) v.push_back(parse_u64(name, s));
      if (v.empty()) usage_error(name + ": empty list");
      return v;
    };
    if (name == "--quick") {
    } else if (name == "--workloads") {
      o.workloads = split_list(value);
    } else if (name == "--rates") {
      o.rates = list_u64();
    } else if (name == "--latency-n") {
      o.latency_n = list_u64();
    } else if (name == "--warmup") {
      o.warmup = parse_u64(name, value);
    } else if (name == "--keys") {
      o.keys = parse_u64(name, value);
    } else if (name == "--batch") {
      o.batch = parse_u64(name, value);
    } else if (name == "--changes") {
      o.changes = parse_u64(name, value);
    } else if (name == "--topology") {
      if (value != "mesh" && value != "star") usage_error("--topology: mesh or star");
      o.star = value == "star";
    } else if (name == "--no-join") {
      o.join = false;
    } else if (name == "--value-size") {
      o.value_size = parse_u64(name, value);
    } else if (name == "--mapsize") {
      o.mapsize = parse_u64(name, value);
    } else if (name == "--sync") {
      o.sync = true;
    } else if (name == "--poll-us") {
      o.watch_poll_us = parse_u64(name, value);
    } else if (name == "--wait-poll-us") {
      o.wait_poll_us = parse_u64(name, value);
    } else if (name == "--timeout") {
      o.timeout_s = static_cast<double>(parse_u64(name, value));
    } else if (name == "--seed") {
      o.seed = parse_u64(name, value);
    } else if (name == "--dir") {
      o.dir = value;
    } else if (name == "--cli") {
      o.cli = value;
    } else if (name == "--log") {
      o.log = value;
    } else if (name == "--keep") {
      o.keep = true;
    } else if (name == "--quiet") {
      o.quiet = true;
    } else {
      usage_error("unknown option " + name);
    }
  }
  for (auto &w : o.workloads)
    if (w != "latency" && w != "throughput" && w != "catchup")
      usage_error("unknown workload '" + w + "' (latency, throughput, catchup)");
  if (o.workloads.empty()) usage_error("--workloads: empty list");
  if (o.latency_n.size() == 1) o.latency_n.assign(o.rates.size(), o.latency_n[0]);
  if (o.latency_n.size() != o.rates.size()) usage_error("--latency-n: one value, or one per rate");
  for (auto r : o.rates)
    if (r == 0 || r > 1000000) usage_error("--rates: between 1 and 1000000");
  for (auto n : o.latency_n)
    if (n == 0) usage_error("--latency-n: at least 1");
  if (o.keys == 0) usage_error("--keys: at least 1");
  if (o.value_size < 8) usage_error("--value-size: at least 8 (latency values carry a time)");
  if (o.changes < 10 || o.changes > o.keys) usage_error("--changes: between 10 and --keys");
  return o;
}

// ---------------------------------------------------------------------------
// Progress and logs.

bool g_quiet = false;

// SIGINT/SIGTERM/SIGHUP: every wait of the driver checks this and fails, so
// that the unwinding kills the nodes and removes the temporary directory.
volatile sig_atomic_t g_signal = 0;

void on_signal(int sig) { g_signal = sig; }

void check_interrupted() {
  if (g_signal) throw Failure(fmt("interrupted by signal %d", static_cast<int>(g_signal)));
}

void progress(const char *f, ...) __attribute__((format(printf, 1, 2)));
void progress(const char *f, ...) {
  if (g_quiet) return;
  std::va_list ap;
  va_start(ap, f);
  std::fputs("trlmdb-repl-bench: ", stderr);
  std::vfprintf(stderr, f, ap);
  std::fputc('\n', stderr);
  va_end(ap);
}

double secs(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

std::string tail_of(const std::string &path, size_t lines) {
  std::ifstream in(path);
  std::vector<std::string> all;
  for (std::string l; std::getline(in, l);) all.push_back(l);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
    out += "    " + all[i] + "\n";
  return out;
}

// ---------------------------------------------------------------------------
// A node process and its two pipes.

struct Status {
  int running = 0;
  unsigned port = 0, configured = 0, connected = 0;
  uint64_t backlog = 0, sent = 0, received = 0, applied = 0;
};

class Node {
 public:
  // Forks the node; returns once it answered READY (its environment is open).
  Node(const NodeSpec &spec, const std::string &log_path, double timeout_s)
      : spec_(spec), log_(log_path) {
    int to_child[2], from_child[2];
    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0)
      throw Failure(std::string("pipe: ") + std::strerror(errno));
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) throw Failure(std::string("fork: ") + std::strerror(errno));
    if (pid_ == 0) {
      // A node must not outlive the driver (its ports and files would stay).
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(4);
      signal(SIGPIPE, SIG_IGN);
      // A terminal's ^C reaches the whole process group: the driver decides.
      signal(SIGINT, SIG_IGN);
      signal(SIGTERM, SIG_DFL);
      signal(SIGHUP, SIG_DFL);
      int logfd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      int devnull = open("/dev/null", O_RDWR);
      if (logfd >= 0) dup2(logfd, 2);
      if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
      }
      // Other nodes' pipes stay with the driver: a node holding a sibling's
      // pipe would keep it open after the sibling's driver end closed.
      const int keep_in = to_child[0], keep_out = from_child[1];
      for (int fd = 3; fd < 1024; ++fd)
        if (fd != keep_in && fd != keep_out) close(fd);
      node_main(spec, keep_in, keep_out);
    }
    close(to_child[0]);
    close(from_child[1]);
    in_ = to_child[1];
    out_ = from_child[0];
    std::string ready = read_line(timeout_s, "READY");
    uint64_t t0 = 0, t1 = 0;
    unsigned port = 0;
    if (std::sscanf(ready.c_str(), "READY %" SCNu64 " %" SCNu64 " %u", &t0, &t1, &port) != 3)
      fail("did not start: " + ready);
    open_start_ = t0;
    open_end_ = t1;
    port_ = port;
  }

  Node(const Node &) = delete;
  Node &operator=(const Node &) = delete;

  ~Node() { kill_now(); }

  const std::string &name() const { return spec_.name; }
  const std::string &log() const { return log_; }
  const NodeSpec &spec() const { return spec_; }
  unsigned port() const { return port_; }
  uint64_t open_start() const { return open_start_; }
  uint64_t open_end() const { return open_end_; }

  void send(const std::string &line) {
    std::string l = line + "\n";
    for (size_t off = 0; off < l.size();) {
      ssize_t w = write(in_, l.data() + off, l.size() - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) fail("cannot send '" + line + "': " + death());
      off += static_cast<size_t>(w);
    }
    last_cmd_ = line;
  }

  // The next answer line; Failure on timeout, on "ERR" and if the node died.
  std::string read_line(double timeout_s, const std::string &what = "") {
    const uint64_t deadline = now_ns() + static_cast<uint64_t>(timeout_s * 1e9);
    for (;;) {
      check_interrupted();
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (line.rfind("ERR", 0) == 0)
          fail("answered '" + line + "' to '" + (what.empty() ? last_cmd_ : what) + "'");
        return line;
      }
      const uint64_t now = now_ns();
      if (now >= deadline)
        fail(fmt("no answer to '%s' within %.0f s", (what.empty() ? last_cmd_ : what).c_str(),
                 timeout_s));
      pollfd p{out_, POLLIN, 0};
      int ms = static_cast<int>(std::min<uint64_t>((deadline - now) / 1000000 + 1, 1000));
      int rc = poll(&p, 1, ms);
      if (rc < 0 && errno != EINTR) fail(std::string("poll: ") + std::strerror(errno));
      if (rc <= 0) continue;
      char chunk[4096];
      ssize_t n = read(out_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0)
        fail("died while answering '" + (what.empty() ? last_cmd_ : what) + "': " + death());
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }

  std::string cmd(const std::string &line, double timeout_s) {
    send(line);
    return read_line(timeout_s);
  }

  // Numbers of an "OK n n ..." answer.
  std::vector<uint64_t> ok_numbers(const std::string &answer) {
    std::istringstream in(answer);
    std::string head;
    in >> head;
    if (head != "OK") fail("answered '" + answer + "' to '" + last_cmd_ + "'");
    std::vector<uint64_t> v;
    for (uint64_t x; in >> x;) v.push_back(x);
    return v;
  }

  Status status() {
    auto v = ok_numbers(cmd("status", 30));
    if (v.size() != 8) fail("malformed status");
    Status s;
    s.running = static_cast<int>(v[0]);
    s.port = static_cast<unsigned>(v[1]);
    s.configured = static_cast<unsigned>(v[2]);
    s.connected = static_cast<unsigned>(v[3]);
    s.backlog = v[4];
    s.sent = v[5];
    s.received = v[6];
    s.applied = v[7];
    return s;
  }

  // Clean stop: the node closes its environment and exits 0.
  void quit(double timeout_s) {
    send("quit");
    std::string bye = read_line(timeout_s, "quit");
    if (bye != "BYE") fail("answered '" + bye + "' to quit");
    const uint64_t deadline = now_ns() + static_cast<uint64_t>(timeout_s * 1e9);
    int st = 0;
    for (;;) {
      pid_t r = waitpid(pid_, &st, WNOHANG);
      if (r == pid_) break;
      if (now_ns() >= deadline) fail("did not exit after quit");
      usleep(2000);
    }
    pid_ = -1;
    close_fds();
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail("exited uncleanly after quit");
  }

  void kill_now() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    close_fds();
  }

  [[noreturn]] void fail(const std::string &msg) {
    throw Failure("node " + spec_.name + " (" + spec_.dir + "): " + msg);
  }

 private:
  // Why the node's pipe closed, reaping it.
  std::string death() {
    if (pid_ <= 0) return "not running";
    int st = 0;
    for (int i = 0; i < 200; ++i) {
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        if (WIFSIGNALED(st)) return fmt("killed by signal %d", WTERMSIG(st));
        return fmt("exited with status %d", WEXITSTATUS(st));
      }
      usleep(10000);
    }
    return "pipe closed";
  }

  void close_fds() {
    if (in_ >= 0) close(in_);
    if (out_ >= 0) close(out_);
    in_ = out_ = -1;
  }

  NodeSpec spec_;
  std::string log_;
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
  std::string buf_, last_cmd_;
  unsigned port_ = 0;
  uint64_t open_start_ = 0, open_end_ = 0;
};

// ---------------------------------------------------------------------------
// Helpers over nodes.

struct Run {
  const Options &o;
  std::string root;  // temporary directory of the run
  std::vector<std::string> logs;

  double long_timeout() const { return o.timeout_s; }

  NodeSpec spec(const std::string &workload, const std::string &name,
                const std::vector<const Node *> &peers) const {
    NodeSpec s;
    s.name = name;
    fs::create_directories(root + "/" + workload + "/" + name);
    s.dir = root + "/" + workload + "/" + name + "/db";  // same basename on every node
    s.listen = "127.0.0.1:0";
    for (const Node *p : peers)
      s.peers += (s.peers.empty() ? "" : ",") + fmt("127.0.0.1:%u", p->port());
    s.secret = o.secret;
    s.log = o.log;
    s.mapsize = o.mapsize;
    s.value_size = o.value_size;
    s.sync = o.sync;
    return s;
  }

  std::unique_ptr<Node> start(const NodeSpec &s, const std::string &log_name) {
    std::string log = root + "/" + log_name + ".log";
    logs.push_back(log);
    auto n = std::make_unique<Node>(s, log, 60);
    Status st = n->status();
    if (!st.running)
      n->fail("runs no replicator (trlmdb_repl_status: running == 0); log:\n" + tail_of(log, 10));
    return n;
  }
};

template <class Pred>
void wait_until(Pred pred, double timeout_s, const std::string &what) {
  const uint64_t deadline = now_ns() + static_cast<uint64_t>(timeout_s * 1e9);
  for (;;) {
    check_interrupted();
    std::string last;
    if (pred(&last)) return;
    if (now_ns() >= deadline)
      throw Failure(fmt("timed out after %.0f s waiting for %s (last: %s)", timeout_s, what.c_str(),
                        last.c_str()));
    usleep(10000);
  }
}

void wait_connected(const std::vector<Node *> &nodes, unsigned want, double timeout_s) {
  wait_until(
      [&](std::string *last) {
        last->clear();
        bool all = true;
        for (Node *n : nodes) {
          Status s = n->status();
          *last += fmt("%s:%u ", n->name().c_str(), s.connected);
          all = all && s.connected == want;
        }
        return all;
      },
      timeout_s, fmt("%u connected peer(s) on every node", want));
}

void wait_backlog_zero(Node &n, double timeout_s) {
  wait_until(
      [&](std::string *last) {
        Status s = n.status();
        *last = fmt("backlog %" PRIu64, s.backlog);
        return s.backlog == 0;
      },
      timeout_s, "backlog 0 on " + n.name());
}

// Runs argv with stdout captured; Failure if it cannot run or times out.
std::pair<int, std::string> run_capture(const std::vector<std::string> &argv, double timeout_s) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) throw Failure("pipe failed");
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) throw Failure("fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(p[1], 1);
    // The tool reads environments read-only; no setting may make it a node.
    for (const char *v :
         {"TRLMDB_LISTEN", "TRLMDB_PEERS", "TRLMDB_SECRET", "TRLMDB_CONFIG", "LD_PRELOAD"})
      unsetenv(v);
    std::vector<char *> a;
    for (auto &s : argv) a.push_back(const_cast<char *>(s.c_str()));
    a.push_back(nullptr);
    execv(a[0], a.data());
    std::fprintf(stderr, "trlmdb-repl-bench: cannot run %s: %s\n", a[0], std::strerror(errno));
    _exit(127);
  }
  close(p[1]);
  std::string out;
  const uint64_t deadline = now_ns() + static_cast<uint64_t>(timeout_s * 1e9);
  for (;;) {
    pollfd pf{p[0], POLLIN, 0};
    if (now_ns() >= deadline || g_signal) {
      ::kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      close(p[0]);
      check_interrupted();
      throw Failure(fmt("%s did not finish within %.0f s", argv[0].c_str(), timeout_s));
    }
    if (poll(&pf, 1, 200) <= 0) continue;
    char buf[4096];
    ssize_t n = read(p[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(p[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), out};
}

std::string digest(const Options &o, const std::string &env_dir) {
  auto [rc, out] = run_capture({o.cli, "digest", env_dir}, 600);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  if (auto nl = out.rfind('\n'); nl != std::string::npos) out = out.substr(nl + 1);
  if (rc != 0 || out.empty())
    throw Failure(fmt("`%s digest %s` failed (exit %d)", o.cli.c_str(), env_dir.c_str(), rc));
  return out;
}

// Digests of every node's environment; Failure unless all are equal.
std::string check_digests(const Options &o, const std::vector<Node *> &nodes) {
  std::vector<std::string> d;
  std::string all;
  for (Node *n : nodes) {
    d.push_back(digest(o, n->spec().dir));
    all += "  " + n->name() + " " + d.back() + "\n";
  }
  for (auto &x : d)
    if (x != d[0]) throw Failure("digests differ after convergence:\n" + all);
  return d[0];
}

uint64_t file_size(const std::string &path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

std::vector<uint64_t> read_times(const std::string &path, uint64_t n) {
  std::vector<uint64_t> v(n);
  FILE *f = std::fopen(path.c_str(), "rb");
  if (!f) throw Failure("cannot read " + path);
  size_t got = std::fread(v.data(), sizeof(uint64_t), n, f);
  std::fclose(f);
  if (got != n) throw Failure("short file " + path);
  return v;
}

// ---------------------------------------------------------------------------
// Results.

struct Row {
  std::string workload, figure, value, target, verdict;  // verdict: "met", "MISSED", ""
};

struct Report {
  std::vector<Row> rows;
  std::vector<std::string> results;  // "name=value"
  std::vector<std::string> notes;

  void result(const std::string &name, double v, int decimals = 3) {
    results.push_back(fmt("%s=%.*f", name.c_str(), decimals, v));
  }
  void result_u(const std::string &name, uint64_t v) {
    results.push_back(fmt("%s=%" PRIu64, name.c_str(), v));
  }
  void row(const std::string &w, const std::string &f, const std::string &v,
           const std::string &target = "", int met = -1) {
    rows.push_back({w, f, v, target, met < 0 ? "" : met ? "met" : "MISSED"});
  }
};

double percentile(const std::vector<double> &sorted, double p) {
  if (sorted.empty()) return 0;
  // Nearest rank: the smallest value with at least p of the samples at or below it.
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

std::string human_bytes(double b) {
  if (b >= 1e9) return fmt("%.2f GB", b / 1e9);
  if (b >= 1e6) return fmt("%.2f MB", b / 1e6);
  if (b >= 1e3) return fmt("%.1f kB", b / 1e3);
  return fmt("%.0f B", b);
}

// ---------------------------------------------------------------------------
// Workloads.

void latency(Run &run, Report &rep) {
  const Options &o = run.o;
  progress("latency: starting A and B");
  auto a = run.start(run.spec("latency", "A", {}), "latency-A");
  auto b = run.start(run.spec("latency", "B", {a.get()}), "latency-B");
  wait_connected({a.get(), b.get()}, 1, 60);

  std::printf(
      "\nlatency: A -> B, one put per transaction (16-byte key, %zu-byte value), "
      "commits %s;\n  latency = B sees the key - A's mdb_txn_commit returned; "
      "B polls %s\n",
      o.value_size, o.sync ? "durable (--sync)" : "MDB_NOSYNC",
      o.watch_poll_us ? fmt("every %" PRIu64 " us", o.watch_poll_us).c_str()
                      : "busy (read txn renew + mdb_get, sched_yield between)");
  std::printf("  %8s %8s %10s %7s %8s %8s %8s %8s %8s  %s\n", "rate/s", "commits", "achieved/s",
              "behind", "min ms", "p50 ms", "p90 ms", "p99 ms", "max ms", "target p50<=1 p99<=5");

  unsigned tag = 0;
  auto one_run = [&](uint64_t rate, uint64_t n, bool measured) {
    ++tag;
    const std::string fa = run.root + fmt("/lat-%u-A.bin", tag);
    const std::string fb = run.root + fmt("/lat-%u-B.bin", tag);
    const double write_s = static_cast<double>(n) / static_cast<double>(rate);
    b->send(fmt("watch %u %" PRIu64 " %.0f %" PRIu64 " %s", tag, n,
                (write_s + run.long_timeout()) * 1000, o.watch_poll_us, fb.c_str()));
    if (b->read_line(30) != "WATCHING") b->fail("did not start watching");
    auto r = a->ok_numbers(a->cmd(
        fmt("paced %u %" PRIu64 " %" PRIu64 " %s", tag, n, rate, fa.c_str()), write_s * 3 + 60));
    b->ok_numbers(b->read_line(run.long_timeout() + write_s, "watch"));
    if (!measured) return;
    auto committed = read_times(fa, n), visible = read_times(fb, n);
    std::vector<double> ms(n);
    for (uint64_t i = 0; i < n; ++i)
      ms[i] = static_cast<double>(static_cast<int64_t>(visible[i] - committed[i])) / 1e6;
    std::sort(ms.begin(), ms.end());
    const double achieved = static_cast<double>(n) / secs(r.at(1) - r.at(0));
    const double p50 = percentile(ms, 0.5), p90 = percentile(ms, 0.9), p99 = percentile(ms, 0.99);
    const bool met = p50 <= 1.0 && p99 <= 5.0;
    std::printf(
        "  %8" PRIu64 " %8" PRIu64 " %10.1f %7" PRIu64 " %8.3f %8.3f %8.3f %8.3f %8.3f  %s\n", rate,
        n, achieved, r.at(2), ms.front(), p50, p90, p99, ms.back(), met ? "met" : "MISSED");
    std::fflush(stdout);
    const std::string k = fmt("latency_%" PRIu64, rate);
    rep.result(k + "_achieved_per_s", achieved, 1);
    rep.result(k + "_p50_ms", p50);
    rep.result(k + "_p90_ms", p90);
    rep.result(k + "_p99_ms", p99);
    rep.result(k + "_max_ms", ms.back());
    rep.row("latency", fmt("%" PRIu64 "/s p50", rate), fmt("%.3f ms", p50), "<= 1 ms", p50 <= 1.0);
    rep.row("latency", fmt("%" PRIu64 "/s p99", rate), fmt("%.3f ms", p99), "<= 5 ms", p99 <= 5.0);
    if (ms.front() < 0)
      rep.notes.push_back(fmt("latency %" PRIu64 "/s: some keys were visible on B before A's "
                              "commit call returned (min %.3f ms): A's thread was descheduled "
                              "between the commit and the clock read",
                              rate, ms.front()));
    if (r.at(2) > n / 100)
      rep.notes.push_back(fmt("latency %" PRIu64 "/s: A fell behind the schedule on %" PRIu64
                              " of %" PRIu64 " commits (achieved %.0f/s)",
                              rate, r.at(2), n, achieved));
  };
  for (size_t i = 0; i < o.rates.size(); ++i) {
    progress("latency: %" PRIu64 "/s, %" PRIu64 " commits (+%" PRIu64 " warm-up)", o.rates[i],
             o.latency_n[i], o.warmup);
    if (o.warmup) one_run(o.rates[i], o.warmup, false);
    one_run(o.rates[i], o.latency_n[i], true);
  }
  wait_backlog_zero(*a, 60);
  std::string d = check_digests(o, {a.get(), b.get()});
  std::printf("  digests equal (%.16s...)\n", d.c_str());
  a->quit(60);
  b->quit(60);
}

void throughput(Run &run, Report &rep) {
  const Options &o = run.o;
  progress("throughput: starting A, B, C");
  auto a = run.start(run.spec("throughput", "A", {}), "throughput-A");
  auto b = run.start(run.spec("throughput", "B", {a.get()}), "throughput-B");
  auto c = run.start(run.spec("throughput", "C",
                              o.star ? std::vector<const Node *>{a.get()}
                                     : std::vector<const Node *>{a.get(), b.get()}),
                     "throughput-C");
  if (o.star) {
    wait_connected({b.get(), c.get()}, 1, 60);
    wait_connected({a.get()}, 2, 60);
  } else {
    wait_connected({a.get(), b.get(), c.get()}, 2, 60);
  }

  progress("throughput: A writes %" PRIu64 " keys", o.keys);
  const double limit = run.long_timeout();
  for (Node *n : {b.get(), c.get()})
    n->send(fmt("waitcount %" PRIu64 " %.0f %" PRIu64, o.keys, limit * 1000, o.wait_poll_us));
  auto w = a->ok_numbers(
      a->cmd(fmt("fill %" PRIu64 " 0 %" PRIu64 " %" PRIu64 " 0", o.seed, o.keys, o.batch), limit));
  const uint64_t t0 = w.at(0), t_a = w.at(1) - t0;
  progress("throughput: A done in %.2f s; waiting for B and C", secs(t_a));
  const uint64_t t_b = b->ok_numbers(b->read_line(limit + 10, "waitcount")).at(0) - t0;
  const uint64_t t_c = c->ok_numbers(c->read_line(limit + 10, "waitcount")).at(0) - t0;
  auto a_count = a->ok_numbers(a->cmd("count", 30)).at(0);
  if (a_count != o.keys) a->fail(fmt("holds %" PRIu64 " keys after the fill", a_count));
  wait_backlog_zero(*a, limit);
  Status sa = a->status(), sb = b->status(), sc = c->status();
  progress("throughput: checking digests");
  std::string d = check_digests(o, {a.get(), b.get(), c.get()});

  const double ratio = static_cast<double>(std::max(t_b, t_c)) / static_cast<double>(t_a);
  const double entry = static_cast<double>(kKeySize + TRLMDB_TS_SIZE + o.value_size);
  const double payload = entry * static_cast<double>(o.keys);
  std::printf(
      "\nthroughput: %s; A writes %" PRIu64 " random 16-byte keys, %zu-byte values, %" PRIu64
      " puts per txn, %s\n",
      o.star ? "star A, B, C (B and C peer A only)" : "mesh A, B, C (B peers A; C peers A and B)",
      o.keys, o.value_size, o.batch, o.sync ? "durable (--sync)" : "MDB_NOSYNC");
  std::printf(
      "  T_A %.3f s (%.0f puts/s)   T_B %.3f s   T_C %.3f s   (from A's first write "
      "until the node holds every key)\n",
      secs(t_a), static_cast<double>(o.keys) / secs(t_a), secs(t_b), secs(t_c));
  std::printf("  max(T_B, T_C) / T_A = %.3f   target <= 1.5: %s\n", ratio,
              ratio <= 1.5 ? "met" : "MISSED");
  std::printf("  bytes sent: A %s, B %s, C %s; received: A %s, B %s, C %s\n",
              human_bytes(sa.sent).c_str(), human_bytes(sb.sent).c_str(),
              human_bytes(sc.sent).c_str(), human_bytes(sa.received).c_str(),
              human_bytes(sb.received).c_str(), human_bytes(sc.received).c_str());
  std::printf("  A sent %.2f x the entries' size (%" PRIu64
              " x %.0f bytes = %s) per peer; "
              "applied: B %" PRIu64 ", C %" PRIu64 "\n",
              static_cast<double>(sa.sent) / payload / 2, o.keys, entry,
              human_bytes(payload).c_str(), sb.applied, sc.applied);
  std::printf("  digests equal (%.16s...)\n", d.c_str());
  rep.result("throughput_keys", static_cast<double>(o.keys), 0);
  rep.result("throughput_t_a_s", secs(t_a));
  rep.result("throughput_t_b_s", secs(t_b));
  rep.result("throughput_t_c_s", secs(t_c));
  rep.result("throughput_ratio", ratio);
  rep.result_u("throughput_a_bytes_sent", sa.sent);
  rep.result_u("throughput_b_bytes_sent", sb.sent);
  rep.result_u("throughput_c_bytes_sent", sc.sent);
  rep.row("throughput", "T_A", fmt("%.3f s", secs(t_a)));
  rep.row("throughput", "T_B / T_C", fmt("%.3f / %.3f s", secs(t_b), secs(t_c)));
  rep.row("throughput", "max(T_B,T_C)/T_A", fmt("%.3f", ratio), "<= 1.5", ratio <= 1.5);
  rep.row("throughput", "bytes sent by A", human_bytes(sa.sent));
  for (Node *n : {a.get(), b.get(), c.get()}) n->quit(60);
}

void catchup(Run &run, Report &rep) {
  const Options &o = run.o;
  const uint64_t n = o.keys, nnew = o.changes / 2, ndel = o.changes / 10,
                 nupd = o.changes - nnew - ndel;
  const double limit = run.long_timeout();
  progress("catchup: starting A and B");
  auto a = run.start(run.spec("catchup", "A", {}), "catchup-A");
  NodeSpec b_spec = run.spec("catchup", "B", {a.get()});
  auto b = run.start(b_spec, "catchup-B");
  wait_connected({a.get(), b.get()}, 1, 60);

  progress("catchup: A loads %" PRIu64 " keys", n);
  b->send(fmt("waitcount %" PRIu64 " %.0f %" PRIu64, n, limit * 1000, o.wait_poll_us));
  auto w = a->ok_numbers(
      a->cmd(fmt("fill %" PRIu64 " 0 %" PRIu64 " %" PRIu64 " 0", o.seed, n, o.batch), limit));
  const uint64_t t_full = b->ok_numbers(b->read_line(limit + 10, "waitcount")).at(0) - w.at(0);
  wait_backlog_zero(*a, limit);
  const uint64_t full_received = b->status().received;
  const uint64_t full_file = file_size(a->spec().dir + "/data.mdb");
  const double entry = static_cast<double>(kKeySize + TRLMDB_TS_SIZE + o.value_size);
  const double full_entries = entry * static_cast<double>(n);

  progress("catchup: B stops; A changes %" PRIu64 " new, %" PRIu64 " updated, %" PRIu64 " deleted",
           nnew, nupd, ndel);
  b->quit(60);
  b.reset();
  wait_connected({a.get()}, 0, 60);
  a->ok_numbers(a->cmd(fmt("change %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64,
                           o.seed, n, nnew, nupd, ndel),
                       60));
  const Status a_before = a->status();

  progress("catchup: B restarts");
  b = run.start(b_spec, "catchup-B-restart");
  auto done = b->ok_numbers(b->cmd(
      fmt("waitstate %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %.0f %" PRIu64,
          o.seed, n, nnew, nupd, ndel, limit * 1000, o.wait_poll_us),
      limit + 10));
  const Status a_after = a->status(), b_after = b->status();
  const uint64_t t_catch = done.at(0) - b->open_start();
  const uint64_t a_sent = a_after.sent - a_before.sent, b_sent = b_after.sent;
  const uint64_t bytes = a_sent + b_sent;
  wait_backlog_zero(*a, 60);
  progress("catchup: checking digests");
  std::string d = check_digests(o, {a.get(), b.get()});

  const double diff = static_cast<double>(nnew + nupd) * entry +
                      static_cast<double>(ndel) * static_cast<double>(kKeySize + TRLMDB_TS_SIZE);
  const double bytes_target = 3 * diff + 100000;
  const bool bytes_met = static_cast<double>(bytes) <= bytes_target;
  const bool time_met = secs(t_catch) < 2.0;

  std::printf("\ncatchup: A and B, %" PRIu64 " keys (16-byte keys, %zu-byte values), %s\n", n,
              o.value_size, o.sync ? "durable (--sync)" : "MDB_NOSYNC");
  std::printf("  full copy: A's data.mdb %s; the entries alone %s (%" PRIu64
              " x %.0f bytes: key + 12-byte ts + value)\n",
              human_bytes(static_cast<double>(full_file)).c_str(),
              human_bytes(full_entries).c_str(), n, entry);
  std::printf(
      "  initial live sync while A wrote: B received %s, all keys on B %.3f s after "
      "A's first write (A wrote for %.3f s)\n",
      human_bytes(static_cast<double>(full_received)).c_str(), secs(t_full),
      secs(w.at(1) - w.at(0)));
  std::printf("  while B was stopped A changed %" PRIu64 " keys: %" PRIu64 " new, %" PRIu64
              " updated, %" PRIu64 " deleted = %.0f bytes of differing entries\n",
              nnew + nupd + ndel, nnew, nupd, ndel, diff);
  std::printf("  catch-up after B's restart: %" PRIu64 " bytes (A sent %" PRIu64 ", B sent %" PRIu64
              ") in %.3f s from B's mdb_env_open (open itself %.3f s)\n",
              bytes, a_sent, b_sent, secs(t_catch), secs(b->open_end() - b->open_start()));
  std::printf("  %.1f bytes per differing entry; %.2f%% of A's data.mdb\n",
              static_cast<double>(bytes) / static_cast<double>(nnew + nupd + ndel),
              100.0 * static_cast<double>(bytes) / static_cast<double>(full_file));
  std::printf("  target bytes <= 3 x %.0f + 100000 = %.0f: %s; target time < 2 s: %s\n", diff,
              bytes_target, bytes_met ? "met" : "MISSED", time_met ? "met" : "MISSED");
  std::printf("  digests equal (%.16s...)\n", d.c_str());
  std::fflush(stdout);

  rep.result("catchup_keys", static_cast<double>(n), 0);
  rep.result_u("catchup_full_copy_data_mdb_bytes", full_file);
  rep.result_u("catchup_initial_sync_bytes_received", full_received);
  rep.result("catchup_initial_sync_s", secs(t_full));
  rep.result("catchup_differing_entries_bytes", diff, 0);
  rep.result_u("catchup_bytes", bytes);
  rep.result("catchup_s", secs(t_catch));
  rep.result("catchup_bytes_per_differing_entry",
             static_cast<double>(bytes) / static_cast<double>(nnew + nupd + ndel), 1);
  rep.row("catchup", "full copy (data.mdb)", human_bytes(static_cast<double>(full_file)));
  rep.row(
      "catchup", "initial sync",
      fmt("%s in %.3f s", human_bytes(static_cast<double>(full_received)).c_str(), secs(t_full)));
  rep.row("catchup", fmt("catch-up bytes (%" PRIu64 " changed)", nnew + nupd + ndel),
          fmt("%" PRIu64, bytes), fmt("<= %.0f", bytes_target), bytes_met);
  rep.row("catchup", "catch-up time", fmt("%.3f s", secs(t_catch)), "< 2 s", time_met);

  if (o.join) {
    // The same catch-up path carrying everything: what a full copy costs
    // through the replicator, to set the small catch-up against.
    progress("catchup: a fresh node C joins A (full copy by catch-up)");
    const Status a0 = a->status();
    auto c = run.start(run.spec("catchup", "C", {a.get()}), "catchup-C-join");
    auto cdone = c->ok_numbers(c->cmd(
        fmt("waitstate %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %.0f %" PRIu64,
            o.seed, n, nnew, nupd, ndel, limit * 1000, o.wait_poll_us),
        limit + 10));
    const Status a1 = a->status(), c1 = c->status();
    const uint64_t t_join = cdone.at(0) - c->open_start();
    const uint64_t jbytes = (a1.sent - a0.sent) + c1.sent;
    wait_backlog_zero(*a, 60);
    progress("catchup: checking digests");
    check_digests(o, {a.get(), b.get(), c.get()});
    std::printf(
        "  fresh node C joining A (same catch-up, everything differs): %s in %.3f s "
        "(%.2f x the entries' size); the catch-up above moved %.3f%% of that\n",
        human_bytes(static_cast<double>(jbytes)).c_str(), secs(t_join),
        static_cast<double>(jbytes) / (entry * static_cast<double>(n + nnew - ndel)),
        100.0 * static_cast<double>(bytes) / static_cast<double>(jbytes));
    rep.result_u("catchup_join_bytes", jbytes);
    rep.result("catchup_join_s", secs(t_join));
    rep.row("catchup", "fresh node join (full copy)",
            fmt("%s in %.3f s", human_bytes(static_cast<double>(jbytes)).c_str(), secs(t_join)));
    c->quit(60);
  }
  a->quit(60);
  b->quit(60);
}

int main_impl(int argc, char **argv) {
  Options o = parse_options(argc, argv);
  g_quiet = o.quiet;
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {};
  sa.sa_handler = on_signal;  // no SA_RESTART: poll() and usleep() return at once
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
  if (access(o.cli.c_str(), X_OK) != 0) usage_error("--cli: cannot run " + o.cli);

  std::string tmpl = o.dir + "/trlmdb-repl-bench-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) usage_error("cannot create a directory in " + o.dir);
  Run run{o, buf.data(), {}};
  Report rep;

  std::printf(
      "trlmdb-repl-bench: replication on loopback, one process per node, replicator "
      "in-process (%s)\n",
      trlmdb_version(nullptr, nullptr, nullptr));
  std::printf("  dir %s (%s)   cpus %ld   load avg before %s   commits %s\n", run.root.c_str(),
              fs_type(run.root).c_str(), sysconf(_SC_NPROCESSORS_ONLN), loadavg().c_str(),
              o.sync ? "durable (--sync)" : "MDB_NOSYNC (replication isolated from fsync)");
  if (o.quick) std::printf("  --quick: tiny sizes, figures not meaningful\n");
  std::fflush(stdout);

  int rc = 0;
  const uint64_t started = now_ns();
  try {
    for (auto &w : o.workloads) {
      if (w == "latency") latency(run, rep);
      if (w == "throughput") throughput(run, rep);
      if (w == "catchup") catchup(run, rep);
      if (!o.keep) fs::remove_all(run.root + "/" + w);
    }
  } catch (const std::exception &e) {
    std::fprintf(stderr, "trlmdb-repl-bench: FAILED: %s\n", e.what());
    for (auto &log : run.logs) {
      std::string t = tail_of(log, 8);
      if (!t.empty()) std::fprintf(stderr, "  last lines of %s:\n%s", log.c_str(), t.c_str());
    }
    rc = 1;
  }
  // The nodes were killed by the unwinding (Node's destructor) before this.

  if (rc == 0) {
    std::printf("\nsummary (load avg after %s, %.1f s in all)\n", loadavg().c_str(),
                secs(now_ns() - started));
    std::printf("  %-11s %-32s %-24s %-12s %s\n", "workload", "figure", "value", "target", "");
    int targets = 0, met = 0;
    for (auto &r : rep.rows) {
      std::printf("  %-11s %-32s %-24s %-12s %s\n", r.workload.c_str(), r.figure.c_str(),
                  r.value.c_str(), r.target.c_str(), r.verdict.c_str());
      if (!r.verdict.empty()) {
        ++targets;
        met += r.verdict == "met";
      }
    }
    std::printf("  %d of %d targets met (reported, not enforced)\n", met, targets);
    for (auto &n : rep.notes) std::printf("note: %s\n", n.c_str());
    for (auto &r : rep.results) std::printf("RESULT %s\n", r.c_str());
    std::printf("RESULT targets_met=%d\nRESULT targets=%d\n", met, targets);
  }
  if (o.keep)
    std::fprintf(stderr, "trlmdb-repl-bench: kept %s\n", run.root.c_str());
  else
    fs::remove_all(run.root);
  return rc;
}

}  // namespace
}  // namespace rbench

int main(int argc, char **argv) { return rbench::main_impl(argc, argv); }
