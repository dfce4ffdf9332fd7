#include "config.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <cerrno>
#include <cstdio>
#include <sstream>

extern char **environ;

namespace trlmdb::repl {

namespace {

// Config and secret files are small; a cap keeps a mistaken path (a device,
// a database file) from being slurped into memory.
constexpr size_t kMaxFileBytes = 1 << 20;
constexpr size_t kMaxLabelBytes = 255;
constexpr uint64_t kMaxTimeoutMs = 86400ull * 1000;

std::string trim(const std::string &s) {
  size_t b = 0, e = s.size();
  while (b < e && isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string quote(const std::string &s) { return "\"" + s + "\""; }

bool all_digits(const std::string &s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

bool has_control_chars(const std::string &s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

bool is_ipv6_literal(const std::string &s) {
  // A zone ("fe80::1%eth0") is legal in a bind/connect address.
  std::string addr = s.substr(0, s.find('%'));
  if (addr.size() != s.size() && addr.size() + 1 == s.size()) return false;
  in6_addr a;
  return inet_pton(AF_INET6, addr.c_str(), &a) == 1;
}

// Names are checked loosely (resolution happens later), but a string that can
// only be a mistyped address is rejected now rather than at connect time.
bool valid_host(const std::string &h, std::string *why) {
  if (h.empty()) {
    *why = "empty host";
    return false;
  }
  if (h.find(':') != std::string::npos) {
    if (is_ipv6_literal(h)) return true;
    *why = "not an IPv6 address";
    return false;
  }
  bool numeric = true;
  for (char c : h) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
      *why = "bad character in host name";
      return false;
    }
    if (!(c >= '0' && c <= '9') && c != '.') numeric = false;
  }
  if (numeric) {
    in_addr a;
    if (inet_pton(AF_INET, h.c_str(), &a) != 1) {
      *why = "not an IPv4 address";
      return false;
    }
  }
  return true;
}

bool parse_port(const std::string &s, bool allow_port0, const std::string &whole, uint16_t *port,
                std::string *error) {
  if (!all_digits(s) || s.size() > 5) {
    if (all_digits(s)) {
      *error = quote(whole) + ": port " + s + " is out of range (0..65535)";
    } else {
      *error = quote(whole) + " is not host:port";
    }
    return false;
  }
  unsigned long v = strtoul(s.c_str(), nullptr, 10);
  if (v > 65535) {
    *error = quote(whole) + ": port " + s + " is out of range (0..65535)";
    return false;
  }
  if (v == 0 && !allow_port0) {
    *error = quote(whole) + ": port 0 is only allowed for the listen address";
    return false;
  }
  *port = static_cast<uint16_t>(v);
  return true;
}

// Comma-separated list; every item must be non-empty after trimming, so that a
// stray comma is reported instead of silently shortening the list.
bool split_list(const std::string &s, std::vector<std::string> *out, std::string *error) {
  size_t start = 0;
  while (true) {
    size_t comma = s.find(',', start);
    std::string item =
        trim(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (item.empty()) {
      *error = "empty entry in list " + quote(s);
      return false;
    }
    out->push_back(item);
    if (comma == std::string::npos) return true;
    start = comma + 1;
  }
}

bool parse_timeout(const std::string &s, uint32_t *ms, std::string *error) {
  // Integer arithmetic: "2.3" must be exactly 2300 ms.
  size_t dot = s.find('.');
  std::string ip = s.substr(0, dot);
  std::string fp = dot == std::string::npos ? "" : s.substr(dot + 1);
  bool ok = all_digits(ip) && (dot == std::string::npos || all_digits(fp)) && ip.size() <= 9;
  if (!ok) {
    *error = quote(s) + " is not a number of seconds";
    return false;
  }
  uint64_t v = strtoull(ip.c_str(), nullptr, 10) * 1000;
  uint64_t scale = 100;
  for (size_t i = 0; i < fp.size() && i < 3; ++i, scale /= 10) v += (fp[i] - '0') * scale;
  if (v == 0 || v > kMaxTimeoutMs) {
    *error = quote(s) + " is out of range (0.001..86400 seconds)";
    return false;
  }
  *ms = static_cast<uint32_t>(v);
  return true;
}

bool parse_u32(const std::string &s, uint32_t *v, std::string *error) {
  if (!all_digits(s) || s.size() > 10 || strtoull(s.c_str(), nullptr, 10) > UINT32_MAX) {
    *error = quote(s) + " is not a number of milliseconds (0..4294967295)";
    return false;
  }
  *v = static_cast<uint32_t>(strtoull(s.c_str(), nullptr, 10));
  return true;
}

bool parse_level(const std::string &s, LogLevel *l, std::string *error) {
  static const std::pair<const char *, LogLevel> kLevels[] = {{"error", LogLevel::kError},
                                                              {"warn", LogLevel::kWarn},
                                                              {"info", LogLevel::kInfo},
                                                              {"debug", LogLevel::kDebug}};
  for (const auto &[word, level] : kLevels) {
    if (s == word) {
      *l = level;
      return true;
    }
  }
  *error = quote(s) + " is not a log level (error, warn, info or debug)";
  return false;
}

bool parse_label(const std::string &s, std::string *out, std::string *error) {
  if (s.size() > kMaxLabelBytes || has_control_chars(s)) {
    *error = quote(s) + " must be 1..255 printable bytes";
    return false;
  }
  *out = s;
  return true;
}

bool parse_peers(const std::string &s, std::vector<HostPort> *out, std::string *error) {
  std::vector<std::string> items;
  if (!split_list(s, &items, error)) return false;
  for (const auto &item : items) {
    HostPort hp;
    if (!parse_host_port(item, false, &hp, error)) return false;
    bool dup = false;
    for (const auto &p : *out) dup = dup || p == hp;
    if (!dup) out->push_back(hp);
  }
  return true;
}

bool parse_accept(const std::string &s, std::vector<std::string> *out, std::string *error) {
  std::vector<std::string> items;
  if (!split_list(s, &items, error)) return false;
  for (auto item : items) {
    if (item.size() > 2 && item.front() == '[' && item.back() == ']')
      item = item.substr(1, item.size() - 2);
    std::string why;
    if (!valid_host(item, &why)) {
      *error = quote(item) + " is not a host (" + why + ")";
      return false;
    }
    out->push_back(item);
  }
  return true;
}

enum class ReadResult { kOk, kMissing, kError };

ReadResult read_small_file(const std::string &path, std::string *out, std::string *error) {
  FILE *f = fopen(path.c_str(), "rb");
  if (!f) {
    int e = errno;
    *error = "cannot read " + quote(path) + ": " + strerror(e);
    return (e == ENOENT || e == ENOTDIR) ? ReadResult::kMissing : ReadResult::kError;
  }
  out->clear();
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
    out->append(buf, n);
    if (out->size() > kMaxFileBytes) {
      fclose(f);
      *error = "cannot read " + quote(path) + ": larger than 1 MB";
      return ReadResult::kError;
    }
  }
  // A directory opens fine with fopen on Linux; the read is what fails.
  bool failed = ferror(f);
  int e = errno;
  fclose(f);
  if (failed) {
    *error = "cannot read " + quote(path) + ": " + strerror(e);
    return ReadResult::kError;
  }
  return ReadResult::kOk;
}

// One source's settings. A key absent here leaves the decision to the next
// source; `where` remembers the prefix for messages about that key.
struct Layer {
  std::string name;  // "environment" or the file's path
  std::optional<HostPort> listen;
  std::string listen_where;
  std::optional<std::vector<HostPort>> peers;
  // Either a literal secret or a file still to be read (only the winner is).
  std::optional<std::string> secret, secret_file;
  std::string secret_where;
  std::optional<std::string> name_, node, cluster;
  std::optional<std::vector<std::string>> accept;
  std::optional<uint32_t> timeout_ms, max_skew_ms;
  std::optional<LogLevel> log;

  bool empty() const {
    return !listen && !peers && !secret && !secret_file && !name_ && !node && !cluster && !accept &&
           !timeout_ms && !max_skew_ms && !log;
  }
};

// Applies one value. `key` is the canonical (file) name; `where` is the
// message prefix without the trailing ": " ("TRLMDB_PEERS", "f.conf:3: peers").
bool set_key(Layer *L, const std::string &key, const std::string &value, const std::string &where,
             std::string *error) {
  std::string what;
  bool ok = true;
  if (key == "listen") {
    HostPort hp;
    ok = parse_host_port(value, true, &hp, &what);
    if (ok) {
      L->listen = hp;
      L->listen_where = where;
    }
  } else if (key == "peers") {
    if (!L->peers) L->peers.emplace();
    ok = parse_peers(value, &*L->peers, &what);
  } else if (key == "secret" || key == "secret_file") {
    if (L->secret || L->secret_file) {
      what = "give either secret or secret_file, not both";
      ok = false;
    } else if (value.empty()) {
      what = key == "secret" ? "empty secret" : "empty file name";
      ok = false;
    } else {
      (key == "secret" ? L->secret : L->secret_file) = value;
      L->secret_where = where;
    }
  } else if (key == "name" || key == "node" || key == "cluster") {
    std::string v;
    ok = parse_label(value, &v, &what);
    if (ok) (key == "name" ? L->name_ : key == "node" ? L->node : L->cluster) = v;
  } else if (key == "accept") {
    if (!L->accept) L->accept.emplace();
    ok = parse_accept(value, &*L->accept, &what);
  } else if (key == "timeout") {
    uint32_t v;
    ok = parse_timeout(value, &v, &what);
    if (ok) L->timeout_ms = v;
  } else if (key == "max_skew_ms") {
    uint32_t v;
    ok = parse_u32(value, &v, &what);
    if (ok) L->max_skew_ms = v;
  } else if (key == "log") {
    LogLevel v;
    ok = parse_level(value, &v, &what);
    if (ok) L->log = v;
  }
  if (!ok) *error = where + ": " + what;
  return ok;
}

struct EnvKey {
  const char *var;
  const char *key;
};
constexpr EnvKey kEnvKeys[] = {
    {"TRLMDB_LISTEN", "listen"},   {"TRLMDB_PEERS", "peers"},
    {"TRLMDB_SECRET", "secret"},   {"TRLMDB_SECRET_FILE", "secret_file"},
    {"TRLMDB_NAME", "name"},       {"TRLMDB_NODE", "node"},
    {"TRLMDB_CLUSTER", "cluster"}, {"TRLMDB_ACCEPT", "accept"},
    {"TRLMDB_TIMEOUT", "timeout"}, {"TRLMDB_MAX_SKEW_MS", "max_skew_ms"},
    {"TRLMDB_LOG", "log"},
};

bool env_layer(const std::map<std::string, std::string> &env, Layer *L, std::string *error) {
  L->name = "environment";
  for (const auto &[var, key] : kEnvKeys) {
    auto it = env.find(var);
    if (it == env.end()) continue;
    // Empty means unset (`TRLMDB_PEERS= prog`), except for a secret: there an
    // empty value is almost always a failed `$(cat ...)` and must not pass.
    bool is_secret = strcmp(key, "secret") == 0 || strcmp(key, "secret_file") == 0;
    if (it->second.empty() && !is_secret) continue;
    std::string value = is_secret && strcmp(key, "secret") == 0 ? it->second : trim(it->second);
    if (strcmp(key, "secret") == 0 && L->secret_file) {
      *error = std::string(var) + ": give either TRLMDB_SECRET or TRLMDB_SECRET_FILE, not both";
      return false;
    }
    if (strcmp(key, "secret_file") == 0 && L->secret) {
      *error = std::string(var) + ": give either TRLMDB_SECRET or TRLMDB_SECRET_FILE, not both";
      return false;
    }
    if (!set_key(L, key, value, var, error)) return false;
  }
  return true;
}

std::string dir_of(const std::string &path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// `missing_ok`: the implicit trlmdb.conf may be absent; a file named
// explicitly by TRLMDB_CONFIG may not.
bool file_layer(const std::string &path, bool missing_ok, const std::string &origin, Layer *L,
                std::string *error) {
  L->name = path;
  std::string text, what;
  ReadResult r = read_small_file(path, &text, &what);
  if (r == ReadResult::kMissing && missing_ok) return true;
  if (r != ReadResult::kOk) {
    *error = origin + ": " + what;
    return false;
  }
  std::map<std::string, int> seen;  // single-valued key -> line it was given on
  bool have_listen = false;
  std::optional<HostPort> port_listen;
  std::string port_where;
  std::istringstream in(text);
  std::string raw;
  for (int lineno = 1; std::getline(in, raw); ++lineno) {
    std::string line = trim(raw);
    if (line.empty() || line[0] == '#') continue;
    std::string at = path + ":" + std::to_string(lineno);
    size_t eq = line.find('=');
    if (eq == std::string::npos) {
      *error = at + ": expected name = value, got " + quote(line);
      return false;
    }
    std::string key = trim(line.substr(0, eq));
    std::string value = trim(line.substr(eq + 1));
    std::string where = at + ": " + key;
    static const char *kKnown[] = {"listen", "peers",   "secret", "secret_file", "name",
                                   "node",   "cluster", "accept", "timeout",     "max_skew_ms",
                                   "log",    "port",    "connect"};
    bool known = false;
    for (const char *k : kKnown) known = known || key == k;
    if (!known) {
      *error = at + ": " + quote(key) + ": unknown key";
      return false;
    }
    if (value.empty()) {
      *error = where + ": empty value";
      return false;
    }
    // List keys accumulate over lines (the original replicator's `connect`
    // could be repeated); any other key given twice is a mistake to report.
    bool is_list = key == "peers" || key == "connect" || key == "accept";
    if (!is_list) {
      auto [it, inserted] = seen.emplace(key, lineno);
      if (!inserted) {
        *error = where + ": given twice (also on line " + std::to_string(it->second) + ")";
        return false;
      }
    }
    if (key == "port") {
      uint16_t p;
      if (!parse_port(value, true, value, &p, &what)) {
        *error = where + ": " + what;
        return false;
      }
      port_listen = HostPort{"0.0.0.0", p};
      port_where = where;
      continue;
    }
    if (key == "secret_file" && value[0] != '/') value = dir_of(path) + "/" + value;
    if (!set_key(L, key == "connect" ? "peers" : key, value, where, error)) return false;
    if (key == "listen") have_listen = true;
  }
  // `port` is the original replicator's way to listen on every interface;
  // an explicit `listen` in the same file is more specific and wins.
  if (port_listen && !have_listen) {
    L->listen = port_listen;
    L->listen_where = port_where;
  }
  return true;
}

template <class T>
const Layer *pick(const std::vector<Layer> &layers, std::optional<T> Layer::*field) {
  for (const auto &L : layers)
    if (L.*field) return &L;
  return nullptr;
}

}  // namespace

std::string HostPort::str() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

bool parse_host_port(const std::string &s, bool allow_port0, HostPort *out, std::string *error) {
  const std::string bad = quote(s) + " is not host:port";
  HostPort hp;
  std::string port_str;
  if (all_digits(s)) {
    hp.host = "127.0.0.1";
    port_str = s;
  } else if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      *error = bad;
      return false;
    }
    hp.host = s.substr(1, close - 1);
    port_str = s.substr(close + 2);
    if (!is_ipv6_literal(hp.host)) {
      *error = bad + " (not an IPv6 address in brackets)";
      return false;
    }
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string::npos) {
      *error = bad;
      return false;
    }
    hp.host = s.substr(0, colon);
    port_str = s.substr(colon + 1);
    if (hp.host.empty()) {
      hp.host = "127.0.0.1";
    } else if (hp.host.find(':') != std::string::npos) {
      *error = bad + " (write IPv6 addresses in brackets, e.g. [::1]:7000)";
      return false;
    } else {
      std::string why;
      if (!valid_host(hp.host, &why)) {
        *error = bad + " (" + why + ")";
        return false;
      }
    }
  }
  if (!parse_port(port_str, allow_port0, s, &hp.port, error)) return false;
  *out = hp;
  return true;
}

bool is_loopback_host(const std::string &host) {
  if (strcasecmp(host.c_str(), "localhost") == 0) return true;
  in_addr a4;
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6;
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&a6)) return true;
    // ::ffff:127.x.y.z reaches the IPv4 loopback through a dual-stack socket.
    return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
  }
  return false;
}

