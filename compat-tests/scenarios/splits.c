/* Scenario: page splits and merges.
 * Thousands of keys inserted in a scrambled order into a named database and
 * into the main database, values from 1 byte to 12 KB (overflow pages), then
 * most of them deleted (through mdb_del and through a cursor) so pages merge,
 * some re-inserted and overwritten with other sizes; the full contents are
 * checked after every phase (count, hash of every entry, both directions). */
#include "scen_common.h"

#define NKEYS 6000

static size_t value_size(unsigned i, unsigned gen) {
  unsigned h = (i * 2654435761u) ^ (gen * 40503u);
  if (h % 53 == 0) return 3000 + h % 9000; /* overflow pages */
  return 1 + h % 300;
}

static void make_value(unsigned char *buf, size_t n, unsigned i, unsigned gen) {
  scen_rng r = {((uint64_t)i << 20) ^ gen ^ 0x5deece66dull};
  for (size_t j = 0; j < n; j++) {
    if (j % 8 == 0) r.s = scen_rand(&r) | 1;
    buf[j] = (unsigned char)(r.s >> (8 * (j % 8)));
  }
}

static void make_key(char *kb, size_t n, unsigned i) {
  snprintf(kb, n, "key-%07u", i * 7919u % 1000003u);
}

/* The main database's record of the named database "split" holds page
 * numbers, which the shim may change: it is checked by its size only. */
static void hide_subdb_record(const MDB_val *k, MDB_val *d) {
  static const char placeholder[] = "<sub-database record>";
  if (k->mv_size == 5 && memcmp(k->mv_data, "split", 5) == 0 && d->mv_size == 48) {
    d->mv_data = (void *)placeholder;
    d->mv_size = sizeof placeholder - 1;
  }
}

/* Forward and backward walks must agree. */
static void check_all(MDB_env *env, MDB_dbi dbi, const char *label) {
  MDB_txn *txn;
  MDB_cursor *c;
  MDB_val k, d;
  size_t fwd = 0, back = 0, bytes = 0;
  uint32_t hf = SCEN_FNV_INIT, hb = SCEN_FNV_INIT;
  int rc;
  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  OK(mdb_cursor_open(txn, dbi, &c));
  for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
    hide_subdb_record(&k, &d);
    hf = scen_fnv(k.mv_data, k.mv_size, hf);
    hf = scen_fnv(d.mv_data, d.mv_size, hf);
    bytes += d.mv_size;
    if (fwd < 3 || fwd % 500 == 0) scen_pkv("sample", &k, &d);
    fwd++;
  }
  printf("%s forward: %s, %zu entries, %zu value bytes, hash %08x\n", label, scen_rcname(rc), fwd,
         bytes, hf);
  for (rc = mdb_cursor_get(c, &k, &d, MDB_LAST); rc == 0;
       rc = mdb_cursor_get(c, &k, &d, MDB_PREV)) {
    hide_subdb_record(&k, &d);
    hb = scen_fnv(k.mv_data, k.mv_size, hb);
    hb = scen_fnv(d.mv_data, d.mv_size, hb);
    back++;
  }
  printf("%s backward: %s, %zu entries, hash %08x\n", label, scen_rcname(rc), back, hb);
  mdb_cursor_close(c);
  scen_stat(txn, dbi, label);
  mdb_txn_abort(txn);
  if (fwd != back) exit(2);
}

