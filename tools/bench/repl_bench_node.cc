// One node of trlmdb-repl-bench: a forked child that opens its environment
// through libtrlmdb (so the replicator runs in this process) and is driven by
// the parent over two pipes, one line per command and one line per answer
// (except `watch`, which answers twice: WATCHING at once, then the result).
//
//   (at start)                          -> READY <t_open_start> <t_open_end> <port> | ERR ...
//   status                              -> OK running port configured connected backlog
//                                             sent received applied
//   count                               -> OK <entries of the main database>
//   fill SEED FROM TO BATCH VERSION     -> OK t0 t1    puts keys [FROM,TO), BATCH per txn
//   change SEED N NNEW NUPD NDEL        -> OK t0 t1    one txn: NNEW new keys, NUPD
//                                                      updates, NDEL deletes (catch-up)
//   waitcount N TIMEOUT_MS POLL_US      -> OK t | TIMEOUT <count>
//   waitstate SEED N NNEW NUPD NDEL TIMEOUT_MS POLL_US
//                                       -> OK t | TIMEOUT <what>   (the state after `change`)
//   paced TAG N RATE FILE               -> OK t0 t1 behind   one-put commits at RATE/s; the
//                                          monotonic time after each commit returns goes to FILE
//   watch TAG N TIMEOUT_MS POLL_US FILE -> WATCHING, then OK t | TIMEOUT <seen>; the time each
//                                          key of `paced` became visible goes to FILE
//   sync MS                             -> OK <rc of trlmdb_repl_sync>
//   quit                                -> BYE (after mdb_env_close), exit 0
//
// Times are CLOCK_MONOTONIC nanoseconds. Errors answer "ERR <message>".

#include <errno.h>
#include <lmdb.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <trlmdb.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "repl_bench.h"

namespace rbench {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

namespace {

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void put_be64(unsigned char *p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<unsigned char>(v);
}

}  // namespace

void make_key(uint64_t seed, uint64_t i, unsigned char out[kKeySize]) {
  // The first half is a bijection of i (mix64 is invertible), so keys never
  // collide; the second half keeps the whole key random-looking.
  put_be64(out, mix64(i ^ mix64(seed)));
  put_be64(out + 8, mix64(i + 0x5851f42d4c957f2dull * (seed + 1)));
}

void make_value(uint64_t seed, uint64_t i, uint32_t version, unsigned char *out, size_t n) {
  uint64_t x = mix64(seed ^ mix64(i) ^ (uint64_t{version} << 48)) | 1;
  for (size_t k = 0; k < n; ++k) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[k] = static_cast<unsigned char>(x >> 32);
  }
}

uint64_t changed_index(uint64_t n, uint64_t m, uint64_t j) {
  const uint64_t stride = n / m;
  return j * stride + mix64(j) % stride;
}

namespace {

MDB_env *g_env;
MDB_dbi g_dbi;
int g_reply_fd = -1;
size_t g_value_size = 100;

void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void reply(const char *fmt, ...) {
  char buf[512];
  std::va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if (n > static_cast<int>(sizeof buf) - 2) n = sizeof buf - 2;
  buf[n++] = '\n';
  for (int off = 0; off < n;) {
    ssize_t w = write(g_reply_fd, buf + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) _exit(3);  // the parent is gone
    off += static_cast<int>(w);
  }
}

void reply_rc(const char *what, int rc) { reply("ERR %s: %s (%d)", what, mdb_strerror(rc), rc); }

void pause_us(uint64_t us) {
  if (us == 0) {
    sched_yield();
    return;
  }
  timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>(us % 1000000) * 1000};
  nanosleep(&ts, nullptr);
}