std::string wire_name(const Config &cfg, const std::string &env_path) {
  if (!cfg.name.empty()) return cfg.name;
  auto last_component = [](std::string p) {
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    size_t slash = p.rfind('/');
    return slash == std::string::npos || p.size() == 1 ? p : p.substr(slash + 1);
  };
  std::string name = last_component(env_path);
  // "." or ".." name no directory that a peer could match; the real one does.
  if (name == "." || name == ".." || name.empty()) {
    char buf[PATH_MAX];
    if (realpath(env_path.empty() ? "." : env_path.c_str(), buf)) name = last_component(buf);
  }
  return name;
}

ConfigInputs inputs_from_process(const char *env_path, bool no_subdir) {
  ConfigInputs in;
  in.env_path = env_path ? env_path : "";
  in.no_subdir = no_subdir;
  for (char **e = environ; e && *e; ++e) {
    if (strncmp(*e, "TRLMDB_", 7) != 0) continue;
    const char *eq = strchr(*e, '=');
    if (!eq) continue;
    in.env.emplace(std::string(*e, eq - *e), std::string(eq + 1));
  }
  return in;
}

bool load_config(const ConfigInputs &in, Config *out, std::string *error) {
  *out = Config{};
  std::vector<Layer> layers(1);
  if (!env_layer(in.env, &layers[0], error)) return false;

  auto cfg_it = in.env.find("TRLMDB_CONFIG");
  if (cfg_it != in.env.end() && !cfg_it->second.empty()) {
    layers.emplace_back();
    if (!file_layer(cfg_it->second, false, "TRLMDB_CONFIG", &layers.back(), error)) return false;
  }
  if (!in.env_path.empty()) {
    // With MDB_NOSUBDIR the path is the data file itself; the settings sit
    // beside it under the same stem, as LMDB does with its "-lock" file.
    std::string implicit =
        in.no_subdir ? in.env_path + ".trlmdb.conf" : in.env_path + "/trlmdb.conf";
    layers.emplace_back();
    if (!file_layer(implicit, true, implicit, &layers.back(), error)) return false;
  }

  if (const Layer *L = pick(layers, &Layer::listen)) out->listen = L->listen;
  if (const Layer *L = pick(layers, &Layer::peers)) out->peers = *L->peers;
  if (const Layer *L = pick(layers, &Layer::name_)) out->name = *L->name_;
  if (const Layer *L = pick(layers, &Layer::node)) out->node = *L->node;
  if (const Layer *L = pick(layers, &Layer::cluster)) out->cluster = *L->cluster;
  if (const Layer *L = pick(layers, &Layer::accept)) out->accept = *L->accept;
  if (const Layer *L = pick(layers, &Layer::timeout_ms)) out->timeout_ms = *L->timeout_ms;
  if (const Layer *L = pick(layers, &Layer::max_skew_ms)) out->max_skew_ms = *L->max_skew_ms;
  if (const Layer *L = pick(layers, &Layer::log)) out->log = *L->log;

  // secret and secret_file are one setting: the first source giving either wins.
  for (const auto &L : layers) {
    if (L.secret) {
      out->secret = *L.secret;
    } else if (L.secret_file) {
      std::string text, what;
      if (read_small_file(*L.secret_file, &text, &what) != ReadResult::kOk) {
        *error = L.secret_where + ": " + what;
        return false;
      }
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
      if (text.empty()) {
        *error = L.secret_where + ": " + quote(*L.secret_file) + " is empty";
        return false;
      }
      out->secret = text;
    } else {
      continue;
    }
    out->has_secret = true;
    break;
  }

  for (const auto &L : layers) {
    if (L.empty()) continue;
    if (!out->source.empty()) out->source += ", ";
    out->source += L.name;
  }

  // Only an address to listen on or a peer to reach starts a replicator: a
  // secret or a log level alone (say, exported globally for a cluster) on an
  // environment that names no endpoint must not turn replication on.
  out->configured = out->listen.has_value() || !out->peers.empty();

  if (out->listen && !out->has_secret && !is_loopback_host(out->listen->host)) {
    *error = pick(layers, &Layer::listen)->listen_where + ": listening on " + out->listen->str() +
             " needs a cluster secret (TRLMDB_SECRET or TRLMDB_SECRET_FILE)";
    return false;
  }
  return true;
}

}  // namespace trlmdb::repl
