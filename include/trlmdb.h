/** @file trlmdb.h
 *  @brief trlmdb extension API.
 *
 *  libtrlmdb exports the whole LMDB C API (see the system's lmdb.h) and these
 *  `trlmdb_*` functions. Every change made through the LMDB API is stamped with
 *  an extended timestamp (DESIGN.md section 1) in the same transaction.
 *
 *  All functions are safe to call from any thread. None of them prints.
 */
#ifndef TRLMDB_H
#define TRLMDB_H

#include <lmdb.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Size in bytes of an extended timestamp. */
#define TRLMDB_TS_SIZE 12

/** @brief Version of trlmdb (not of LMDB: mdb_version() reports that).
 *  @param[out] major, minor, patch  may be NULL.
 *  @return a static string such as "trlmdb 0.1.0". */
const char *trlmdb_version(int *major, int *minor, int *patch);

/** @brief The node word of an open environment (LSB always 0).
 *  @return 0 on success; MDB_NOTFOUND if nothing was ever written to the
 *  environment through trlmdb (the node word is created by the first write
 *  transaction); EINVAL if env or node is NULL, or env is not open read-write
 *  through the shim. */
int trlmdb_env_node(MDB_env *env, uint32_t *node);

/** @brief The extended timestamp of the last change committed through this
 *  process on env (12 bytes, big-endian, DESIGN.md section 1).
 *  @return 0 on success; MDB_NOTFOUND if this process committed no change yet;
 *  EINVAL if env or ts is NULL. */
int trlmdb_last_commit_ts(MDB_env *env, unsigned char ts[TRLMDB_TS_SIZE]);

#ifdef __cplusplus
}
#endif

#endif /* TRLMDB_H */
