// Cursors on the main database, which holds the reserved databases' records.
// The program must see the main database as if those records were not there,
// including where LMDB leaves a cursor after a miss (DESIGN.md section 2).
// When the real cursor cannot be placed where LMDB's would be, the cursor gets
// a virtual state in a side table; cursors that never meet a hidden record
// never get one, and the table is only consulted while it is not empty.
#pragma once

#include <lmdb.h>

namespace trlmdb::main_cursor {

bool reserved_key(const MDB_val *key);

// mdb_cursor_get for every cursor.
int get(MDB_cursor *mc, MDB_val *key, MDB_val *data, MDB_cursor_op op);

// Before mdb_cursor_del (is_del) or mdb_cursor_put(MDB_CURRENT) on a cursor of
// the main database: LMDB's answer in the cursor's virtual state, or 0 to
// go ahead with the real call.
int check_write(MDB_cursor *mc, bool is_del);
// After a successful mdb_cursor_del of `deleted` on the main database.
void after_delete(MDB_cursor *mc, const MDB_val &deleted);
// A cursor was opened (or renewed) on the main database.
void opened(MDB_cursor *mc);
// The main database was emptied (mdb_drop) in txn: its cursors are reset.
void emptied(MDB_txn *txn);
// After a deletion from the main database: if nothing visible is left, LMDB's
// tree would be empty and every cursor on it uninitialised.
void after_main_delete(MDB_txn *txn);
// A successful put moved the cursor.
void repositioned(MDB_cursor *mc);
// The cursor is closed or renewed.
void forget(MDB_cursor *mc);
// Before deleting at a cursor standing on `*current`: never a hidden record
// (the cursor moves on to the visible key it stands for, updating *current).
int guard_delete(MDB_cursor *mc, MDB_val *current);
// A write transaction ended: LMDB freed its cursors.
void forget_txn(MDB_txn *txn);

}  // namespace trlmdb::main_cursor
