# Runs trlmdb-bench with tiny sizes and checks that it succeeds and reports a
# row for every workload. Invoked by ctest: cmake -DBENCH=... -DWORKDIR=... -P
execute_process(
  COMMAND ${BENCH} --num 2000 --sync-num 20 --reads 2000 --repeat 1 --read-envs 1 --turn-ms 0
          --read-samples 2 --min-sample-ms 1 --quiet --dir ${WORKDIR}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "trlmdb-bench exited with ${rc}:\n${err}")
endif()
if(err MATCHES "A/A run")
  message(FATAL_ERROR "the default --shim is not the trlmdb shim:\n${err}")
endif()
foreach(w fillbatch fillsync fillsyncbig readrandom scan deleterandom)
  if(NOT out MATCHES "\n${w} +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+")
    message(FATAL_ERROR "no result row for ${w}")
  endif()
endforeach()
if(NOT out MATCHES "\noverall: ")
  message(FATAL_ERROR "no overall line")
endif()
# --json parses as JSON and names every workload.
execute_process(
  COMMAND ${BENCH} --num 500 --sync-num 5 --reads 500 --repeat 1 --read-envs 1
          --read-samples 1 --min-sample-ms 1 --quiet --json --dir ${WORKDIR}
  RESULT_VARIABLE rc OUTPUT_VARIABLE json ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "trlmdb-bench --json exited with ${rc}:\n${err}")
endif()
string(JSON n LENGTH "${json}" workloads)
if(NOT n EQUAL 6)
  message(FATAL_ERROR "--json: ${n} workloads, expected 6:\n${json}")
endif()
file(GLOB leftovers ${WORKDIR}/trlmdb-bench-*)
if(leftovers)
  message(FATAL_ERROR "temporary environments left behind: ${leftovers}")
endif()
