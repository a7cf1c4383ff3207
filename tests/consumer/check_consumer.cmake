# Run by CTest: installs stratum from BUILD_DIR into a fresh prefix (MODE=find_package) or
# points at SOURCE_DIR (MODE=add_subdirectory), then configures, builds and runs the consumer.
file(REMOVE_RECURSE "${WORK_DIR}")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "failed: ${ARGN}\n${out}")
  endif()
  message("${out}")
endfunction()

# No build type: the consumer is compiled without optimisation (GCC's default, -O0). This test
# checks how a project finds and links the library, not its speed, and stratum.hpp with a
# training run compiles in 20 s of CPU at -O0 against 46 s at -O3 (GCC 12).
set(args -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/build" -G "${GENERATOR}"
         -DCMAKE_BUILD_TYPE= -DMODE=${MODE})
if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix")
  list(APPEND args "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix")
else()
  list(APPEND args "-DSTRATUM_SOURCE_DIR=${SOURCE_DIR}")
endif()
run(${CMAKE_COMMAND} ${args})
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run("${WORK_DIR}/build/consumer")
# An optional component stratum was built with (EXPECT_VOC: pugixml, EXPECT_DISTRIBUTED: MPI)
# must reach the consumer too: its program is built and runs.
function(check_component expected component dependency)
  if(expected)
    if(NOT EXISTS "${WORK_DIR}/build/consumer_${component}")
      message(FATAL_ERROR
              "stratum was built with ${dependency}, but the consumer found no stratum::${component}")
    endif()
    run("${WORK_DIR}/build/consumer_${component}")
  endif()
endfunction()
check_component("${EXPECT_VOC}" voc pugixml)
check_component("${EXPECT_DISTRIBUTED}" distributed MPI)
