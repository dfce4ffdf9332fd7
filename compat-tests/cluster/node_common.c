#include "node_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

void answer(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  va_end(ap);
  fputc('\n', stdout);
  fflush(stdout);
}

void answer_err(int rc) { answer("ERR %d %s", rc, mdb_strerror(rc)); }

int open_env(const char *path, size_t mapsize, MDB_env **out) {
  mkdir(path, 0755); /* EEXIST is fine; anything else, mdb_env_open reports */
  MDB_env *e;
  int rc = mdb_env_create(&e);
  if (rc) return rc;
  rc = mdb_env_set_mapsize(e, mapsize);
  if (rc == 0) rc = mdb_env_set_maxdbs(e, 16);
  if (rc == 0) rc = mdb_env_open(e, path, 0, 0644);
  if (rc) {
    mdb_env_close(e);
    return rc;
  }
  *out = e;
  return 0;
}