// A read transaction kept for polling: reset/renew is much cheaper than
// begin/abort, and a poll must not disturb what it measures.
class Reader {
 public:
  Reader() { rc_ = mdb_txn_begin(g_env, nullptr, MDB_RDONLY, &txn_); }
  ~Reader() {
    if (txn_) mdb_txn_abort(txn_);
  }
  int rc() const { return rc_; }
  MDB_txn *renew() {
    if (!fresh_) {
      mdb_txn_reset(txn_);
      if ((rc_ = mdb_txn_renew(txn_)) != 0) return nullptr;
    }
    fresh_ = false;
    return txn_;
  }

 private:
  MDB_txn *txn_ = nullptr;
  int rc_ = 0;
  bool fresh_ = true;
};

int count_entries(MDB_txn *txn, uint64_t *out) {
  MDB_stat st;
  int rc = mdb_stat(txn, g_dbi, &st);
  if (rc == 0) *out = st.ms_entries;
  return rc;
}

void latency_key(unsigned tag, uint64_t i, char out[kKeySize + 1]) {
  std::snprintf(out, kKeySize + 1, "L%06u%09" PRIu64, tag % 1000000, i % 1000000000);
}

bool write_times(const std::string &path, const std::vector<uint64_t> &t) {
  FILE *f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  bool ok = std::fwrite(t.data(), sizeof(uint64_t), t.size(), f) == t.size();
  return std::fclose(f) == 0 && ok;
}

void cmd_status() {
  TRLMDB_repl_status s;
  int rc = trlmdb_repl_status(g_env, &s);
  if (rc) return reply_rc("trlmdb_repl_status", rc);
  reply("OK %d %u %u %u %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64, s.running, s.listen_port,
        s.peers_configured, s.peers_connected, s.backlog, s.bytes_sent, s.bytes_received,
        s.changes_applied);
}

void cmd_count() {
  MDB_txn *txn;
  int rc = mdb_txn_begin(g_env, nullptr, MDB_RDONLY, &txn);
  if (rc) return reply_rc("mdb_txn_begin", rc);
  uint64_t n = 0;
  rc = count_entries(txn, &n);
  mdb_txn_abort(txn);
  if (rc) return reply_rc("mdb_stat", rc);
  reply("OK %" PRIu64, n);
}

void cmd_fill(uint64_t seed, uint64_t from, uint64_t to, uint64_t batch, uint32_t version) {
  std::vector<unsigned char> val(g_value_size);
  unsigned char key[kKeySize];
  if (batch == 0) batch = 1;
  const uint64_t t0 = now_ns();
  for (uint64_t i = from; i < to;) {
    MDB_txn *txn;
    int rc = mdb_txn_begin(g_env, nullptr, 0, &txn);
    if (rc) return reply_rc("mdb_txn_begin", rc);
    for (uint64_t end = std::min(to, i + batch); i < end; ++i) {
      make_key(seed, i, key);
      make_value(seed, i, version, val.data(), val.size());
      MDB_val k{kKeySize, key}, v{val.size(), val.data()};
      if ((rc = mdb_put(txn, g_dbi, &k, &v, 0)) != 0) {
        mdb_txn_abort(txn);
        return reply_rc("mdb_put", rc);
      }
    }
    if ((rc = mdb_txn_commit(txn)) != 0) return reply_rc("mdb_txn_commit", rc);
  }
  reply("OK %" PRIu64 " %" PRIu64, t0, now_ns());
}

