// Shared plumbing of the `trlmdb` command: exit codes, errors, option parsing,
// RAII wrappers for the real LMDB handles and byte-string formatting.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace trlmdb::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // the check ran and found problems
inline constexpr int kExitError = 2;   // usage or I/O error

// Plenty for every named database a program may have, plus the reserved ones.
inline constexpr unsigned kMaxDbs = 32767;

// The flags mdb_dbi_open persists for a database (the ones `digest` hashes).
inline constexpr unsigned kPersistentDbFlags =
    MDB_REVERSEKEY | MDB_DUPSORT | MDB_INTEGERKEY | MDB_DUPFIXED | MDB_INTEGERDUP | MDB_REVERSEDUP;

// An I/O or LMDB error: reported as "trlmdb CMD: message", exit 2.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A command-line mistake: reported with a hint to --help, exit 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws Error("what: <LMDB message>") unless rc is 0.
void check(int rc, std::string_view what);

// --- command line ---------------------------------------------------------

struct OptionSpec {
  std::string name;  // "--verbose"
  bool takes_value = false;
};

struct ParsedArgs {
  bool help = false;
  std::map<std::string, std::string> options;  // name -> value ("" for flags)
  std::vector<std::string> positional;

  bool has(const std::string &name) const { return options.count(name) != 0; }
  // The option's value as a positive integer; `fallback` when absent.
  uint64_t number(const std::string &name, uint64_t fallback) const;
};

// Accepts "--name", "--name value", "--name=value", "-h"/"--help" and "--".
// Throws UsageError for unknown options or missing values.
ParsedArgs parse_args(int argc, char **argv, const std::vector<OptionSpec> &specs);

// The single ENV argument of a subcommand (UsageError when missing or extra).
std::string single_env_arg(const ParsedArgs &args);

// --- LMDB handles -----------------------------------------------------------

class Env {
 public:
  // Opens the environment at `path`: a directory holding data.mdb, or the data
  // file itself (MDB_NOSUBDIR). Read-only environments can be read while other
  // processes write. Never creates an environment: throws Error when there is
  // none at `path`.
  Env(const std::string &path, bool read_only);
  ~Env();
  Env(const Env &) = delete;
  Env &operator=(const Env &) = delete;

  MDB_env *get() const { return env_; }
  const std::string &path() const { return path_; }
  bool read_only() const { return read_only_; }
  std::size_t max_key_size() const { return max_key_size_; }

 private:
  MDB_env *env_ = nullptr;
  std::string path_;
  bool read_only_;
  std::size_t max_key_size_ = 511;
};

class Txn {
 public:
  Txn(const Env &env, bool read_only);
  ~Txn();
  Txn(const Txn &) = delete;
  Txn &operator=(const Txn &) = delete;

  MDB_txn *get() const { return txn_; }
  // Returns the LMDB code; the handle is gone afterwards either way.
  int commit();
  void abort();

 private:
  MDB_txn *txn_ = nullptr;
};

class Cursor {
 public:
  Cursor(MDB_txn *txn, MDB_dbi dbi);
  ~Cursor();
  Cursor(const Cursor &) = delete;
  Cursor &operator=(const Cursor &) = delete;

  // MDB_NOTFOUND -> false; other errors throw.
  bool get(MDB_val *key, MDB_val *data, MDB_cursor_op op);
  MDB_cursor *raw() const { return cur_; }

 private:
  MDB_cursor *cur_ = nullptr;
};

inline std::string_view as_sv(const MDB_val &v) {
  return std::string_view(static_cast<const char *>(v.mv_data), v.mv_size);
}
inline MDB_val as_val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char *>(s.data())};
}

// mdb_get; nullopt for MDB_NOTFOUND, throws for other errors.
std::optional<std::string_view> lookup(MDB_txn *txn, MDB_dbi dbi, std::string_view key);

// --- formatting -------------------------------------------------------------

// `"text"` with \\, \", \t, \n, \r and \xHH escapes; longer input is cut at
// `max_bytes` and marked with the full length.
std::string escape(std::string_view bytes, std::size_t max_bytes = 128);
// "main database" or `database "name"`.
std::string db_label(std::string_view name);
// "DUPSORT|INTEGERKEY" or "-".
std::string db_flags_string(unsigned flags);
// "2024-05-01T12:34:56.123456789Z" for a seconds<<32|fraction time.
std::string format_clock(uint64_t t);
std::string hex(const unsigned char *data, std::size_t size);
// A Ts for human eyes: "<seconds>.<fraction> node 0xNNNNNN put|del".
std::string describe_ts_bytes(std::string_view bytes);

}  // namespace trlmdb::cli