static void run(MDB_env *env, MDB_dbi dbi, const char *label) {
  static unsigned char vbuf[13000];
  unsigned order[NKEYS];
  char kb[32];
  MDB_txn *txn;
  MDB_val k, d;
  scen_rng rng = {0x243f6a8885a308d3ull};
  char lab[64];

  for (unsigned i = 0; i < NKEYS; i++) order[i] = i;
  scen_shuffle(order, NKEYS, &rng);
  printf("== %s: insert %d keys\n", label, NKEYS);
  for (unsigned b = 0; b < NKEYS; b += 1000) {
    OK(mdb_txn_begin(env, NULL, 0, &txn));
    for (unsigned j = b; j < b + 1000; j++) {
      unsigned i = order[j];
      make_key(kb, sizeof kb, i);
      k = scen_sv(kb);
      d.mv_size = value_size(i, 0);
      make_value(vbuf, d.mv_size, i, 0);
      d.mv_data = vbuf;
      if (mdb_put(txn, dbi, &k, &d, MDB_NOOVERWRITE)) {
        printf("put %s failed\n", kb);
        exit(2);
      }
    }
    OK(mdb_txn_commit(txn));
  }
  snprintf(lab, sizeof lab, "%s after insert", label);
  check_all(env, dbi, lab);

  printf("== %s: delete 90%%\n", label);
  scen_shuffle(order, NKEYS, &rng);
  {
    unsigned deleted = 0, notfound = 0;
    for (unsigned b = 0; b < NKEYS; b += 1500) {
      MDB_cursor *c;
      OK(mdb_txn_begin(env, NULL, 0, &txn));
      OK(mdb_cursor_open(txn, dbi, &c));
      for (unsigned j = b; j < b + 1500; j++) {
        unsigned i = order[j];
        int rc;
        if (i % 10 == 0) continue;
        make_key(kb, sizeof kb, i);
        k = scen_sv(kb);
        if (j % 2) {
          rc = mdb_del(txn, dbi, &k, NULL);
        } else {
          rc = mdb_cursor_get(c, &k, &d, MDB_SET);
          if (rc == 0) rc = mdb_cursor_del(c, 0);
        }
        if (rc == 0)
          deleted++;
        else if (rc == MDB_NOTFOUND)
          notfound++;
        else
          exit(2);
        /* A second delete of the same key. */
        if (j % 97 == 0 && mdb_del(txn, dbi, &k, NULL) == MDB_NOTFOUND) notfound++;
      }
      mdb_cursor_close(c);
      OK(mdb_txn_commit(txn));
    }
    printf("deleted %u, not found %u\n", deleted, notfound);
  }
  snprintf(lab, sizeof lab, "%s after delete", label);
  check_all(env, dbi, lab);

  printf("== %s: re-insert and overwrite with other sizes\n", label);
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  for (unsigned i = 0; i < NKEYS; i += 3) {
    make_key(kb, sizeof kb, i);
    k = scen_sv(kb);
    d.mv_size = value_size(i, 1);
    make_value(vbuf, d.mv_size, i, 1);
    d.mv_data = vbuf;
    if (mdb_put(txn, dbi, &k, &d, 0)) exit(2);
  }
  OK(mdb_txn_commit(txn));
  snprintf(lab, sizeof lab, "%s after re-insert", label);
  check_all(env, dbi, lab);

  /* Delete a contiguous range with a cursor: whole pages go. */
  printf("== %s: delete a range with a cursor\n", label);
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  {
    MDB_cursor *c;
    int rc, n = 0;
    OK(mdb_cursor_open(txn, dbi, &c));
    k = scen_sv("key-0300000");
    rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE);
    while (rc == 0 && memcmp(k.mv_data, "key-0700000", 11) < 0) {
      if (mdb_cursor_del(c, 0)) exit(2);
      n++;
      rc = mdb_cursor_get(c, &k, &d, MDB_GET_CURRENT);
      if (rc == 0) continue;
      rc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
    }
    printf("range delete: %d deleted, stopped with %s\n", n, scen_rcname(rc));
    if (rc == 0) scen_pkv("stopped at", &k, NULL);
    mdb_cursor_close(c);
  }
  OK(mdb_txn_commit(txn));
  snprintf(lab, sizeof lab, "%s after range delete", label);
  check_all(env, dbi, lab);
}

int main(int argc, char **argv) {
  const char *dir = scen_dir(argc, argv);
  MDB_env *env = scen_env(dir, NULL, 4, (size_t)256 << 20, 0, NULL, 0);
  MDB_txn *txn;
  MDB_dbi named, main_dbi;

  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_dbi_open(txn, "split", MDB_CREATE, &named));
  OK(mdb_dbi_open(txn, NULL, 0, &main_dbi));
  OK(mdb_txn_commit(txn));
  run(env, named, "named");
  /* The main database also holds the records of the named databases. */
  run(env, main_dbi, "main");

  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_drop(txn, named, 0));
  OK(mdb_txn_commit(txn));
  check_all(env, named, "named after drop(0)");
  check_all(env, main_dbi, "main at end");
  mdb_env_close(env);
  printf("done\n");
  return 0;
}