void cmd_change(uint64_t seed, uint64_t n, uint64_t nnew, uint64_t nupd, uint64_t ndel) {
  if (nupd + ndel > n) return reply("ERR more changed keys than keys");
  std::vector<unsigned char> val(g_value_size);
  unsigned char key[kKeySize];
  const uint64_t t0 = now_ns();
  MDB_txn *txn;
  int rc = mdb_txn_begin(g_env, nullptr, 0, &txn);
  if (rc) return reply_rc("mdb_txn_begin", rc);
  auto put = [&](uint64_t i, uint32_t version) {
    make_key(seed, i, key);
    make_value(seed, i, version, val.data(), val.size());
    MDB_val k{kKeySize, key}, v{val.size(), val.data()};
    return mdb_put(txn, g_dbi, &k, &v, 0);
  };
  for (uint64_t i = n; rc == 0 && i < n + nnew; ++i) rc = put(i, 0);
  for (uint64_t j = 0; rc == 0 && j < nupd; ++j) rc = put(changed_index(n, nupd + ndel, j), 1);
  for (uint64_t j = nupd; rc == 0 && j < nupd + ndel; ++j) {
    make_key(seed, changed_index(n, nupd + ndel, j), key);
    MDB_val k{kKeySize, key};
    rc = mdb_del(txn, g_dbi, &k, nullptr);
  }
  if (rc) {
    mdb_txn_abort(txn);
    return reply_rc("change", rc);
  }
  if ((rc = mdb_txn_commit(txn)) != 0) return reply_rc("mdb_txn_commit", rc);
  reply("OK %" PRIu64 " %" PRIu64, t0, now_ns());
}

void cmd_waitcount(uint64_t want, uint64_t timeout_ms, uint64_t poll_us) {
  Reader r;
  if (r.rc()) return reply_rc("mdb_txn_begin", r.rc());
  const uint64_t deadline = now_ns() + timeout_ms * 1000000;
  uint64_t n = 0;
  for (;;) {
    MDB_txn *txn = r.renew();
    if (!txn) return reply_rc("mdb_txn_renew", r.rc());
    int rc = count_entries(txn, &n);
    if (rc) return reply_rc("mdb_stat", rc);
    const uint64_t t = now_ns();
    if (n == want) return reply("OK %" PRIu64, t);
    if (t >= deadline) return reply("TIMEOUT %" PRIu64, n);
    pause_us(poll_us);
  }
}

// Empty string when txn holds exactly the state `change` leaves; else what differs.
std::string state_difference(MDB_txn *txn, uint64_t seed, uint64_t n, uint64_t nnew, uint64_t nupd,
                             uint64_t ndel) {
  uint64_t count = 0;
  if (int rc = count_entries(txn, &count); rc) return std::string("mdb_stat: ") + mdb_strerror(rc);
  if (count != n + nnew - ndel) return "count " + std::to_string(count);
  std::vector<unsigned char> want(g_value_size);
  unsigned char key[kKeySize];
  auto holds = [&](uint64_t i, uint32_t version) {
    make_key(seed, i, key);
    make_value(seed, i, version, want.data(), want.size());
    MDB_val k{kKeySize, key}, v;
    return mdb_get(txn, g_dbi, &k, &v) == 0 && v.mv_size == want.size() &&
           std::memcmp(v.mv_data, want.data(), want.size()) == 0;
  };
  for (uint64_t i = n; i < n + nnew; ++i)
    if (!holds(i, 0)) return "new key " + std::to_string(i);
  for (uint64_t j = 0; j < nupd; ++j)
    if (!holds(changed_index(n, nupd + ndel, j), 1)) return "updated key #" + std::to_string(j);
  for (uint64_t j = nupd; j < nupd + ndel; ++j) {
    make_key(seed, changed_index(n, nupd + ndel, j), key);
    MDB_val k{kKeySize, key}, v;
    if (mdb_get(txn, g_dbi, &k, &v) != MDB_NOTFOUND) return "deleted key #" + std::to_string(j);
  }
  return "";
}

void cmd_waitstate(uint64_t seed, uint64_t n, uint64_t nnew, uint64_t nupd, uint64_t ndel,
                   uint64_t timeout_ms, uint64_t poll_us) {
  if (nupd + ndel > n) return reply("ERR more changed keys than keys");
  Reader r;
  if (r.rc()) return reply_rc("mdb_txn_begin", r.rc());
  const uint64_t deadline = now_ns() + timeout_ms * 1000000;
  for (;;) {
    MDB_txn *txn = r.renew();
    if (!txn) return reply_rc("mdb_txn_renew", r.rc());
    std::string diff = state_difference(txn, seed, n, nnew, nupd, ndel);
    const uint64_t t = now_ns();
    if (diff.empty()) return reply("OK %" PRIu64, t);
    if (t >= deadline) return reply("TIMEOUT %s", diff.c_str());
    pause_us(poll_us);
  }
}

