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
# EXPECT_VOC: stratum was built with pugixml, so the consumer must get stratum::voc too.
if(EXPECT_VOC)
  if(NOT EXISTS "${WORK_DIR}/build/consumer_voc")
    message(FATAL_ERROR "stratum was built with pugixml, but the consumer found no stratum::voc")
  endif()
  run("${WORK_DIR}/build/consumer_voc")
endif()
# EXPECT_DISTRIBUTED: stratum was built with MPI, so the consumer must get stratum::distributed.
if(EXPECT_DISTRIBUTED)
  if(NOT EXISTS "${WORK_DIR}/build/consumer_distributed")
    message(FATAL_ERROR "stratum was built with MPI, but the consumer found no stratum::distributed")
  endif()
  run("${WORK_DIR}/build/consumer_distributed")
endif()
