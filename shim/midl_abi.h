/* Declarations of the mdb_midl_* / mdb_mid2l_* helpers that liblmdb.so.0
 * exports but Debian does not install a header for (LMDB's midl.h). The shim
 * re-exports them unchanged so its symbol list equals liblmdb's. */
#ifndef TRLMDB_MIDL_ABI_H
#define TRLMDB_MIDL_ABI_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef size_t MDB_ID;
typedef MDB_ID *MDB_IDL;
typedef struct MDB_ID2 {
  MDB_ID mid;
  void *mptr;
} MDB_ID2;
typedef MDB_ID2 *MDB_ID2L;

unsigned mdb_midl_search(MDB_IDL ids, MDB_ID id);
MDB_IDL mdb_midl_alloc(int num);
void mdb_midl_free(MDB_IDL ids);
void mdb_midl_shrink(MDB_IDL *idp);
int mdb_midl_need(MDB_IDL *idp, unsigned num);
int mdb_midl_append(MDB_IDL *idp, MDB_ID id);
int mdb_midl_append_list(MDB_IDL *idp, MDB_IDL app);
int mdb_midl_append_range(MDB_IDL *idp, MDB_ID id, unsigned n);
void mdb_midl_xmerge(MDB_IDL idl, MDB_IDL merge);
void mdb_midl_sort(MDB_IDL ids);
unsigned mdb_mid2l_search(MDB_ID2L ids, MDB_ID id);
int mdb_mid2l_insert(MDB_ID2L ids, MDB_ID2 *id);
int mdb_mid2l_append(MDB_ID2L ids, MDB_ID2 *id);

#ifdef __cplusplus
}
#endif

#endif