void cmd_paced(unsigned tag, uint64_t n, uint64_t rate, const std::string &file) {
  if (rate == 0) return reply("ERR rate 0");
  std::vector<uint64_t> committed(n);
  std::vector<unsigned char> val(std::max<size_t>(g_value_size, 8));
  char key[kKeySize + 1];
  const uint64_t period = 1000000000 / rate;
  const uint64_t t0 = now_ns();
  uint64_t behind = 0;
  for (uint64_t i = 0; i < n; ++i) {
    // Absolute deadlines: a late commit does not shift the ones after it.
    const uint64_t due = t0 + i * period;
    uint64_t t = now_ns();
    if (t < due) {
      timespec ts{static_cast<time_t>(due / 1000000000), static_cast<long>(due % 1000000000)};
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
      }
    } else if (t > due + period) {
      ++behind;
    }
    latency_key(tag, i, key);
    make_value(tag, i, 0, val.data(), val.size());
    put_be64(val.data(), now_ns());  // for a reader's eyes only; the time used is below
    MDB_txn *txn;
    int rc = mdb_txn_begin(g_env, nullptr, 0, &txn);
    if (rc) return reply_rc("mdb_txn_begin", rc);
    MDB_val k{kKeySize, key}, v{g_value_size, val.data()};
    if ((rc = mdb_put(txn, g_dbi, &k, &v, 0)) != 0) {
      mdb_txn_abort(txn);
      return reply_rc("mdb_put", rc);
    }
    if ((rc = mdb_txn_commit(txn)) != 0) return reply_rc("mdb_txn_commit", rc);
    committed[i] = now_ns();
  }
  const uint64_t t1 = now_ns();
  if (!write_times(file, committed)) return reply("ERR cannot write %s", file.c_str());
  reply("OK %" PRIu64 " %" PRIu64 " %" PRIu64, t0, t1, behind);
}

void cmd_watch(unsigned tag, uint64_t n, uint64_t timeout_ms, uint64_t poll_us,
               const std::string &file) {
  Reader r;
  if (r.rc()) return reply_rc("mdb_txn_begin", r.rc());
  std::vector<uint64_t> visible(n);
  char key[kKeySize + 1];
  reply("WATCHING");
  const uint64_t deadline = now_ns() + timeout_ms * 1000000;
  uint64_t next = 0;
  for (uint64_t spins = 0; next < n; ++spins) {
    MDB_txn *txn = r.renew();
    if (!txn) return reply_rc("mdb_txn_renew", r.rc());
    // Every key found in this snapshot became visible no later than now; the
    // snapshot was taken a moment ago, so this errs on the late side.
    uint64_t seen_at = 0;
    for (; next < n; ++next) {
      latency_key(tag, next, key);
      MDB_val k{kKeySize, key}, v;
      int rc = mdb_get(txn, g_dbi, &k, &v);
      if (rc == MDB_NOTFOUND) break;
      if (rc) return reply_rc("mdb_get", rc);
      if (!seen_at) seen_at = now_ns();
      visible[next] = seen_at;
    }
    if (next == n) break;
    if ((spins & 255) == 0 && now_ns() >= deadline) return reply("TIMEOUT %" PRIu64, next);
    pause_us(poll_us);
  }
  if (!write_times(file, visible)) return reply("ERR cannot write %s", file.c_str());
  reply("OK %" PRIu64, now_ns());
}

// Splits at spaces; numbers are parsed by u().
std::vector<std::string> split(const std::string &line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\n')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\n') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

uint64_t u(const std::string &s) { return std::strtoull(s.c_str(), nullptr, 10); }

}  // namespace

