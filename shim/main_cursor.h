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
// The cursor was repositioned by a successful put, renewed or closed.
void forget(MDB_cursor *mc);
// A write transaction ended: LMDB freed its cursors.
void forget_txn(MDB_txn *txn);

}  // namespace trlmdb::main_cursor
