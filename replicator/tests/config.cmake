# Configuration and logging: compiled in directly (no libuv, no engine), so the
# test builds even while other replicator modules are in progress.
find_package(Threads REQUIRED)
add_executable(repl_config_test ${CMAKE_CURRENT_SOURCE_DIR}/config_test.cc
                                ${CMAKE_CURRENT_SOURCE_DIR}/../config.cc
                                ${CMAKE_CURRENT_SOURCE_DIR}/../log.cc)
target_include_directories(repl_config_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/..)
target_link_libraries(repl_config_test PRIVATE GTest::gtest_main Threads::Threads)
add_test(NAME unit.repl.config COMMAND repl_config_test)
set_tests_properties(unit.repl.config PROPERTIES TIMEOUT 60 LABELS unit)
