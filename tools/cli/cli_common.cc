#include "cli_common.h"

#include <sys/stat.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "format.h"

namespace trlmdb::cli {

void check(int rc, std::string_view what) {
  if (rc == 0) return;
  throw Error(std::string(what) + ": " + mdb_strerror(rc));
}

// --- command line ---------------------------------------------------------

uint64_t ParsedArgs::number(const std::string &name, uint64_t fallback) const {
  auto it = options.find(name);
  if (it == options.end()) return fallback;
  const std::string &s = it->second;
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 18) {
    throw UsageError(name + " needs a positive integer, got '" + s + "'");
  }
  uint64_t n = std::stoull(s);
  if (n == 0) throw UsageError(name + " must be greater than 0");
  return n;
}

ParsedArgs parse_args(int argc, char **argv, const std::vector<OptionSpec> &specs) {
  ParsedArgs out;
  bool options_done = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      out.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      out.help = true;
      continue;
    }
    std::string name = arg, value;
    bool inline_value = false;
    if (auto eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      inline_value = true;
    }
    const OptionSpec *spec = nullptr;
    for (const auto &s : specs) {
      if (s.name == name) spec = &s;
    }
    if (!spec) throw UsageError("unknown option '" + name + "'");
    if (spec->takes_value && !inline_value) {
      if (i + 1 >= argc) throw UsageError("option '" + name + "' needs a value");
      value = argv[++i];
    } else if (!spec->takes_value && inline_value) {
      throw UsageError("option '" + name + "' takes no value");
    }
    out.options[name] = value;
  }
  return out;
}

std::string single_env_arg(const ParsedArgs &args) {
  if (args.positional.empty()) throw UsageError("missing ENV (an LMDB environment directory)");
  if (args.positional.size() > 1) {
    throw UsageError("expected one ENV, got " + std::to_string(args.positional.size()) +
                     " arguments");
  }
  return args.positional.front();
}

// --- LMDB handles -----------------------------------------------------------

Env::Env(const std::string &path, bool read_only) : path_(path), read_only_(read_only) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    throw Error(escape(path) + ": " + std::strerror(errno));
  }
  unsigned flags = read_only ? MDB_RDONLY : 0;
  if (S_ISDIR(st.st_mode)) {
    // mdb_env_open would create a fresh environment in a writable directory.
    std::string data = path + "/data.mdb";
    if (::stat(data.c_str(), &st) != 0) {
      throw Error(escape(path) + ": not an LMDB environment (no data.mdb)");
    }
  } else if (S_ISREG(st.st_mode)) {
    flags |= MDB_NOSUBDIR;
  } else {
    throw Error(escape(path) + ": not a directory or a regular file");
  }
  check(mdb_env_create(&env_), "mdb_env_create");
  check(mdb_env_set_maxdbs(env_, kMaxDbs), "mdb_env_set_maxdbs");
  // Map size: LMDB uses the size recorded in the environment when it is larger
  // than the default, so existing environments are never shrunk.
  int rc = mdb_env_open(env_, path.c_str(), flags, 0644);
  if (rc != 0) {
    mdb_env_close(env_);
    env_ = nullptr;
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
      throw Error(escape(path) + ": not an LMDB environment (" + mdb_strerror(rc) + ")");
    }
    throw Error(escape(path) + ": cannot open the environment: " + mdb_strerror(rc));
  }
  int max_key = mdb_env_get_maxkeysize(env_);
  if (max_key > 0) max_key_size_ = static_cast<std::size_t>(max_key);
}

Env::~Env() {
  if (env_) mdb_env_close(env_);
}

Txn::Txn(const Env &env, bool read_only) {
  int rc = mdb_txn_begin(env.get(), nullptr, read_only ? MDB_RDONLY : 0, &txn_);
  if (rc == MDB_MAP_RESIZED) {
    // Another process grew the map: adopt its size (legal here, the tools
    // never hold two transactions at once) and try again.
    rc = mdb_env_set_mapsize(env.get(), 0);
    if (rc == 0) rc = mdb_txn_begin(env.get(), nullptr, read_only ? MDB_RDONLY : 0, &txn_);
  }
  if (rc) txn_ = nullptr;
  check(rc, read_only ? "cannot begin a read transaction" : "cannot begin a write transaction");
}

Txn::~Txn() { abort(); }

int Txn::commit() {
  MDB_txn *t = txn_;
  txn_ = nullptr;
  return t ? mdb_txn_commit(t) : EINVAL;
}

void Txn::abort() {
  if (txn_) mdb_txn_abort(txn_);
  txn_ = nullptr;
}

Cursor::Cursor(MDB_txn *txn, MDB_dbi dbi) {
  check(mdb_cursor_open(txn, dbi, &cur_), "mdb_cursor_open");
}

Cursor::~Cursor() {
  if (cur_) mdb_cursor_close(cur_);
}

bool Cursor::get(MDB_val *key, MDB_val *data, MDB_cursor_op op) {
  int rc = mdb_cursor_get(cur_, key, data, op);
  if (rc == MDB_NOTFOUND) return false;
  check(rc, "mdb_cursor_get");
  return true;
}

std::optional<std::string_view> lookup(MDB_txn *txn, MDB_dbi dbi, std::string_view key) {
  MDB_val k = as_val(key), v;
  int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  check(rc, "mdb_get");
  return as_sv(v);
}

// --- formatting -------------------------------------------------------------

std::string escape(std::string_view bytes, std::size_t max_bytes) {
  std::string out = "\"";
  std::size_t n = bytes.size() > max_bytes ? max_bytes : bytes.size();
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(bytes[i]);
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          out.push_back(static_cast<char>(c));
        } else {
          char buf[5];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        }
    }
  }
  out += "\"";
  if (n < bytes.size()) out += "...(" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

std::string db_label(std::string_view name) {
  return name.empty() ? "main database" : "database " + escape(name);
}

std::string db_flags_string(unsigned flags) {
  static const std::pair<unsigned, const char *> kNames[] = {
      {MDB_REVERSEKEY, "REVERSEKEY"}, {MDB_DUPSORT, "DUPSORT"},
      {MDB_INTEGERKEY, "INTEGERKEY"}, {MDB_DUPFIXED, "DUPFIXED"},
      {MDB_INTEGERDUP, "INTEGERDUP"}, {MDB_REVERSEDUP, "REVERSEDUP"},
  };
  std::string out;
  for (const auto &[bit, name] : kNames) {
    if (flags & bit) {
      if (!out.empty()) out += '|';
      out += name;
    }
  }
  return out.empty() ? "-" : out;
}

std::string format_clock(uint64_t t) {
  time_t secs = static_cast<time_t>(t >> 32);
  uint64_t nanos = ((t & 0xffffffffu) * 1000000000u) >> 32;
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09" PRIu64 "Z", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, nanos);
  return buf;
}

std::string hex(const unsigned char *data, std::size_t size) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 15]);
  }
  return out;
}

std::string describe_ts_bytes(std::string_view bytes) {
  Ts ts;
  if (parse_ts(bytes, &ts)) return format_clock(ts.time) + " " + format_ts(ts);
  return "0x" + hex(reinterpret_cast<const unsigned char *>(bytes.data()), bytes.size()) + ", " +
         std::to_string(bytes.size()) + " bytes";
}

}  // namespace trlmdb::cli
