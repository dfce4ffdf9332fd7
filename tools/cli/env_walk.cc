#include "env_walk.h"

#include <algorithm>
#include <cstring>

#include "format.h"

namespace trlmdb::cli {

MDB_dbi open_main(MDB_txn *txn) {
  MDB_dbi dbi;
  check(mdb_dbi_open(txn, nullptr, 0, &dbi), "cannot open the main database");
  return dbi;
}

std::optional<UserDb> try_open_named(MDB_txn *txn, const std::string &name) {
  if (name.empty() || name.find('\0') != std::string::npos) return std::nullopt;
  MDB_dbi dbi;
  int rc = mdb_dbi_open(txn, name.c_str(), 0, &dbi);
  if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) return std::nullopt;
  if (rc == MDB_DBS_FULL) {
    throw Error("more than " + std::to_string(kMaxDbs) + " databases: cannot open " +
                db_label(name));
  }
  check(rc, "cannot open " + db_label(name));
  unsigned flags = 0;
  check(mdb_dbi_flags(txn, dbi, &flags), "mdb_dbi_flags");
  return UserDb{name, dbi, flags & kPersistentDbFlags};
}

Catalog Catalog::discover(MDB_txn *txn) {
  Catalog cat;
  UserDb main{"", open_main(txn), 0};
  check(mdb_dbi_flags(txn, main.dbi, &main.flags), "mdb_dbi_flags");
  main.flags &= kPersistentDbFlags;
  cat.user_.push_back(main);

  std::vector<UserDb> named;
  if (cat.main_allows_named()) {
    Cursor cur(txn, main.dbi);
    MDB_val k, v;
    for (bool ok = cur.get(&k, &v, MDB_FIRST); ok; ok = cur.get(&k, &v, MDB_NEXT_NODUP)) {
      std::string name(as_sv(k));
      std::optional<UserDb> db = try_open_named(txn, name);
      if (!db) continue;
      cat.subdbs_.insert(name);
      if (is_reserved_name(name)) {
        cat.reserved_.push_back(name);
        cat.reserved_dbis_.emplace(name, db->dbi);
      } else {
        named.push_back(std::move(*db));
      }
    }
  }
  // Byte order of names (std::string compares as unsigned char, like memcmp),
  // whatever order the main database uses.
  std::sort(named.begin(), named.end(),
            [](const UserDb &a, const UserDb &b) { return a.name < b.name; });
  for (auto &db : named) cat.user_.push_back(std::move(db));
  for (std::size_t i = 0; i < cat.user_.size(); ++i) cat.user_index_.emplace(cat.user_[i].name, i);
  return cat;
}

const UserDb *Catalog::find_user(std::string_view name) const {
  auto it = user_index_.find(name);
  return it == user_index_.end() ? nullptr : &user_[it->second];
}

std::optional<MDB_dbi> Catalog::reserved(std::string_view name) const {
  auto it = reserved_dbis_.find(name);
  if (it == reserved_dbis_.end()) return std::nullopt;
  return it->second;
}

namespace {

// Positions `cur` on the first key, or on the first key after `resume_after`.
bool position(Cursor &cur, const std::optional<std::string> &resume_after, MDB_val *k, MDB_val *v,
              MDB_cursor_op next_op) {
  if (!resume_after) return cur.get(k, v, MDB_FIRST);
  *k = as_val(*resume_after);
  if (!cur.get(k, v, MDB_SET_RANGE)) return false;
  if (as_sv(*k) == *resume_after) return cur.get(k, v, next_op);
  return true;
}

}  // namespace

std::size_t for_each_key(MDB_txn *txn, const Catalog &catalog, const UserDb &db,
                         const std::optional<std::string> &resume_after, const KeyFn &fn) {
  Cursor cur(txn, db.dbi);
  MDB_val k, v;
  std::size_t visited = 0;
  for (bool ok = position(cur, resume_after, &k, &v, MDB_NEXT_NODUP); ok;
       ok = cur.get(&k, &v, MDB_NEXT_NODUP)) {
    std::string_view key = as_sv(k);
    if (db.is_main() && catalog.is_subdb_record(key)) continue;
    ++visited;
    if (!fn(key)) break;
  }
  return visited;
}

std::size_t for_each_pair(MDB_txn *txn, MDB_dbi dbi, const std::optional<std::string> &resume_after,
                          const PairFn &fn) {
  Cursor cur(txn, dbi);
  MDB_val k, v;
  std::size_t visited = 0;
  for (bool ok = position(cur, resume_after, &k, &v, MDB_NEXT); ok;
       ok = cur.get(&k, &v, MDB_NEXT)) {
    ++visited;
    if (!fn(as_sv(k), as_sv(v))) break;
  }
  return visited;
}

bool drop_pending(MDB_txn *txn, const Catalog &catalog, const UserDb &db) {
  std::optional<MDB_dbi> time = catalog.reserved(kTimeDb);
  if (db.is_main() || !time) return false;
  std::optional<std::string_view> stamp = lookup(txn, *time, make_xkey(db.name, {}));
  Ts ts;
  if (!stamp || !parse_ts(*stamp, &ts) || !ts.is_delete()) return false;
  MDB_stat st;
  return mdb_stat(txn, db.dbi, &st) == 0 && st.ms_entries == 0;
}

bool key_exists(MDB_txn *txn, const Catalog &catalog, const UserDb &db, std::string_view key,
                std::size_t max_key_size) {
  if (key.empty() || key.size() > max_key_size) return false;
  if (db.is_main() && catalog.is_subdb_record(key)) return false;
  // INTEGERKEY keys are native unsigned ints or size_t; copy them so the
  // comparator reads an aligned value.
  alignas(8) unsigned char aligned[8];
  MDB_val k = as_val(key), v;
  if (db.flags & MDB_INTEGERKEY) {
    if (key.size() != sizeof(unsigned) && key.size() != sizeof(std::size_t)) return false;
    std::memcpy(aligned, key.data(), key.size());
    k.mv_data = aligned;
  }
  int rc = mdb_get(txn, db.dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return false;
  check(rc, "mdb_get in " + db_label(db.name));
  return true;
}

}  // namespace trlmdb::cli
