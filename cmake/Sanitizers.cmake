# Sanitizer builds (issue 4, "Sanitizers"): -DTRLMDB_SANITIZE=address|thread.
#   address  AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer)
#   thread   ThreadSanitizer
# Included from the top-level CMakeLists.txt BEFORE any add_subdirectory():
# the options are directory properties, so they reach every target created
# afterwards, including the libuv that replicator/CMakeLists.txt compiles from
# Debian's source with add_subdirectory() (it inherits this directory's
# COMPILE_OPTIONS and LINK_OPTIONS). scripts/sanitize.sh builds and runs it.
#
# GCC, not clang: GCC links the sanitizer runtime as a shared library into
# libtrlmdb.so too, which keeps -Wl,--no-undefined of the shim's link working;
# clang leaves __asan_* undefined in shared libraries.
set(TRLMDB_SANITIZE "" CACHE STRING "Sanitizer build: address (ASan+UBSan) or thread (TSan)")
set_property(CACHE TRLMDB_SANITIZE PROPERTY STRINGS "" address thread)

if(TRLMDB_SANITIZE STREQUAL "")
  return()
elseif(TRLMDB_SANITIZE STREQUAL "address")
  # Every UBSan finding is fatal at once (UBSAN_OPTIONS=halt_on_error=1 as well).
  set(trlmdb_san_flags -fsanitize=address,undefined -fno-sanitize-recover=all)
elseif(TRLMDB_SANITIZE STREQUAL "thread")
  set(trlmdb_san_flags -fsanitize=thread)
else()
  message(FATAL_ERROR "TRLMDB_SANITIZE must be address or thread, not '${TRLMDB_SANITIZE}'")
endif()
if(NOT CMAKE_C_COMPILER_ID STREQUAL "GNU" OR NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  message(FATAL_ERROR "TRLMDB_SANITIZE needs GCC (the shim links with -Wl,--no-undefined)")
endif()

# -O1 comes after the build type's -O2 on the command line, so it wins;
# NDEBUG stays as in the normal build, so the tests see the same code paths.
add_compile_options(${trlmdb_san_flags} -fno-omit-frame-pointer -O1 -g)
add_link_options(${trlmdb_san_flags})
message(STATUS "sanitizers: ${trlmdb_san_flags}")

# Debian's mdb_dump (compat-tests/programs, built unmodified from upstream's
# source) leaks a cursor at exit; the file says why and suppresses exactly
# that. Deferred: the target is created later, in compat-tests/.
if(TRLMDB_SANITIZE STREQUAL "address")
  function(trlmdb_sanitize_upstream_programs)
    foreach(t prog_mdb_dump_real prog_mdb_dump_relinked)
      if(TARGET ${t})
        target_sources(${t} PRIVATE ${PROJECT_SOURCE_DIR}/sanitizers/mdb_dump_leak.c)
      endif()
    endforeach()
  endfunction()
  cmake_language(DEFER CALL trlmdb_sanitize_upstream_programs)
endif()
