/* Scenario: put flags, through mdb_put and mdb_cursor_put.
 * MDB_CURRENT (same size, other size, overflow value, unpositioned cursor, on
 * a DUPSORT database), MDB_NOOVERWRITE (returns the existing value),
 * MDB_NODUPDATA, MDB_APPEND and MDB_APPENDDUP (in and out of order),
 * MDB_RESERVE (small and overflow values, with NOOVERWRITE), empty values,
 * writes in a read-only transaction. (Size limits: keysize.c.) */
#include "scen_common.h"

static int put(MDB_txn *txn, MDB_dbi dbi, const char *k, const char *v, unsigned flags) {
  MDB_val key = scen_sv(k), data = scen_sv(v);
  int rc = mdb_put(txn, dbi, &key, &data, flags);
  printf("put \"%s\"=\"%s\" flags=0x%x = %s\n", k, v, flags, scen_rcname(rc));
  if (rc == MDB_KEYEXIST) scen_pkv("existing:", NULL, &data);
  return rc;
}

static int cput(MDB_cursor *c, const char *k, const char *v, unsigned flags) {
  MDB_val key = scen_sv(k), data = scen_sv(v);
  int rc = mdb_cursor_put(c, &key, &data, flags);
  printf("cursor_put \"%s\"=\"%s\" flags=0x%x = %s\n", k, v, flags, scen_rcname(rc));
  if (rc == MDB_KEYEXIST) scen_pkv("existing:", NULL, &data);
  return rc;
}

#define EXPECT(call, want)                                                          \
  do {                                                                              \
    int rc_ = (call);                                                               \
    if (rc_ != (want)) {                                                            \
      fflush(stdout);                                                               \
      fprintf(stderr, "line %d: got %s, expected %s\n", __LINE__, scen_rcname(rc_), \
              scen_rcname(want));                                                   \
      exit(2);                                                                      \
    }                                                                               \
  } while (0)

static void fill(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)((i * 31 + seed) & 0xff);
}

