/* What the test node programs share (cluster/repl_node.c, chaos/chaos_node.c):
 * each is driven line by line on stdin by a Python harness and opens its
 * environments the same way. */
#ifndef TRLMDB_COMPAT_NODE_COMMON_H
#define TRLMDB_COMPAT_NODE_COMMON_H

#include <lmdb.h>
#include <stddef.h>

/* Prints one answer line on stdout and flushes it: the driver waits for
 * each line before it sends the next command. */
void answer(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* answer("ERR <rc> <mdb_strerror(rc)>"). */
void answer_err(int rc);

/* Opens path (a directory, created if missing; its parent must exist)
 * through libtrlmdb with maxdbs 16 and the given map size. Returns an LMDB
 * rc; on failure nothing is left open. */
int open_env(const char *path, size_t mapsize, MDB_env **out);

#endif
