/* Self-test of the scenario driver: a preloaded library that is not the shim
 * (it defines no mdb_* function). The driver must notice that no
 * bookkeeping was written and that `trlmdb verify` fails. */
int trlmdb_selftest_noop_preload_marker = 1;
