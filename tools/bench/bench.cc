// trlmdb-bench: the shim against the real LMDB, in one process, same work.
//
// Both libraries are dlopen()ed side by side (RTLD_NOW | RTLD_LOCAL) and
// driven through two tables of function pointers, so each workload runs the
// identical sequence of calls -- the same keys from a fixed-seed PRNG, the
// same values, the same transaction boundaries -- once through the real
// liblmdb.so.0 and once through libtrlmdb.so. The shim dlopen()s the real
// library by the same absolute path, so both tables end in the same LMDB code.
//
// Workloads (LevelDB db_bench style names):
//   fillbatch     (a) --num random 16-byte keys, 100-byte values, --batch puts
//                     per transaction, MDB_NOSYNC.
//   fillsync      (b) --sync-num durable transactions of one put each (no
//                     MDB_NOSYNC: every commit waits for the disk).
//   fillsyncbig   the same into a copy of the --num key database: the pages
//                     the bookkeeping adds per commit are fixed, LMDB's own grow
//                     with the depth of the tree.
//   readrandom    (c) random mdb_get of existing keys (--reads per read
//                     transaction) on a database of --num keys filled
//                     (untimed) through the same library.
//   scan          (d) a full MDB_NEXT cursor scan of that database.
//   deleterandom  (e) delete every key of a freshly filled database in random
//                     order, --batch deletes per transaction, MDB_NOSYNC.
//
// Write workloads run on fresh environments, the two libraries taking turns
// of ~200 ms over the same transactions (see write_workload); read workloads time many short
// interleaved samples on fresh copies of the filled environments (see
// read_workload). Reported: median time per op per
// library, and the ratio shim / real as the median of the per-round ratios;
// also the bytes each side hands to the kernel per op and the file sizes.
//
// A/A check: `--shim` set to the real library measures the noise floor.

#include <dlfcn.h>
#include <fcntl.h>
#include <lmdb.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.h"

#ifndef TRLMDB_REAL_LMDB_PATH
#error "TRLMDB_REAL_LMDB_PATH must name the system's liblmdb (set by CMake)"
#endif
#ifndef TRLMDB_SHIM_PATH
#define TRLMDB_SHIM_PATH "libtrlmdb.so"
#endif

