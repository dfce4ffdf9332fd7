# Reconciliation (reconcile.cc): pure code, built straight into its test so the test does
# not depend on the rest of the replicator.
add_executable(reconcile_test ${CMAKE_CURRENT_SOURCE_DIR}/reconcile_test.cc
                              ${CMAKE_CURRENT_SOURCE_DIR}/../reconcile.cc)
target_include_directories(reconcile_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/..
                           ${TRLMDB_XXHASH_INCLUDE})
target_link_libraries(reconcile_test PRIVATE trlmdb_core ${TRLMDB_XXHASH_STATIC}
                      GTest::gtest_main Threads::Threads)
add_test(NAME unit.repl.reconcile COMMAND reconcile_test)
set_tests_properties(unit.repl.reconcile PROPERTIES LABELS unit TIMEOUT 120)
