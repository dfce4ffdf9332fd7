/* Linked into the ASan build's mdb_dump only (compat-tests/programs builds
 * it unmodified from Debian's lmdb 0.9.24 source; cmake/Sanitizers.cmake adds
 * this file to it).
 *
 * Upstream's mdb_dump.c dumpit() opens a cursor in its read-only transaction
 * and never closes it; LMDB frees a read-only transaction's cursors only on
 * mdb_cursor_close, so every dumped database leaks one cursor at exit. Not
 * our code, and not a leak of the shim: suppressed by dumpit's frame only.
 * Matching that frame needs the full stack: liblmdb.so.0 is built without
 * frame pointers, so ASan's fast unwinder stops in mdb_cursor_open; slow
 * unwinding costs little in a short-lived program. */
const char *__asan_default_options(void);
const char *__lsan_default_suppressions(void);

const char *__asan_default_options(void) { return "fast_unwind_on_malloc=0"; }

const char *__lsan_default_suppressions(void) { return "leak:dumpit\n"; }
