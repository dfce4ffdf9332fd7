// The table of real LMDB functions (libfaketime style): resolved once, from
// the system's liblmdb.so.0, lazily or from the library constructor.
#pragma once

#include <lmdb.h>

#include "midl_abi.h"

// X(name): every function liblmdb.so.0 exports (69 in LMDB 0.9.24).
#define TRLMDB_LMDB_FUNCTIONS(X)                                                                  \
  X(mdb_version)                                                                                  \
  X(mdb_strerror)                                                                                 \
  X(mdb_env_create)                                                                               \
  X(mdb_env_open) X(mdb_env_copy) X(mdb_env_copyfd) X(mdb_env_copy2) X(mdb_env_copyfd2) X(        \
      mdb_env_stat) X(mdb_env_info) X(mdb_env_sync) X(mdb_env_close) X(mdb_env_set_flags)         \
      X(mdb_env_get_flags) X(mdb_env_get_path) X(mdb_env_get_fd) X(mdb_env_set_mapsize) X(        \
          mdb_env_set_maxreaders) X(mdb_env_get_maxreaders) X(mdb_env_set_maxdbs)                 \
          X(mdb_env_get_maxkeysize) X(mdb_env_set_userctx) X(mdb_env_get_userctx) X(              \
              mdb_env_set_assert) X(mdb_txn_begin) X(mdb_txn_env) X(mdb_txn_id) X(mdb_txn_commit) \
              X(mdb_txn_abort) X(mdb_txn_reset) X(mdb_txn_renew) X(mdb_dbi_open) X(mdb_stat)      \
                  X(mdb_dbi_flags) X(mdb_dbi_close) X(mdb_drop) X(mdb_set_compare) X(             \
                      mdb_set_dupsort) X(mdb_set_relfunc) X(mdb_set_relctx) X(mdb_get) X(mdb_put) \
                      X(mdb_del) X(mdb_cursor_open) X(mdb_cursor_close) X(mdb_cursor_renew)       \
                          X(mdb_cursor_txn) X(mdb_cursor_dbi) X(mdb_cursor_get) X(mdb_cursor_put) \
                              X(mdb_cursor_del) X(mdb_cursor_count) X(mdb_cmp) X(mdb_dcmp)        \
                                  X(mdb_reader_list) X(mdb_reader_check) X(mdb_midl_search)       \
                                      X(mdb_midl_alloc) X(mdb_midl_free) X(mdb_midl_shrink)       \
                                          X(mdb_midl_need) X(mdb_midl_append)                     \
                                              X(mdb_midl_append_list) X(mdb_midl_append_range)    \
                                                  X(mdb_midl_xmerge) X(mdb_midl_sort)             \
                                                      X(mdb_mid2l_search) X(mdb_mid2l_insert)     \
                                                          X(mdb_mid2l_append)

namespace trlmdb {

struct RealLmdb {
#define TRLMDB_DECLARE_SLOT(name) decltype(&::name) name;
  TRLMDB_LMDB_FUNCTIONS(TRLMDB_DECLARE_SLOT)
#undef TRLMDB_DECLARE_SLOT
};

namespace detail {
extern RealLmdb g_real;
extern bool g_real_ready;
void load_real_lmdb();
}  // namespace detail

// The real functions. Never returns an incomplete table: if the real library
// cannot be loaded the process is stopped with a message on stderr.
inline const RealLmdb &real() {
  if (__builtin_expect(!detail::g_real_ready, 0)) detail::load_real_lmdb();
  return detail::g_real;
}

// Path of the real library (TRLMDB_REAL_LMDB overrides the built-in path).
const char *real_lmdb_path();

}  // namespace trlmdb
