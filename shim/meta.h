// The reserved databases as seen from inside a transaction: opening them,
// the meta database (node word, clock high-water mark) and writing one stamp.
// All calls go to the real LMDB; they are shared by the shim and the tools.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <optional>
#include <string_view>

#include "format.h"

namespace trlmdb {

struct ReservedDbis {
  MDB_dbi time = 0;
  MDB_dbi recent = 0;
  MDB_dbi meta = 0;
};

// Opens the three reserved databases in txn, creating them when `create`.
// Returns an LMDB code (MDB_NOTFOUND when one is missing and !create).
int open_reserved(MDB_txn *txn, bool create, ReservedDbis *out);

// Node word with LSB 0. MDB_NOTFOUND when the environment has none yet.
int meta_get_node(MDB_txn *txn, MDB_dbi meta, uint32_t *node);
// Reads the node word, or creates one: `preferred` if non-zero, else random.
int meta_init_node(MDB_txn *txn, MDB_dbi meta, uint32_t preferred, uint32_t *node);
// Clock high-water mark (seconds<<32|fraction); 0 when absent.
int meta_get_clock(MDB_txn *txn, MDB_dbi meta, uint64_t *t);
int meta_put_clock(MDB_txn *txn, MDB_dbi meta, uint64_t t);

// Databases whose key or duplicate order comes from a comparator the program
// registers: key "cmp\0<dbname>" in the meta database, empty value.
int meta_has_custom_compare(MDB_txn *txn, MDB_dbi meta, std::string_view dbname, bool *yes);
int meta_put_custom_compare(MDB_txn *txn, MDB_dbi meta, std::string_view dbname);

// The newest mdb_drop(…, 1) of each database this node made or applied:
// key "drop\0<dbname>" in the meta database, the deletion's timestamp. The
// marker forgets it once the database is created again, yet every put older
// than it still loses (store.cc, Applier::key_put). *ts: nullopt when none.
int meta_get_drop(MDB_txn *txn, MDB_dbi meta, std::string_view dbname, std::optional<Ts> *ts);
// Records `ts` unless an equal or newer deletion is recorded.
int meta_note_drop(MDB_txn *txn, MDB_dbi meta, std::string_view dbname, const Ts &ts);

// A fresh random node word: upper 24 bits random and non-zero, LSB 0.
uint32_t random_node_word();

// Writes xkey -> ts into _trlmdb_time and _trlmdb_recent.
int write_stamp(MDB_txn *txn, const ReservedDbis &dbis, std::string_view xkey, const Ts &ts);

}  // namespace trlmdb