namespace {

namespace fs = std::filesystem;
using trlmdb::bench::fs_type;
using trlmdb::bench::loadavg;

// ---------------------------------------------------------------------------
// The two function tables.

// clang-format off
#define BENCH_LMDB_FUNCTIONS(X)                                                          \
  X(version) X(strerror) X(env_create) X(env_set_mapsize) X(env_set_maxdbs) X(env_open) \
  X(env_close) X(txn_begin) X(txn_commit) X(txn_abort) X(dbi_open) X(stat) X(get)       \
  X(put) X(del) X(cursor_open) X(cursor_close) X(cursor_get)
// clang-format on

struct Api {
  std::string label;  // "lmdb" or "trlmdb"
  std::string path;
  void *handle = nullptr;
#define BENCH_SLOT(name) decltype(&::mdb_##name) name = nullptr;
  BENCH_LMDB_FUNCTIONS(BENCH_SLOT)
#undef BENCH_SLOT
  // Present only in the shim; used to check that --shim really is one.
  const char *(*trlmdb_version)(int *, int *, int *) = nullptr;
};

[[noreturn]] void fatal(const char *fmt, ...) {
  std::va_list ap;
  va_start(ap, fmt);
  std::fputs("trlmdb-bench: ", stderr);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
  std::exit(2);
}

void load_api(Api &api) {
  api.handle = dlopen(api.path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!api.handle)
    fatal("cannot load %s library %s: %s", api.label.c_str(), api.path.c_str(), dlerror());
#define BENCH_RESOLVE(name)                                                              \
  api.name = reinterpret_cast<decltype(&::mdb_##name)>(dlsym(api.handle, "mdb_" #name)); \
  if (!api.name) fatal("%s: no symbol mdb_" #name " in %s", api.label.c_str(), api.path.c_str());
  BENCH_LMDB_FUNCTIONS(BENCH_RESOLVE)
#undef BENCH_RESOLVE
  api.trlmdb_version =
      reinterpret_cast<const char *(*)(int *, int *, int *)>(dlsym(api.handle, "trlmdb_version"));
}

struct LmdbError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void check(const Api &api, int rc, const char *what) {
  if (rc != 0) {
    throw LmdbError(api.label + ": " + what + ": " + api.strerror(rc) + " (" + std::to_string(rc) +
                    ")");
  }
}

// ---------------------------------------------------------------------------
// Options.

struct Options {
  std::vector<std::string> benchmarks{"fillbatch",  "fillsync", "fillsyncbig",
                                      "readrandom", "scan",     "deleterandom"};
  uint64_t num = 1000000;
  uint64_t sync_num = 1000;
  uint64_t batch = 1000;
  uint64_t reads = 100000;
  int repeat = 3;
  int read_envs = 0;  // 0: 3 * --repeat
  int read_samples = 3;
  double min_sample_ms = 100;
  double turn_ms = 200;
  uint64_t mapsize = uint64_t{4} << 30;
  uint64_t seed = 301;
  std::string dir;
  std::string real_path = TRLMDB_REAL_LMDB_PATH;
  std::string shim_path = TRLMDB_SHIM_PATH;
  std::string db;  // empty: the main (unnamed) database
  bool cpu_clock = false;
  bool json = false;
  bool check = false;
  bool quiet = false;
  int pin_cpu = -1;
};

// clang-format off
const char *const kUsage =
    "usage: trlmdb-bench [options]\n"
    "Runs each workload through the real LMDB and through the trlmdb shim in one process\n"
    "and prints shim time / LMDB time.\n"
    "\n"
    "  --benchmarks=LIST   comma-separated, default fillbatch,fillsync,fillsyncbig,readrandom,\n"
    "                      scan,deleterandom\n"
    "  --num=N             keys for fillbatch/readrandom/scan/deleterandom (default 1000000)\n"
    "  --sync-num=N        durable one-put transactions for fillsync(big) (default 1000)\n"
    "  --batch=N           puts/deletes per transaction (default 1000)\n"
    "  --reads=N           mdb_get calls per readrandom pass / read txn (default 100000)\n"
    "  --repeat=N          runs of each write workload per library (default 3)\n"
    "  --read-envs=N       fresh copies of the filled environments per read workload\n"
    "                      (default 3*repeat)\n"
    "  --read-samples=N    timed samples per library per copy (default 3)\n"
    "  --min-sample-ms=MS  minimum length of one read sample; passes are added (default 100)\n"
    "  --turn-ms=MS        fillbatch/deleterandom switch library after a turn this long, in\n"
    "                      whole transactions (default 200; 0: after every transaction;\n"
    "                      fillsync always switches after every transaction)\n"
    "  --mapsize=BYTES     map size (default 4294967296)\n"
    "  --seed=N            PRNG seed for keys and values (default 301)\n"
    "  --dir=PATH          where the temporary environments go (default $TMPDIR or /tmp)\n"
    "  --db=NAME           use the named database NAME instead of the main database\n"
    "  --real=PATH         the real liblmdb (default " TRLMDB_REAL_LMDB_PATH ")\n"
    "  --shim=PATH         the shim (default " TRLMDB_SHIM_PATH ")\n"
    "  --clock=wall|cpu    what the ratio is computed from (default wall)\n"
    "  --cpu=N             pin the process to CPU N\n"
    "  --json              print the results as JSON instead of a table\n"
    "  --check             exit 1 if a ratio misses its target\n"
    "  --quiet             no progress on stderr\n"
    "  --help              this text\n";
// clang-format on

uint64_t parse_u64(const std::string &opt, const std::string &v) {
  std::optional<uint64_t> x = trlmdb::bench::parse_u64(v);
  if (!x) fatal("%s: not a non-negative integer: '%s'", opt.c_str(), v.c_str());
  return *x;
}

Options parse_options(int argc, char **argv) {
  Options o;
  o.dir = trlmdb::bench::default_tmp_dir();
  bool real_given = false;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i], name = arg, value;
    bool has_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    auto flag = [&](const char *n) {
      if (name != n) return false;
      if (has_value) fatal("%s takes no value", n);
      return true;
    };
    auto opt = [&](const char *n) {
      if (name != n) return false;
      if (!has_value) {
        if (i + 1 >= argc) fatal("%s needs a value", n);
        value = argv[++i];
      }
      return true;
    };
    auto u64 = [&](const char *n, uint64_t *out) {
      if (!opt(n)) return false;
      *out = parse_u64(name, value);
      return true;
    };
    auto count = [&](const char *n, int *out) {
      if (!opt(n)) return false;
      uint64_t x = parse_u64(name, value);
      if (x > 1000000) fatal("%s: at most 1000000", n);
      *out = static_cast<int>(x);
      return true;
    };
    auto str = [&](const char *n, std::string *out) {
      if (!opt(n)) return false;
      *out = value;
      return true;
    };
    uint64_t min_ms = 0, turn_ms = 0;
    std::string list, clock;
    if (flag("--help") || flag("-h")) {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (str("--benchmarks", &list)) {
      o.benchmarks = trlmdb::bench::split_list(list);
    } else if (u64("--min-sample-ms", &min_ms)) {
      o.min_sample_ms = static_cast<double>(min_ms);
    } else if (u64("--turn-ms", &turn_ms)) {
      o.turn_ms = static_cast<double>(turn_ms);
    } else if (str("--real", &o.real_path)) {
      real_given = true;
    } else if (str("--clock", &clock)) {
      if (clock != "wall" && clock != "cpu") fatal("--clock: wall or cpu, not '%s'", clock.c_str());
      o.cpu_clock = clock == "cpu";
    } else if (u64("--num", &o.num) || u64("--sync-num", &o.sync_num) || u64("--batch", &o.batch) ||
               u64("--reads", &o.reads) || u64("--mapsize", &o.mapsize) || u64("--seed", &o.seed) ||
               count("--repeat", &o.repeat) || count("--read-envs", &o.read_envs) ||
               count("--read-samples", &o.read_samples) || count("--cpu", &o.pin_cpu) ||
               str("--dir", &o.dir) || str("--db", &o.db) || str("--shim", &o.shim_path)) {
    } else if (flag("--json")) {
      o.json = true;
    } else if (flag("--check")) {
      o.check = true;
    } else if (flag("--quiet")) {
      o.quiet = true;
    } else {
      fatal("unknown option '%s' (try --help)", arg.c_str());
    }
  }
  static const char *const known[] = {"fillbatch",  "fillsync", "fillsyncbig",
                                      "readrandom", "scan",     "deleterandom"};
  for (const auto &b : o.benchmarks)
    if (std::find_if(std::begin(known), std::end(known), [&](const char *k) { return b == k; }) ==
        std::end(known))
      fatal("unknown benchmark '%s'", b.c_str());
  if (o.num == 0 || o.sync_num == 0 || o.batch == 0 || o.repeat <= 0 || o.reads == 0 ||
      o.read_samples <= 0)
    fatal("--num, --sync-num, --batch, --repeat, --reads and --read-samples must be positive");
  if (o.num > 100000000 || o.reads > 100000000 || o.sync_num > 100000000)
    fatal("--num, --reads and --sync-num: at most 100000000");
  if (o.read_envs <= 0) o.read_envs = 3 * o.repeat;
  // The shim finds the real library through TRLMDB_REAL_LMDB (else its
  // built-in path): make it forward to the very library we compare with.
  if (const char *env = std::getenv("TRLMDB_REAL_LMDB"); env && *env && !real_given)
    o.real_path = env;
  setenv("TRLMDB_REAL_LMDB", o.real_path.c_str(), 1);
  return o;
}

// ---------------------------------------------------------------------------
// Data: fixed-seed keys and values, identical for both libraries.

struct Xoshiro256 {
  uint64_t s[4];
  explicit Xoshiro256(uint64_t seed) {
    for (auto &w : s) {  // splitmix64
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      w = z ^ (z >> 31);
    }
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
  }
  uint64_t below(uint64_t n) { return next() % n; }
};

constexpr size_t kKeySize = 16;
constexpr size_t kValueSize = 100;

// n keys of 16 random bytes, contiguous.
struct Keys {
  std::vector<unsigned char> bytes;
  size_t size() const { return bytes.size() / kKeySize; }
  MDB_val at(size_t i) const {
    return MDB_val{kKeySize, const_cast<unsigned char *>(&bytes[i * kKeySize])};
  }
};

Keys make_keys(uint64_t n, uint64_t seed) {
  Keys k;
  k.bytes.resize(n * kKeySize);
  Xoshiro256 rng(seed);
  for (size_t i = 0; i < k.bytes.size(); i += 8) {
    uint64_t w = rng.next();
    std::memcpy(&k.bytes[i], &w, 8);
  }
  return k;
}

// The same keys in another random order (Fisher-Yates), contiguous so the
// harness itself reads them sequentially.
Keys shuffled(const Keys &in, uint64_t seed) {
  std::vector<uint32_t> order(in.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = static_cast<uint32_t>(i);
  Xoshiro256 rng(seed);
  for (size_t i = order.size(); i > 1; i--) std::swap(order[i - 1], order[rng.below(i)]);
  Keys out;
  out.bytes.resize(in.bytes.size());
  for (size_t i = 0; i < order.size(); i++)
    std::memcpy(&out.bytes[i * kKeySize], &in.bytes[order[i] * kKeySize], kKeySize);
  return out;
}

// Values: 100-byte windows into a random buffer (db_bench's RandomGenerator).
struct Values {
  std::vector<unsigned char> buf;
  explicit Values(uint64_t seed) : buf(1 << 20) {
    Xoshiro256 rng(seed);
    for (size_t i = 0; i < buf.size(); i += 8) {
      uint64_t w = rng.next();
      std::memcpy(&buf[i], &w, 8);
    }
  }
  MDB_val at(size_t i) const {
    size_t off = (i * 7919) % (buf.size() - kValueSize);
    return MDB_val{kValueSize, const_cast<unsigned char *>(&buf[off])};
  }
};

// ---------------------------------------------------------------------------
// Time.

struct Stamp {
  int64_t wall_ns, cpu_ns;
};

int64_t now_wall_ns() {
  timespec w{};
  clock_gettime(CLOCK_MONOTONIC, &w);
  return w.tv_sec * 1000000000LL + w.tv_nsec;
}

Stamp now() {
  timespec w{}, c{};
  clock_gettime(CLOCK_MONOTONIC, &w);
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c);  // the shim may add threads
  return {w.tv_sec * 1000000000LL + w.tv_nsec, c.tv_sec * 1000000000LL + c.tv_nsec};
}

// /proc/self/io's wchar: the bytes this process handed to write(2) and
// friends, i.e. what LMDB's commits write (pwrite, writev); -1: unknown.
// Read outside the timed intervals.
int64_t wchar_now() {
  int fd = open("/proc/self/io", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[512];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char *p = std::strstr(buf, "wchar:");
  return p ? std::strtoll(p + 6, nullptr, 10) : -1;
}

struct Sample {
  double wall_ns = 0, cpu_ns = 0;
  uint64_t ops = 0;
  uint64_t checksum = 0;
  double written = -1;  // bytes handed to the kernel, -1: not measured
};

Sample elapsed(const Stamp &a, const Stamp &b, uint64_t ops, uint64_t checksum) {
  return Sample{double(b.wall_ns - a.wall_ns), double(b.cpu_ns - a.cpu_ns), ops, checksum, -1};
}

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// ---------------------------------------------------------------------------
// Environments.

// Temporary environment directories. Live ones are also listed in a fixed
// table so that SIGINT/SIGTERM (timeout, ^C) removes them with
// async-signal-safe calls instead of leaving gigabytes in $TMPDIR.
struct LiveDir {
  char dir[512], data[528], lock[528];
  volatile sig_atomic_t used;
};
LiveDir g_live[16];

extern "C" void on_signal(int sig) {
  for (auto &d : g_live)
    if (d.used) {
      unlink(d.data);
      unlink(d.lock);
      rmdir(d.dir);
    }
  _exit(128 + sig);
}

class TempDir {
 public:
  explicit TempDir(const std::string &parent) {
    std::string tmpl = parent + "/trlmdb-bench-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) fatal("mkdtemp %s: %s", tmpl.c_str(), std::strerror(errno));
    path_ = buf.data();
    for (int i = 0; i < int(std::size(g_live)); i++)
      if (!g_live[i].used && path_.size() < sizeof g_live[i].dir) {
        std::snprintf(g_live[i].dir, sizeof g_live[i].dir, "%s", path_.c_str());
        std::snprintf(g_live[i].data, sizeof g_live[i].data, "%s/data.mdb", path_.c_str());
        std::snprintf(g_live[i].lock, sizeof g_live[i].lock, "%s/lock.mdb", path_.c_str());
        g_live[i].used = 1;
        slot_ = i;
        break;
      }
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
    if (slot_ >= 0) g_live[slot_].used = 0;
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  const std::string &path() const { return path_; }

 private:
  std::string path_;
  int slot_ = -1;
};

class Env {
 public:
  Env(const Api &api, const Options &o, const std::string &dir, unsigned flags) : api_(api) {
    check(api_, api_.env_create(&env_), "mdb_env_create");
    check(api_, api_.env_set_mapsize(env_, o.mapsize), "mdb_env_set_mapsize");
    if (!o.db.empty()) check(api_, api_.env_set_maxdbs(env_, 4), "mdb_env_set_maxdbs");
    check(api_, api_.env_open(env_, dir.c_str(), flags, 0644), "mdb_env_open");
    MDB_txn *txn = nullptr;
    check(api_, api_.txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin");
    int rc = api_.dbi_open(txn, o.db.empty() ? nullptr : o.db.c_str(), MDB_CREATE, &dbi_);
    if (rc) api_.txn_abort(txn);
    check(api_, rc, "mdb_dbi_open");
    check(api_, api_.txn_commit(txn), "mdb_txn_commit");
  }
  ~Env() {
    if (env_) api_.env_close(env_);
  }
  Env(const Env &) = delete;
  Env &operator=(const Env &) = delete;

  MDB_env *env() const { return env_; }
  MDB_dbi dbi() const { return dbi_; }

  size_t entries() const {
    MDB_txn *txn = nullptr;
    check(api_, api_.txn_begin(env_, nullptr, MDB_RDONLY, &txn), "mdb_txn_begin");
    MDB_stat st{};
    int rc = api_.stat(txn, dbi_, &st);
    api_.txn_abort(txn);
    check(api_, rc, "mdb_stat");
    return st.ms_entries;
  }

 private:
  const Api &api_;
  MDB_env *env_ = nullptr;
  MDB_dbi dbi_ = 0;
};

// ---------------------------------------------------------------------------
// The timed bodies. Each is the plain loop an application would write.

// One write transaction: a put of each of keys[begin, end).
void put_txn(const Api &a, const Env &e, const Keys &keys, const Values &vals, size_t begin,
             size_t end) {
  MDB_txn *txn = nullptr;
  check(a, a.txn_begin(e.env(), nullptr, 0, &txn), "mdb_txn_begin");
  for (size_t i = begin; i < end; i++) {
    MDB_val k = keys.at(i), v = vals.at(i);
    int rc = a.put(txn, e.dbi(), &k, &v, 0);
    if (rc) {
      a.txn_abort(txn);
      check(a, rc, "mdb_put");
    }
  }
  check(a, a.txn_commit(txn), "mdb_txn_commit");
}

// One write transaction: a delete of each of keys[begin, end).
void del_txn(const Api &a, const Env &e, const Keys &keys, size_t begin, size_t end) {
  MDB_txn *txn = nullptr;
  check(a, a.txn_begin(e.env(), nullptr, 0, &txn), "mdb_txn_begin");
  for (size_t i = begin; i < end; i++) {
    MDB_val k = keys.at(i);
    int rc = a.del(txn, e.dbi(), &k, nullptr);
    if (rc) {
      a.txn_abort(txn);
      check(a, rc, "mdb_del");
    }
  }
  check(a, a.txn_commit(txn), "mdb_txn_commit");
}

// n puts, `batch` per write transaction.
void put_batched(const Api &a, const Env &e, const Keys &keys, const Values &vals, size_t n,
                 size_t batch) {
  for (size_t i = 0; i < n; i += batch) put_txn(a, e, keys, vals, i, std::min(n, i + batch));
}

// One pass: n gets of keys[start...] (cyclically) in one read transaction;
// returns a checksum of what was read (the same for both libraries, or the
// work differed).
uint64_t get_pass(const Api &a, const Env &e, const Keys &keys, size_t start, size_t n) {
  MDB_txn *txn = nullptr;
  check(a, a.txn_begin(e.env(), nullptr, MDB_RDONLY, &txn), "mdb_txn_begin");
  uint64_t sum = 0;
  size_t nkeys = keys.size();
  for (size_t i = 0, j = start % nkeys; i < n; i++, j = (j + 1 == nkeys ? 0 : j + 1)) {
    MDB_val k = keys.at(j), v;
    int rc = a.get(txn, e.dbi(), &k, &v);
    if (rc) {
      a.txn_abort(txn);
      check(a, rc, "mdb_get");
    }
    const unsigned char *p = static_cast<const unsigned char *>(v.mv_data);
    sum += v.mv_size + p[0] + p[v.mv_size - 1];
  }
  a.txn_abort(txn);
  return sum;
}

// One full cursor scan in one read transaction; returns a checksum and sets
// *count to the number of entries seen.
uint64_t scan_pass(const Api &a, const Env &e, uint64_t *count) {
  MDB_txn *txn = nullptr;
  check(a, a.txn_begin(e.env(), nullptr, MDB_RDONLY, &txn), "mdb_txn_begin");
  MDB_cursor *cur = nullptr;
  int rc = a.cursor_open(txn, e.dbi(), &cur);
  if (rc) {
    a.txn_abort(txn);
    check(a, rc, "mdb_cursor_open");
  }
  uint64_t sum = 0, n = 0;
  MDB_val k, v;
  for (rc = a.cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = a.cursor_get(cur, &k, &v, MDB_NEXT)) {
    sum += static_cast<const unsigned char *>(k.mv_data)[0] +
           static_cast<const unsigned char *>(v.mv_data)[0] + v.mv_size;
    n++;
  }
  a.cursor_close(cur);
  a.txn_abort(txn);
  if (rc != MDB_NOTFOUND) check(a, rc, "mdb_cursor_get");
  *count = n;
  return sum;
}

// ---------------------------------------------------------------------------
// Runner.

struct Result {
  Result(std::string n, std::string w, uint64_t o, double t, bool wall = false)
      : name(std::move(n)), what(std::move(w)), ops(o), target(t), wall_only(wall) {}
  std::string name;
  std::string what;
  uint64_t ops = 0;   // per sample
  double target = 0;  // 0: no target
  // Judged by wall-clock time even under --clock=cpu: the cost is the wait
  // for the disk, which CPU time leaves out.
  bool wall_only = false;
  std::vector<Sample> real, shim;
};

struct Bench {
  Options o;
  Api real, shim;
  const Api *apis[2] = {&real, &shim};
  Keys keys, read_order, sync_keys;
  Values vals;
  // Filled environments for readrandom, scan and deleterandom (closed
  // templates: data.mdb is copied for each deleterandom run).
  std::unique_ptr<TempDir> templ[2];
  std::vector<Result> results;
  double file_bytes[2] = {0, 0};  // data.mdb after filling --num keys

  explicit Bench(Options opts) : o(std::move(opts)), vals(o.seed ^ 0x7a1e5) {}

  void progress(const char *fmt, ...) const {
    if (o.quiet) return;
    std::va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
    std::fflush(stderr);
  }

  static constexpr unsigned kBulkFlags = MDB_NOSYNC;

  // Records one round's pair of samples (and checks they did the same work).
  void record(Result &r, int round, int rounds, const Sample &a, const Sample &b) {
    if (a.checksum != b.checksum)
      throw std::runtime_error(r.name + ": the two libraries read different data (checksum " +
                               std::to_string(a.checksum) + " vs " + std::to_string(b.checksum) +
                               ")");
    r.real.push_back(a);
    r.shim.push_back(b);
    bool cpu = o.cpu_clock && !r.wall_only;
    double ra = cpu ? a.cpu_ns : a.wall_ns, rb = cpu ? b.cpu_ns : b.wall_ns;
    progress("  %-12s round %d/%d: lmdb %9.3f ms  trlmdb %9.3f ms  ratio %.3f\n", r.name.c_str(),
             round + 1, rounds, ra / 1e6, rb / 1e6, rb / ra);
  }

  // One round: `one(api)` for both libraries, the real one first in even
  // rounds and the shim first in odd ones.
  void alternate_round(Result &r, int round, int rounds,
                       const std::function<Sample(const Api &)> &one) {
    Sample s[2];
    for (int k = 0; k < 2; k++) {
      int which = (round % 2 == 0) ? k : 1 - k;
      s[which] = one(*apis[which]);
    }
    record(r, round, rounds, s[0], s[1]);
  }

  // Write workloads. Each of --repeat rounds opens a fresh environment per
  // library (empty, or a copy of the filled one when `filled`) and runs
  // transactions 0 .. txns-1 through both, in turns: the leading library runs
  // transactions from t on until the turn has lasted --turn-ms, then the other
  // runs the same ones; the lead alternates from turn to turn. A library's
  // sample is the sum of its turns. Both libraries thus meet the same machine
  // load and disk latency (run one after the other, the same 1000 durable
  // commits took 0.3 s or 5.5 s on the 2-CPU VM this was written on), while a
  // turn is long enough that the other library's cache footprint costs little
  // (switching after every transaction slowed the real library's fillbatch
  // by ~20%, and the shim's by less, compressing the ratio from 2.7 to 2.4).
  // A turn of 0 switches after every transaction.
  void write_workload(Result &r, unsigned env_flags, bool filled, size_t txns, double turn_ms,
                      const std::function<void(const Api &, const Env &, size_t)> &txn,
                      size_t entries_after) {
    const int64_t turn_ns = int64_t(turn_ms * 1e6);
    for (int round = 0; round < o.repeat; round++) {
      TempDir dirs[2] = {TempDir(o.dir), TempDir(o.dir)};
      if (filled)
        for (int i = 0; i < 2; i++) copy_durably(*templ[i], dirs[i]);
      Env envs[2] = {Env(real, o, dirs[0].path(), env_flags),
                     Env(shim, o, dirs[1].path(), env_flags)};
      if (filled)
        for (int i = 0; i < 2; i++) expect_entries(*apis[i], envs[i], o.num, "before " + r.name);
      Sample acc[2];
      for (auto &a : acc) a.written = 0;
      auto account = [&](int i, const Stamp &s0, const Stamp &s1, int64_t w0, int64_t w1) {
        acc[i].wall_ns += double(s1.wall_ns - s0.wall_ns);
        acc[i].cpu_ns += double(s1.cpu_ns - s0.cpu_ns);
        if (w0 < 0 || w1 < 0 || acc[i].written < 0)
          acc[i].written = -1;
        else
          acc[i].written += double(w1 - w0);
      };
      for (size_t t = 0, turn = 0; t < txns; turn++) {
        const int lead = int((turn + round) % 2), follow = 1 - lead;
        size_t end = t;
        int64_t w0 = wchar_now();
        Stamp s0 = now();
        do {
          txn(*apis[lead], envs[lead], end++);
        } while (end < txns && now_wall_ns() - s0.wall_ns < turn_ns);
        Stamp s1 = now();
        int64_t w1 = wchar_now();
        account(lead, s0, s1, w0, w1);
        w0 = wchar_now();
        s0 = now();
        for (size_t u = t; u < end; u++) txn(*apis[follow], envs[follow], u);
        s1 = now();
        w1 = wchar_now();
        account(follow, s0, s1, w0, w1);
        t = end;
      }
      for (int i = 0; i < 2; i++) {
        acc[i].ops = r.ops;
        expect_entries(*apis[i], envs[i], entries_after, "after " + r.name);
      }
      record(r, round, o.repeat, acc[0], acc[1]);
    }
  }

  void expect_entries(const Api &a, const Env &e, size_t want, const std::string &when) {
    size_t got = e.entries();
    if (got != want)
      throw std::runtime_error(a.label + ": " + when + ": mdb_stat counts " + std::to_string(got) +
                               " entries, expected " + std::to_string(want));
  }

  void fillbatch() {
    Result r("fillbatch", "random puts, " + std::to_string(o.batch) + "/txn, MDB_NOSYNC", o.num,
             2.0);
    size_t txns = (o.num + o.batch - 1) / o.batch;
    write_workload(
        r, kBulkFlags, false, txns, o.turn_ms,
        [&](const Api &a, const Env &e, size_t t) {
          put_txn(a, e, keys, vals, t * o.batch, std::min<size_t>(o.num, (t + 1) * o.batch));
        },
        o.num);
    results.push_back(std::move(r));
  }

  void fillsync() {
    // Turns of one transaction: a durable commit costs a disk flush, whose
    // latency on a shared VM drifts within seconds (200 ms turns gave rounds
    // of 1.5 to 2.1 where single-transaction turns gave 1.42 three times),
    // and next to a flush the other library's cache footprint is nothing.
    Result r("fillsync", "durable txns of 1 put, alternating (wall clock)", o.sync_num, 1.3, true);
    write_workload(
        r, 0, false, o.sync_num, 0,
        [&](const Api &a, const Env &e, size_t t) { put_txn(a, e, sync_keys, vals, t, t + 1); },
        o.sync_num);
    results.push_back(std::move(r));
  }

  void fillsyncbig() {
    ensure_templates();
    Result r("fillsyncbig", "as fillsync, into the filled database", o.sync_num, 0, true);
    write_workload(
        r, 0, true, o.sync_num, 0,
        [&](const Api &a, const Env &e, size_t t) { put_txn(a, e, sync_keys, vals, t, t + 1); },
        o.num + o.sync_num);
    results.push_back(std::move(r));
  }

  // The copy's pages go to the disk now, not in the first durable commit.
  static void copy_durably(const TempDir &from, const TempDir &to) {
    const fs::path dst = fs::path(to.path()) / "data.mdb";
    fs::copy_file(fs::path(from.path()) / "data.mdb", dst);
    int fd = ::open(dst.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0)
      throw std::runtime_error("fsync " + dst.string() + ": " + std::strerror(errno));
    ::close(fd);
  }

  // Untimed: one filled environment per library, closed.
  void ensure_templates() {
    for (int i = 0; i < 2; i++) {
      if (templ[i]) continue;
      const Api &a = *apis[i];
      progress("  setup: filling %" PRIu64 " keys through %s (untimed)\n", o.num, a.label.c_str());
      templ[i] = std::make_unique<TempDir>(o.dir);
      Env env(a, o, templ[i]->path(), kBulkFlags);
      put_batched(a, env, keys, vals, o.num, o.batch);
      expect_entries(a, env, o.num, "after setup fill");
    }
    for (int i = 0; i < 2; i++) {
      std::error_code ec;
      auto size = fs::file_size(fs::path(templ[i]->path()) / "data.mdb", ec);
      file_bytes[i] = ec ? 0 : double(size);
    }
  }

  // Read workloads, the noise-sensitive ones. --read-envs times: copy both
  // filled environments to fresh files (the page cache then gives them new
  // physical pages: with a single pair of files for the whole run, where
  // their pages happen to land biases even an A/A comparison by up to 10%),
  // open them side by side, run a full warm-up pass on each (page tables,
  // caches), then time --read-samples pairs of samples, the order alternating
  // from pair to pair. Short samples interleaved this way see the same
  // machine load on both sides. A sample is `passes` passes, `passes` set
  // once from a timed pass of the real library so that a sample lasts at
  // least --min-sample-ms. `pass(api, env, i)` runs pass number i and
  // returns (ops, checksum); pass i does the same work on both sides.
  using PassFn = std::function<std::pair<uint64_t, uint64_t>(const Api &, const Env &, uint64_t)>;
  void read_workload(Result &r, const std::function<void(const Api &, const Env &)> &warm,
                     const PassFn &pass) {
    ensure_templates();
    uint64_t passes = 0, pass_no = 0;
    int pairs = o.read_envs * o.read_samples, pair = 0;
    for (int copy = 0; copy < o.read_envs; copy++) {
      TempDir dirs[2] = {TempDir(o.dir), TempDir(o.dir)};
      for (int i = 0; i < 2; i++)
        fs::copy_file(fs::path(templ[i]->path()) / "data.mdb",
                      fs::path(dirs[i].path()) / "data.mdb");
      Env envs[2] = {Env(real, o, dirs[0].path(), kBulkFlags),
                     Env(shim, o, dirs[1].path(), kBulkFlags)};
      for (int i = 0; i < 2; i++) warm(*apis[i], envs[i]);
      if (passes == 0) {
        Stamp t0 = now();
        pass(real, envs[0], 0);
        Stamp t1 = now();
        double one_ns = double(t1.wall_ns - t0.wall_ns), want_ns = o.min_sample_ms * 1e6;
        passes = 1;
        if (one_ns > 0 && one_ns < want_ns)
          passes = std::min<uint64_t>(uint64_t(std::ceil(want_ns / one_ns)), 1000000);
        r.what += ", " + std::to_string(passes) + " pass" + (passes > 1 ? "es" : "") + "/sample";
      }
      for (int k = 0; k < o.read_samples; k++, pair++) {
        alternate_round(r, pair, pairs, [&](const Api &a) {
          const Env &e = envs[&a == &real ? 0 : 1];
          uint64_t ops = 0, sum = 0;
          Stamp t0 = now();
          for (uint64_t p = 0; p < passes; p++) {
            auto [n, s] = pass(a, e, pass_no + p);
            ops += n;
            sum += s;
          }
          Stamp t1 = now();
          r.ops = ops;
          return elapsed(t0, t1, ops, sum);
        });
        pass_no += passes;
      }
    }
  }

  // Pass i reads --reads keys of the shuffled order from i * --reads on,
  // cyclically, so successive samples walk over every key.
  void readrandom() {
    Result r("readrandom", "random mdb_get, " + std::to_string(o.reads) + " per read txn (pass)", 0,
             1.05);
    read_workload(
        r, [&](const Api &a, const Env &e) { get_pass(a, e, read_order, 0, o.num); },
        [&](const Api &a, const Env &e, uint64_t i) {
          return std::make_pair(uint64_t(o.reads),
                                get_pass(a, e, read_order, (i * o.reads) % o.num, o.reads));
        });
    results.push_back(std::move(r));
  }

  void scan() {
    Result r("scan", "full MDB_NEXT cursor scan, 1 read txn (pass)", 0, 1.05);
    auto one = [&](const Api &a, const Env &e, uint64_t) {
      uint64_t n = 0, sum = scan_pass(a, e, &n);
      if (n != o.num)
        throw std::runtime_error(a.label + ": scan saw " + std::to_string(n) +
                                 " entries, expected " + std::to_string(o.num));
      return std::make_pair(n, sum);
    };
    read_workload(
        r, [&](const Api &a, const Env &e) { one(a, e, 0); }, one);
    results.push_back(std::move(r));
  }

  void deleterandom() {
    ensure_templates();
    Result r("deleterandom", "random deletes, " + std::to_string(o.batch) + "/txn, MDB_NOSYNC",
             o.num, 0);
    size_t txns = (o.num + o.batch - 1) / o.batch;
    write_workload(
        r, kBulkFlags, true, txns, o.turn_ms,
        [&](const Api &a, const Env &e, size_t t) {
          del_txn(a, e, read_order, t * o.batch, std::min<size_t>(o.num, (t + 1) * o.batch));
        },
        0);
    results.push_back(std::move(r));
  }

  // A small untimed run of each library first: code pages, lazy set-up.
  void warm_up() {
    Keys k = make_keys(2000, o.seed + 99);
    for (const Api *a : apis) {
      TempDir dir(o.dir);
      Env env(*a, o, dir.path(), kBulkFlags);
      put_batched(*a, env, k, vals, k.size(), 500);
      get_pass(*a, env, k, 0, k.size());
      uint64_t n;
      scan_pass(*a, env, &n);
      for (size_t i = 0; i < k.size(); i += 500)
        del_txn(*a, env, k, i, std::min(k.size(), i + 500));
    }
  }

  void run() {
    keys = make_keys(o.num, o.seed);
    read_order = shuffled(keys, o.seed + 1);
    sync_keys = make_keys(o.sync_num, o.seed + 2);
    warm_up();
    for (const auto &b : o.benchmarks) {
      progress("%s:\n", b.c_str());
      if (b == "fillbatch")
        fillbatch();
      else if (b == "fillsync")
        fillsync();
      else if (b == "fillsyncbig")
        fillsyncbig();
      else if (b == "readrandom")
        readrandom();
      else if (b == "scan")
        scan();
      else if (b == "deleterandom")
        deleterandom();
    }
    templ[0].reset();
    templ[1].reset();
  }
};

// ---------------------------------------------------------------------------
// Report.

struct Row {
  const Result *r;
  double real_us, shim_us, ratio, cpu_ratio;
  bool has_target, pass;
  double real_wr = -1, shim_wr = -1;  // bytes written per op (median), -1: unknown
};

// Times per op are the medians per library; the ratio is the median of the
// per-round ratios (the two samples of a round ran back to back, under the
// same machine load), which is steadier than a ratio of medians.
Row summarize(const Result &r, bool cpu_clock) {
  cpu_clock = cpu_clock && !r.wall_only;
  auto med = [](const std::vector<Sample> &v, bool cpu) {
    std::vector<double> x;
    for (const auto &s : v) x.push_back(cpu ? s.cpu_ns : s.wall_ns);
    return median(x);
  };
  auto paired = [&](bool cpu) {
    std::vector<double> x;
    for (size_t i = 0; i < r.real.size() && i < r.shim.size(); i++)
      x.push_back(cpu ? r.shim[i].cpu_ns / r.real[i].cpu_ns
                      : r.shim[i].wall_ns / r.real[i].wall_ns);
    return median(x);
  };
  double ops = double(r.ops ? r.ops : 1);
  Row row{&r,
          med(r.real, cpu_clock) / ops / 1e3,
          med(r.shim, cpu_clock) / ops / 1e3,
          paired(cpu_clock),
          paired(true),
          r.target > 0,
          true};
  if (row.has_target) row.pass = row.ratio <= r.target;
  auto written = [&](const std::vector<Sample> &v) {
    std::vector<double> x;
    for (const auto &s : v)
      if (s.written >= 0) x.push_back(s.written / ops);
    return x.size() == v.size() && !x.empty() ? median(x) : -1.0;
  };
  row.real_wr = written(r.real);
  row.shim_wr = written(r.shim);
  return row;
}

std::string json_escape(const std::string &s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else
      out += c;
  }
  return out;
}

std::string json_num(double x) {
  if (!std::isfinite(x)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

int report(const Bench &b, const std::string &load_before, const std::string &load_after) {
  const Options &o = b.o;
  std::vector<Row> rows;
  for (const auto &r : b.results) rows.push_back(summarize(r, o.cpu_clock));
  int targets = 0, met = 0;
  for (const auto &row : rows)
    if (row.has_target) targets++, met += row.pass;
  bool all = met == targets;
  const char *shim_ver = b.shim.trlmdb_version ? b.shim.trlmdb_version(nullptr, nullptr, nullptr)
                                               : "not a trlmdb shim (A/A run)";
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

  if (o.json) {
    std::printf("{\n  \"real\": {\"path\": \"%s\", \"version\": \"%s\"},\n",
                json_escape(b.real.path).c_str(),
                json_escape(b.real.version(nullptr, nullptr, nullptr)).c_str());
    std::printf("  \"shim\": {\"path\": \"%s\", \"version\": \"%s\"},\n",
                json_escape(b.shim.path).c_str(), json_escape(shim_ver).c_str());
    std::printf(
        "  \"machine\": {\"cpus\": %ld, \"loadavg_before\": \"%s\", \"loadavg_after\": \"%s\", "
        "\"dir\": \"%s\", \"fs\": \"%s\"},\n",
        ncpu, load_before.c_str(), load_after.c_str(), json_escape(o.dir).c_str(),
        fs_type(o.dir).c_str());
    std::printf("  \"clock\": \"%s\", \"num\": %" PRIu64 ", \"sync_num\": %" PRIu64
                ", \"batch\": %" PRIu64 ", \"reads\": %" PRIu64
                ", \"repeat\": %d, \"read_samples\": %d,\n",
                o.cpu_clock ? "cpu" : "wall", o.num, o.sync_num, o.batch, o.reads, o.repeat,
                o.read_envs * o.read_samples);
    std::printf("  \"workloads\": [\n");
    for (size_t i = 0; i < rows.size(); i++) {
      const Row &row = rows[i];
      const Result &r = *row.r;
      auto list = [&](const std::vector<Sample> &v, bool cpu) {
        std::string s = "[";
        for (size_t j = 0; j < v.size(); j++)
          s += (j ? ", " : "") + json_num((cpu ? v[j].cpu_ns : v[j].wall_ns) / 1e3);
        return s + "]";
      };
      std::printf(
          "    {\"name\": \"%s\", \"what\": \"%s\", \"ops\": %" PRIu64
          ", \"real_us_per_op\": %s, \"shim_us_per_op\": %s, \"ratio\": %s, "
          "\"cpu_ratio\": %s, \"target\": %s, \"pass\": %s,\n"
          "     \"real_bytes_written_per_op\": %s, \"shim_bytes_written_per_op\": %s,\n"
          "     \"real_wall_us\": %s, \"shim_wall_us\": %s, \"real_cpu_us\": %s, "
          "\"shim_cpu_us\": %s}%s\n",
          r.name.c_str(), json_escape(r.what).c_str(), r.ops, json_num(row.real_us).c_str(),
          json_num(row.shim_us).c_str(), json_num(row.ratio).c_str(),
          json_num(row.cpu_ratio).c_str(), row.has_target ? json_num(r.target).c_str() : "null",
          row.has_target ? (row.pass ? "true" : "false") : "null",
          json_num(row.real_wr >= 0 ? row.real_wr : NAN).c_str(),
          json_num(row.shim_wr >= 0 ? row.shim_wr : NAN).c_str(), list(r.real, false).c_str(),
          list(r.shim, false).c_str(), list(r.real, true).c_str(), list(r.shim, true).c_str(),
          i + 1 < rows.size() ? "," : "");
    }
    std::printf("  ],\n");
    if (b.file_bytes[0] > 0 && b.file_bytes[1] > 0)
      std::printf("  \"space\": {\"keys\": %" PRIu64
                  ", \"real_bytes\": %.0f, \"shim_bytes\": %.0f},\n",
                  o.num, b.file_bytes[0], b.file_bytes[1]);
    std::printf("  \"targets\": %d, \"met\": %d, \"pass\": %s\n}\n", targets, met,
                all ? "true" : "false");
  } else {
    std::printf("trlmdb-bench: shim time / LMDB time, same process, same work\n");
    std::printf("  real  %s (%s)\n", b.real.path.c_str(),
                b.real.version(nullptr, nullptr, nullptr));
    std::printf("  shim  %s (%s)\n", b.shim.path.c_str(), shim_ver);
    std::printf("  dir   %s (%s)   cpus %ld   load avg before %s, after %s\n", o.dir.c_str(),
                fs_type(o.dir).c_str(), ncpu, load_before.c_str(), load_after.c_str());
    std::printf("  num %" PRIu64 ", sync-num %" PRIu64 ", reads %" PRIu64 ", batch %" PRIu64
                ", %d runs per write workload, %d samples per read workload, %s clock\n"
                "  ratio = median over rounds of shim/real; both libraries run in every round, "
                "interleaved\n\n",
                o.num, o.sync_num, o.reads, o.batch, o.repeat, o.read_envs * o.read_samples,
                o.cpu_clock ? "cpu" : "wall");
    std::printf("%-13s %10s %12s %12s %7s %7s %-6s %9s  %s\n", "workload", "ops", "real us/op",
                "shim us/op", "ratio", "target", "", "cpu ratio", "what");
    for (const auto &row : rows) {
      const Result &r = *row.r;
      char target[16] = "-";
      if (row.has_target) std::snprintf(target, sizeof target, "<=%.2f", r.target);
      std::printf("%-13s %10" PRIu64 " %12.3f %12.3f %7.3f %7s %-6s %9.3f  %s\n", r.name.c_str(),
                  r.ops, row.real_us, row.shim_us, row.ratio, target,
                  row.has_target ? (row.pass ? "PASS" : "MISS") : "", row.cpu_ratio,
                  r.what.c_str());
    }
    std::printf("\noverall: %s (%d of %d targets met)", all ? "PASS" : "MISS", met, targets);
    for (const auto &row : rows)
      if (row.r->name == "fillbatch")
        std::printf("; fillbatch %s the 1.5 aim", row.ratio <= 1.5 ? "reaches" : "misses");
    std::printf("\n");
    bool header = false;
    for (const auto &row : rows) {
      if (row.real_wr <= 0 || row.shim_wr < 0) continue;
      if (!header) std::printf("\nbytes handed to the kernel per op (commits' page writes):\n");
      header = true;
      std::printf("  %-13s real %9.0f  shim %9.0f  (x%.2f)\n", row.r->name.c_str(), row.real_wr,
                  row.shim_wr, row.shim_wr / row.real_wr);
    }
    if (b.file_bytes[0] > 0 && b.file_bytes[1] > 0)
      std::printf("\nspace: data.mdb after filling %" PRIu64
                  " keys: real %.1f MiB, shim %.1f MiB "
                  "(+%.0f bytes per key)\n",
                  o.num, b.file_bytes[0] / 1048576, b.file_bytes[1] / 1048576,
                  (b.file_bytes[1] - b.file_bytes[0]) / double(o.num));
    if (fs_type(o.dir) == "tmpfs")
      std::printf("note: %s is tmpfs, so fillsync measures no real fsync\n", o.dir.c_str());
  }
  return (o.check && !all) ? 1 : 0;
}

}  // namespace

int main(int argc, char **argv) {
  Options o = parse_options(argc, argv);
  if (o.pin_cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(o.pin_cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
      fatal("--cpu %d: %s", o.pin_cpu, std::strerror(errno));
  }
  for (const char *v : {"TRLMDB_LISTEN", "TRLMDB_PEERS", "TRLMDB_CONFIG"})
    if (const char *x = std::getenv(v); x && *x)
      std::fprintf(stderr,
                   "trlmdb-bench: warning: %s is set; the replicator may run and skew "
                   "the shim's figures\n",
                   v);

  Bench b(o);
  b.real.label = "lmdb";
  b.real.path = o.real_path;
  b.shim.label = "trlmdb";
  b.shim.path = o.shim_path;
  load_api(b.real);
  load_api(b.shim);
  if (b.real.trlmdb_version)
    fatal("--real %s exports trlmdb_version: that is the shim, not the real LMDB",
          b.real.path.c_str());
  if (!b.shim.trlmdb_version)
    std::fprintf(stderr,
                 "trlmdb-bench: warning: %s has no trlmdb_version; comparing LMDB with "
                 "itself (A/A run)\n",
                 b.shim.path.c_str());

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);

  std::string load_before = loadavg();
  if (double l1 = std::atof(load_before.c_str()); l1 > 0.5 * double(sysconf(_SC_NPROCESSORS_ONLN)))
    std::fprintf(stderr,
                 "trlmdb-bench: note: load average %s on %ld CPUs; wall-clock ratios will "
                 "be noisy (see the cpu ratio column, or --clock=cpu)\n",
                 load_before.c_str(), sysconf(_SC_NPROCESSORS_ONLN));
  try {
    b.run();
  } catch (const std::exception &e) {
    std::fprintf(stderr, "trlmdb-bench: %s\n", e.what());
    return 2;
  }
  std::string load_after = loadavg();
  return report(b, load_before, load_after);
}
