# wire.cc and handshake.cc are compiled in directly, so these tests build
# while other replicator modules are still in progress.
add_executable(repl_wire_test ${CMAKE_CURRENT_SOURCE_DIR}/wire_test.cc
               ${CMAKE_CURRENT_SOURCE_DIR}/../wire.cc)
target_include_directories(repl_wire_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/..)
target_link_libraries(repl_wire_test PRIVATE trlmdb_core GTest::gtest_main)
add_test(NAME unit.repl.wire COMMAND repl_wire_test)
set_tests_properties(unit.repl.wire PROPERTIES LABELS unit TIMEOUT 120)

add_executable(repl_handshake_test ${CMAKE_CURRENT_SOURCE_DIR}/handshake_test.cc
               ${CMAKE_CURRENT_SOURCE_DIR}/../handshake.cc ${CMAKE_CURRENT_SOURCE_DIR}/../wire.cc)
target_include_directories(repl_handshake_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/..)
target_link_libraries(repl_handshake_test PRIVATE trlmdb_core PkgConfig::TRLMDB_SODIUM
                      GTest::gtest_main)
add_test(NAME unit.repl.handshake COMMAND repl_handshake_test)
set_tests_properties(unit.repl.handshake PROPERTIES LABELS unit TIMEOUT 120)
