// The databases of an environment as the tools see them: the user databases
// (the main database and every named one that is not reserved), the reserved
// `_trlmdb_*` ones, and iteration over the distinct keys of a user database.
//
// Named databases are found by iterating the main database and trying
// mdb_dbi_open on each key (LMDB answers MDB_INCOMPATIBLE for plain keys).
// A database a writer opened with a custom comparator is read in LMDB's
// default order for its flags: the tools cannot know the comparator, and
// they only rely on an order being consistent within one run.
#pragma once

#include <lmdb.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "cli_common.h"
#include "meta.h"

namespace trlmdb::cli {

struct UserDb {
  std::string name;  // empty for the main database
  MDB_dbi dbi = 0;
  unsigned flags = 0;  // mdb_dbi_flags & kPersistentDbFlags

  bool is_main() const { return name.empty(); }
  bool dupsort() const { return (flags & MDB_DUPSORT) != 0; }
};

class Catalog {
 public:
  // Reads the database list in txn (throws Error). The handles stay valid for
  // later transactions once txn commits (read-only transactions included).
  static Catalog discover(MDB_txn *txn);

  // Main database first, then the named ones in byte order of their names.
  const std::vector<UserDb> &user_dbs() const { return user_; }
  const UserDb *find_user(std::string_view name) const;
  const UserDb &main_db() const { return user_.front(); }

  // Reserved databases found (any name starting with "_trlmdb_").
  const std::vector<std::string> &reserved_names() const { return reserved_; }
  std::optional<MDB_dbi> reserved(std::string_view name) const;
  bool stamped() const { return reserved(kTimeDb).has_value(); }

  // True when `key` of the main database is the record of a named database
  // (user or reserved): such records are not user keys.
  bool is_subdb_record(std::string_view key) const {
    return !subdbs_.empty() && subdbs_.count(std::string(key)) != 0;
  }
  std::size_t subdb_count() const { return subdbs_.size(); }
  // LMDB refuses named databases beside a DUPSORT or INTEGERKEY main database.
  bool main_allows_named() const { return (main_db().flags & (MDB_DUPSORT | MDB_INTEGERKEY)) == 0; }

 private:
  std::vector<UserDb> user_;
  std::map<std::string, std::size_t, std::less<>> user_index_;
  std::vector<std::string> reserved_;
  std::map<std::string, MDB_dbi, std::less<>> reserved_dbis_;
  std::unordered_set<std::string> subdbs_;
};

// Opens the named database `name` in txn without creating it; nullopt when
// there is no such database (or `name` is a plain key of the main database).
std::optional<UserDb> try_open_named(MDB_txn *txn, const std::string &name);

// Opens the main database in txn (sets LMDB's comparator from its persisted
// flags) and returns its handle.
MDB_dbi open_main(MDB_txn *txn);

// Visits the distinct keys of `db` in LMDB order (one visit per key in a
// DUPSORT database), skipping the named-database records of the main one.
// Starts at the first key, or after `resume_after` when given. `fn` returns
// false to stop. Returns the number of keys visited.
using KeyFn = std::function<bool(std::string_view key)>;
std::size_t for_each_key(MDB_txn *txn, const Catalog &catalog, const UserDb &db,
                         const std::optional<std::string> &resume_after, const KeyFn &fn);

// Visits every (key, value) of a plain database (the reserved ones) from the
// first key or after `resume_after`.
using PairFn = std::function<bool(std::string_view key, std::string_view value)>;
std::size_t for_each_pair(MDB_txn *txn, MDB_dbi dbi, const std::optional<std::string> &resume_after,
                          const PairFn &fn);

// Whether `key` is in `db` (a DUPSORT key with any duplicate counts). Keys
// LMDB could never store there (empty, too long, wrong INTEGERKEY size, a
// named-database record in the main database) are reported absent.
// A named database that a replicated deletion left in place, empty, because
// the program on that node still held its handle (replicator/store.cc): its
// marker is a deletion. It counts as dropped.
bool drop_pending(MDB_txn *txn, const Catalog &catalog, const UserDb &db);

bool key_exists(MDB_txn *txn, const Catalog &catalog, const UserDb &db, std::string_view key,
                std::size_t max_key_size);

}  // namespace trlmdb::cli
