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

/** @brief The extended timestamp of a key (or, with an empty key, of the
 *  database's marker) as txn sees it: the stamp of its last change, put or
 *  delete (the op byte says which; a deleted key keeps its tombstone).
 *  A write transaction's own changes are stamped when it commits, so read
 *  them in a transaction begun after the commit.
 *  @param[in] txn  any transaction of an environment opened through trlmdb.
 *  @param[out] ts  12 bytes, big-endian (DESIGN.md section 1).
 *  @return 0; MDB_NOTFOUND if the key was never stamped; EINVAL for NULL
 *  arguments or a handle the shim does not know. */
int trlmdb_key_ts(MDB_txn *txn, MDB_dbi dbi, const MDB_val *key, unsigned char ts[TRLMDB_TS_SIZE]);

/** @brief Replication status of an environment, as this process sees it. */
typedef struct TRLMDB_repl_status {
  /** 1 if this process runs the replicator of env; 0 if it has none (not
   *  configured, read-only, or another process holds the environment's
   *  replicator lock: then only that process reports peers). */
  int running;
  /** Bound TCP port of the listening address (useful with port 0); 0 if not listening. */
  unsigned listen_port;
  /** Peers configured (TRLMDB_PEERS / peers / connect). */
  unsigned peers_configured;
  /** Peers with an authenticated session for env (incoming ones included). */
  unsigned peers_connected;
  /** Entries of _trlmdb_recent not yet acknowledged by every connected peer. */
  uint64_t backlog;
  /** Bytes sent to and received from peers for env, framing and encryption included. */
  uint64_t bytes_sent, bytes_received;
  /** Changes received from peers and written (newer than the local entry). */
  uint64_t changes_applied;
} TRLMDB_repl_status;

/** @brief Fills *status for env.
 *  @return 0; EINVAL if env or status is NULL or env was not opened through trlmdb. */
int trlmdb_repl_status(MDB_env *env, TRLMDB_repl_status *status);

/** @brief Waits until every peer connected to env has acknowledged every
 *  change committed to env (by any process) before the call. With no peer
 *  connected there is nothing to wait for. Do not call it inside a write
 *  transaction of env: the replicator needs the write lock to record
 *  acknowledgements.
 *  @param timeout_ms  how long to wait at most.
 *  @return 0 when done; ETIMEDOUT; EINVAL if env is NULL or this process
 *  does not run env's replicator (trlmdb_repl_status says running == 0). */
int trlmdb_repl_sync(MDB_env *env, unsigned timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* TRLMDB_H */
