/* Self-test of the scenario driver: a library preloaded IN FRONT OF the shim
 * that flips one bit of the first byte of every value that mdb_get and
 * mdb_cursor_get return. The driver must report an output difference. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <lmdb.h>
#include <string.h>

static unsigned char buf[2][1 << 17];
static int which;

static void corrupt(MDB_val *d) {
  if (d && d->mv_size > 0 && d->mv_size <= sizeof buf[0]) {
    which ^= 1;
    memcpy(buf[which], d->mv_data, d->mv_size);
    buf[which][0] ^= 0x20;
    d->mv_data = buf[which];
  }
}

int mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data) {
  static int (*next)(MDB_txn *, MDB_dbi, MDB_val *, MDB_val *);
  if (!next) *(void **)&next = dlsym(RTLD_NEXT, "mdb_get");
  int rc = next(txn, dbi, key, data);
  if (rc == 0) corrupt(data);
  return rc;
}

int mdb_cursor_get(MDB_cursor *c, MDB_val *key, MDB_val *data, MDB_cursor_op op) {
  static int (*next)(MDB_cursor *, MDB_val *, MDB_val *, MDB_cursor_op);
  if (!next) *(void **)&next = dlsym(RTLD_NEXT, "mdb_cursor_get");
  int rc = next(c, key, data, op);
  if (rc == 0 && op != MDB_GET_MULTIPLE && op != MDB_NEXT_MULTIPLE && op != MDB_PREV_MULTIPLE)
    corrupt(data);
  return rc;
}
