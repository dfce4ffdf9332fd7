# The store against real environments written through the shim's core. Its
# replicator sources are compiled in directly, so the test builds while other
# modules of the library are in progress.
add_executable(repl_store_test ${CMAKE_CURRENT_SOURCE_DIR}/store_test.cc
               ${CMAKE_CURRENT_SOURCE_DIR}/../store.cc ${CMAKE_CURRENT_SOURCE_DIR}/../log.cc
               ${CMAKE_CURRENT_SOURCE_DIR}/../wire.cc ${CMAKE_CURRENT_SOURCE_DIR}/../reconcile.cc)
target_include_directories(repl_store_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/..
                           ${TRLMDB_XXHASH_INCLUDE})
target_compile_definitions(repl_store_test PRIVATE TRLMDB_CLI_PATH="$<TARGET_FILE:trlmdb_cli>")
target_link_libraries(repl_store_test PRIVATE trlmdb_engine ${TRLMDB_XXHASH_STATIC}
                      GTest::gtest_main Threads::Threads)
# The invariant checker (`trlmdb verify`) runs on the environments the tests build.
add_dependencies(repl_store_test trlmdb_cli)
add_test(NAME unit.repl.store COMMAND repl_store_test)
set_tests_properties(unit.repl.store PROPERTIES LABELS unit TIMEOUT 120)