int main(int argc, char **argv) {
  const char *dir = scen_dir(argc, argv);
  MDB_env *env = scen_env(dir, NULL, 4, 0, 0, NULL, 0);
  MDB_txn *txn;
  MDB_dbi p, dd, ap;
  MDB_cursor *c;
  MDB_val k, d;
  char kb[64], vb[64];

  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_dbi_open(txn, "p", MDB_CREATE, &p));
  OK(mdb_dbi_open(txn, "d", MDB_CREATE | MDB_DUPSORT, &dd));
  OK(mdb_dbi_open(txn, "ap", MDB_CREATE, &ap));

  /* NOOVERWRITE. */
  EXPECT(put(txn, p, "alpha", "first", 0), 0);
  EXPECT(put(txn, p, "alpha", "second", MDB_NOOVERWRITE), MDB_KEYEXIST);
  EXPECT(put(txn, p, "alpha", "third", 0), 0);
  EXPECT(put(txn, p, "beta", "b", MDB_NOOVERWRITE), 0);
  EXPECT(put(txn, p, "empty", "", 0), 0);
  EXPECT(put(txn, p, "empty", "", MDB_NOOVERWRITE), MDB_KEYEXIST);

  /* MDB_CURRENT. */
  OK(mdb_cursor_open(txn, p, &c));
  d = scen_sv("x");
  k = scen_sv("alpha");
  CHECK(mdb_cursor_put(c, &k, &d, MDB_CURRENT), EINVAL);
  k = scen_sv("alpha");
  CGET(c, &k, &d, MDB_SET_KEY, 0);
  EXPECT(cput(c, "alpha", "THIRD", MDB_CURRENT), 0);
  CGET(c, &k, &d, MDB_GET_CURRENT, 0);
  EXPECT(cput(c, "alpha", "a much longer replacement value", MDB_CURRENT), 0);
  CGET(c, &k, &d, MDB_GET_CURRENT, 0);
  EXPECT(cput(c, "alpha", "s", MDB_CURRENT), 0);
  CGET(c, &k, &d, MDB_GET_CURRENT, 0);
  CGET(c, &k, &d, MDB_NEXT, 0);
  EXPECT(cput(c, "beta", "bb", MDB_CURRENT), 0);
  CGET(c, &k, &d, MDB_GET_CURRENT, 0);

  /* MDB_RESERVE: the caller writes the value into the returned space. */
  k = scen_sv("reserved");
  d.mv_size = 40;
  d.mv_data = NULL;
  OK(mdb_put(txn, p, &k, &d, MDB_RESERVE));
  printf("reserved %zu bytes\n", d.mv_size);
  memcpy(d.mv_data, "0123456789012345678901234567890123456789", 40);
  k = scen_sv("reserved");
  d.mv_size = 10;
  CHECK(mdb_put(txn, p, &k, &d, MDB_RESERVE | MDB_NOOVERWRITE), MDB_KEYEXIST);
  scen_pkv("existing:", NULL, &d);
  k = scen_sv("big-reserved");
  d.mv_size = 50000;
  OK(mdb_cursor_put(c, &k, &d, MDB_RESERVE));
  fill(d.mv_data, d.mv_size, 7);
  CGET(c, &k, &d, MDB_GET_CURRENT, 0);
  /* Replace an overflow value with MDB_CURRENT, larger then smaller. */
  {
    static unsigned char big[70000];
    fill(big, sizeof big, 11);
    d.mv_size = sizeof big;
    d.mv_data = big;
    k = scen_sv("big-reserved");
    OK(mdb_cursor_put(c, &k, &d, MDB_CURRENT));
    CGET(c, &k, &d, MDB_GET_CURRENT, 0);
    d.mv_size = 30000;
    d.mv_data = big + 5;
    OK(mdb_cursor_put(c, &k, &d, MDB_CURRENT));
    CGET(c, &k, &d, MDB_GET_CURRENT, 0);
    d.mv_size = 12;
    OK(mdb_cursor_put(c, &k, &d, MDB_CURRENT));
    CGET(c, &k, &d, MDB_GET_CURRENT, 0);
    /* MDB_CURRENT | MDB_RESERVE on an overflow value. */
    k = scen_sv("big2");
    d.mv_size = 9000;
    d.mv_data = big;
    OK(mdb_put(txn, p, &k, &d, 0));
    CGET(c, &k, &d, MDB_SET_KEY, 0);
    d.mv_size = 9000;
    OK(mdb_cursor_put(c, &k, &d, MDB_CURRENT | MDB_RESERVE));
    fill(d.mv_data, d.mv_size, 99);
    CGET(c, &k, &d, MDB_GET_CURRENT, 0);
  }
  /* A cursor put without flags moves the cursor to the new key. */
  EXPECT(cput(c, "gamma", "g", 0), 0);
  CGET(c, &k, &d, MDB_GET_CURRENT, 0);
  CGET(c, &k, &d, MDB_NEXT, 0);
  EXPECT(cput(c, "gamma", "g2", MDB_NOOVERWRITE), MDB_KEYEXIST);
  CGET(c, &k, &d, MDB_GET_CURRENT, 0);
  mdb_cursor_close(c);

  /* APPEND. */
  OK(mdb_cursor_open(txn, ap, &c));
  for (unsigned i = 0; i < 300; i++) {
    snprintf(kb, sizeof kb, "key%05u", i * 3);
    snprintf(vb, sizeof vb, "appended %u", i);
    EXPECT(i % 2 ? cput(c, kb, vb, MDB_APPEND) : put(txn, ap, kb, vb, MDB_APPEND), 0);
  }
  EXPECT(cput(c, "key00003", "out of order", MDB_APPEND), MDB_KEYEXIST);
  EXPECT(put(txn, ap, "key00897", "equal to last", MDB_APPEND), MDB_KEYEXIST);
  EXPECT(put(txn, ap, "key00898", "after last", MDB_APPEND), 0);
  EXPECT(put(txn, ap, "a", "before first", 0), 0);
  mdb_cursor_close(c);

  /* DUPSORT: NODUPDATA, APPENDDUP, CURRENT, NOOVERWRITE. */
  OK(mdb_cursor_open(txn, dd, &c));
  EXPECT(cput(c, "k", "m", 0), 0);
  EXPECT(cput(c, "k", "c", 0), 0);
  EXPECT(cput(c, "k", "x", 0), 0);
  EXPECT(cput(c, "k", "m", MDB_NODUPDATA), MDB_KEYEXIST);
  EXPECT(cput(c, "k", "n", MDB_NODUPDATA), 0);
  EXPECT(cput(c, "k", "m", 0), 0);
  EXPECT(cput(c, "k", "z", MDB_APPENDDUP), 0);
  EXPECT(cput(c, "k", "y", MDB_APPENDDUP), MDB_KEYEXIST);
  EXPECT(cput(c, "k", "z", MDB_APPENDDUP), MDB_KEYEXIST);
  EXPECT(cput(c, "l", "a", MDB_APPENDDUP), 0);
  EXPECT(cput(c, "l", "b", MDB_APPEND | MDB_APPENDDUP), MDB_KEYEXIST);
  EXPECT(cput(c, "m", "a", MDB_APPEND | MDB_APPENDDUP), 0);
  EXPECT(cput(c, "l", "a", MDB_APPEND | MDB_APPENDDUP), MDB_KEYEXIST);
  EXPECT(cput(c, "k", "q", MDB_APPEND), MDB_KEYEXIST);
  EXPECT(cput(c, "k", "anything", MDB_NOOVERWRITE), MDB_KEYEXIST);
  EXPECT(put(txn, dd, "k", "n", MDB_NODUPDATA), MDB_KEYEXIST);
  EXPECT(put(txn, dd, "k", "o", MDB_NODUPDATA), 0);
  EXPECT(put(txn, dd, "k", "zz", MDB_APPENDDUP), 0);
  /* MDB_CURRENT on a duplicate: the new value must be equal (LMDB does not
   * check it, so only an equal value is used here). */
  k = scen_sv("k");
  d = scen_sv("n");
  CGET(c, &k, &d, MDB_GET_BOTH, 0);
  EXPECT(cput(c, "k", "n", MDB_CURRENT), 0);
  CGET(c, &k, &d, MDB_GET_CURRENT, 0);
  CGET(c, &k, &d, MDB_NEXT_DUP, 0);
  mdb_cursor_close(c);
  scen_dump(txn, dd, "d", 0);
  OK(mdb_txn_commit(txn));

  /* Writes in a read-only transaction. */
  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  EXPECT(put(txn, p, "ro", "no", 0), EACCES);
  OK(mdb_cursor_open(txn, p, &c));
  EXPECT(cput(c, "ro", "no", 0), EACCES);
  k = scen_sv("alpha");
  CHECK(mdb_del(txn, p, &k, NULL), EACCES);
  CGET(c, &k, &d, MDB_FIRST, 0);
  CHECK(mdb_cursor_del(c, 0), EACCES);
  mdb_cursor_close(c);
  CHECK(mdb_drop(txn, p, 0), EACCES);
  scen_dump(txn, p, "p", 0);
  scen_dump(txn, ap, "ap", 1);
  scen_dump(txn, dd, "d", 0);
  scen_stat(txn, p, "p");
  scen_stat(txn, ap, "ap");
  scen_stat(txn, dd, "d");
  mdb_txn_abort(txn);

  /* Failed puts in a write transaction leave it usable. */
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  EXPECT(put(txn, p, "alpha", "no", MDB_NOOVERWRITE), MDB_KEYEXIST);
  EXPECT(put(txn, ap, "0", "no", MDB_APPEND), MDB_KEYEXIST);
  EXPECT(put(txn, p, "delta", "yes", 0), 0);
  OK(mdb_txn_commit(txn));
  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  scen_dump(txn, p, "p", 0);
  mdb_txn_abort(txn);
  mdb_env_close(env);
  printf("done\n");
  return 0;
}