void node_main(const NodeSpec &spec, int cmd_fd, int reply_fd) {
  g_reply_fd = reply_fd;
  g_value_size = spec.value_size;
  // The replicator reads these at mdb_env_open.
  setenv("TRLMDB_LISTEN", spec.listen.c_str(), 1);
  if (spec.peers.empty())
    unsetenv("TRLMDB_PEERS");
  else
    setenv("TRLMDB_PEERS", spec.peers.c_str(), 1);
  setenv("TRLMDB_SECRET", spec.secret.c_str(), 1);
  setenv("TRLMDB_LOG", spec.log.c_str(), 1);
  setenv("TRLMDB_NODE", spec.name.c_str(), 1);
  mkdir(spec.dir.c_str(), 0755);

  const uint64_t t_open = now_ns();
  int rc = mdb_env_create(&g_env);
  if (rc == 0) rc = mdb_env_set_mapsize(g_env, spec.mapsize);
  if (rc == 0) rc = mdb_env_set_maxdbs(g_env, 4);
  if (rc == 0) rc = mdb_env_open(g_env, spec.dir.c_str(), spec.sync ? 0 : MDB_NOSYNC, 0644);
  const uint64_t t_opened = now_ns();
  MDB_txn *txn = nullptr;
  if (rc == 0) rc = mdb_txn_begin(g_env, nullptr, MDB_RDONLY, &txn);
  if (rc == 0) rc = mdb_dbi_open(txn, nullptr, 0, &g_dbi);
  if (txn) mdb_txn_abort(txn);
  TRLMDB_repl_status st{};
  if (rc == 0) rc = trlmdb_repl_status(g_env, &st);
  if (rc) {
    reply_rc("opening the environment", rc);
    _exit(1);
  }
  reply("READY %" PRIu64 " %" PRIu64 " %u", t_open, t_opened, st.listen_port);

  FILE *in = fdopen(cmd_fd, "r");
  char *line = nullptr;
  size_t cap = 0;
  while (in && getline(&line, &cap, in) > 0) {
    std::vector<std::string> a = split(line);
    const std::string cmd = a.empty() ? "" : a[0];
    auto need = [&](size_t n) {
      if (a.size() == n + 1) return true;
      reply("ERR %s needs %zu arguments", cmd.c_str(), n);
      return false;
    };
    if (cmd == "quit") break;
    if (cmd == "status") {
      cmd_status();
    } else if (cmd == "count") {
      cmd_count();
    } else if (cmd == "fill") {
      if (need(5)) cmd_fill(u(a[1]), u(a[2]), u(a[3]), u(a[4]), static_cast<uint32_t>(u(a[5])));
    } else if (cmd == "change") {
      if (need(5)) cmd_change(u(a[1]), u(a[2]), u(a[3]), u(a[4]), u(a[5]));
    } else if (cmd == "waitcount") {
      if (need(3)) cmd_waitcount(u(a[1]), u(a[2]), u(a[3]));
    } else if (cmd == "waitstate") {
      if (need(7)) cmd_waitstate(u(a[1]), u(a[2]), u(a[3]), u(a[4]), u(a[5]), u(a[6]), u(a[7]));
    } else if (cmd == "paced") {
      if (need(4)) cmd_paced(static_cast<unsigned>(u(a[1])), u(a[2]), u(a[3]), a[4]);
    } else if (cmd == "watch") {
      if (need(5)) cmd_watch(static_cast<unsigned>(u(a[1])), u(a[2]), u(a[3]), u(a[4]), a[5]);
    } else if (cmd == "sync") {
      if (need(1)) reply("OK %d", trlmdb_repl_sync(g_env, static_cast<unsigned>(u(a[1]))));
    } else {
      reply("ERR unknown command '%s'", cmd.c_str());
    }
  }
  std::free(line);
  mdb_env_close(g_env);
  reply("BYE");
  _exit(0);
}

}  // namespace rbench
