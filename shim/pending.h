// The xkeys a write transaction touched, kept in memory until commit so the
// bookkeeping is written once per key, sorted, with one timestamp each
// (DESIGN.md section 2). Appending is O(1); resolve() sorts and keeps the last
// operation recorded for each xkey.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace trlmdb {

enum class Op : uint8_t {
  kPut,      // the key exists after the change
  kDelete,   // the key is gone after the change
  kUnknown,  // a duplicate was removed: existence is checked at commit
};

class PendingSet {
 public:
  struct Entry {
    std::string_view xkey;
    MDB_dbi dbi;
    Op op;
    // Some record of the xkey was a deletion: for a database marker, the
    // database was dropped in the transaction even if created again after.
    bool deleted = false;
  };

  void add(MDB_dbi dbi, std::string_view dbname, std::string_view key, Op op);
  // Appends every record of `later` after ours (a committed child).
  void append(const PendingSet &later);
  // Every pending record of database `dbname` becomes a deletion (a drop).
  void mark_db_deleted(std::string_view dbname, PendingSet *into) const;

  bool empty() const { return records_.empty(); }
  std::size_t size() const { return records_.size(); }
  void clear();

  // Sorted by xkey, one entry per xkey (its last record). Views stay valid
  // until the set is changed.
  std::vector<Entry> resolve() const;

 private:
  struct Record {
    uint32_t offset;  // into arena_
    uint32_t size;
    MDB_dbi dbi;
    Op op;
  };
  std::string_view xkey_of(const Record &r) const { return {arena_.data() + r.offset, r.size}; }

  std::string arena_;
  std::vector<Record> records_;
};

}  // namespace trlmdb
