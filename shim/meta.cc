#include "meta.h"

#include <sys/random.h>

#include <string>

#include "real_lmdb.h"

namespace trlmdb {

namespace {
MDB_val as_val(std::string_view s) { return MDB_val{s.size(), const_cast<char *>(s.data())}; }
}  // namespace

int open_reserved(MDB_txn *txn, bool create, ReservedDbis *out) {
  const unsigned flags = create ? MDB_CREATE : 0;
  const std::string time(kTimeDb), recent(kRecentDb), meta(kMetaDb);
  int rc = real().mdb_dbi_open(txn, time.c_str(), flags, &out->time);
  if (rc == 0) rc = real().mdb_dbi_open(txn, recent.c_str(), flags, &out->recent);
  if (rc == 0) rc = real().mdb_dbi_open(txn, meta.c_str(), flags, &out->meta);
  return rc;
}

int meta_get_node(MDB_txn *txn, MDB_dbi meta, uint32_t *node) {
  MDB_val k = as_val(kMetaNodeKey), v;
  int rc = real().mdb_get(txn, meta, &k, &v);
  if (rc) return rc;
  if (v.mv_size != 4) return MDB_CORRUPTED;
  *node = get_be32(static_cast<unsigned char *>(v.mv_data)) & ~0xffu;
  return 0;
}

uint32_t random_node_word() {
  uint32_t r = 0;
  while ((r & ~0xffu) == 0) {
    if (getrandom(&r, sizeof r, 0) != sizeof r) r = 0;
  }
  return r & ~0xffu;
}

int meta_init_node(MDB_txn *txn, MDB_dbi meta, uint32_t preferred, uint32_t *node) {
  int rc = meta_get_node(txn, meta, node);
  if (rc != MDB_NOTFOUND) return rc;
  *node = preferred ? (preferred & ~0xffu) : random_node_word();
  unsigned char buf[4];
  put_be32(buf, *node);
  MDB_val k = as_val(kMetaNodeKey), v{sizeof buf, buf};
  return real().mdb_put(txn, meta, &k, &v, 0);
}

int meta_get_clock(MDB_txn *txn, MDB_dbi meta, uint64_t *t) {
  MDB_val k = as_val(kMetaClockKey), v;
  int rc = real().mdb_get(txn, meta, &k, &v);
  if (rc == MDB_NOTFOUND) {
    *t = 0;
    return 0;
  }
  if (rc) return rc;
  if (v.mv_size != 8) return MDB_CORRUPTED;
  *t = get_be64(static_cast<unsigned char *>(v.mv_data));
  return 0;
}

int meta_put_clock(MDB_txn *txn, MDB_dbi meta, uint64_t t) {
  unsigned char buf[8];
  put_be64(buf, t);
  MDB_val k = as_val(kMetaClockKey), v{sizeof buf, buf};
  return real().mdb_put(txn, meta, &k, &v, 0);
}

namespace {
std::string custom_compare_key(std::string_view dbname) {
  std::string k("cmp");
  k.push_back('\0');
  k.append(dbname);
  return k;
}
}  // namespace

int meta_has_custom_compare(MDB_txn *txn, MDB_dbi meta, std::string_view dbname, bool *yes) {
  const std::string key = custom_compare_key(dbname);
  MDB_val k = as_val(key), v;
  int rc = real().mdb_get(txn, meta, &k, &v);
  *yes = rc == 0;
  return rc == MDB_NOTFOUND ? 0 : rc;
}

int meta_put_custom_compare(MDB_txn *txn, MDB_dbi meta, std::string_view dbname) {
  const std::string key = custom_compare_key(dbname);
  MDB_val k = as_val(key), v{0, nullptr};
  return real().mdb_put(txn, meta, &k, &v, 0);
}

namespace {
std::string drop_key(std::string_view dbname) {
  std::string k("drop");
  k.push_back('\0');
  k.append(dbname);
  return k;
}
}  // namespace

int meta_get_drop(MDB_txn *txn, MDB_dbi meta, std::string_view dbname, std::optional<Ts> *ts) {
  const std::string key = drop_key(dbname);
  MDB_val k = as_val(key), v;
  ts->reset();
  int rc = real().mdb_get(txn, meta, &k, &v);
  if (rc == MDB_NOTFOUND) return 0;
  if (rc) return rc;
  Ts t;
  if (!parse_ts({static_cast<const char *>(v.mv_data), v.mv_size}, &t)) return MDB_CORRUPTED;
  *ts = t;
  return 0;
}

int meta_note_drop(MDB_txn *txn, MDB_dbi meta, std::string_view dbname, const Ts &ts) {
  std::optional<Ts> known;
  int rc = meta_get_drop(txn, meta, dbname, &known);
  // A malformed record is replaced.
  if (rc && rc != MDB_CORRUPTED) return rc;
  if (rc == 0 && known && *known >= ts) return 0;
  const std::string key = drop_key(dbname);
  unsigned char buf[kTsSize];
  encode_ts(ts, buf);
  MDB_val k = as_val(key), v{sizeof buf, buf};
  return real().mdb_put(txn, meta, &k, &v, 0);
}

int write_stamp(MDB_txn *txn, const ReservedDbis &dbis, std::string_view xkey, const Ts &ts) {
  unsigned char buf[kTsSize];
  encode_ts(ts, buf);
  MDB_val k = as_val(xkey), v{sizeof buf, buf};
  int rc = real().mdb_put(txn, dbis.time, &k, &v, 0);
  if (rc == 0) rc = real().mdb_put(txn, dbis.recent, &k, &v, 0);
  return rc;
}

}  // namespace trlmdb
