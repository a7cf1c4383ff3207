// How many cores a rank may use, so that the ranks of one machine do not each start a thread
// per core and fight over them.
//
//   allowed = the cores this process may run on (sched_getaffinity; the whole machine when
//             nothing restricts it)
//   local   = the ranks on this machine (OMPI_COMM_WORLD_LOCAL_SIZE from Open MPI's mpirun,
//             MPI_LOCALNRANKS from MPICH's, SLURM_NTASKS_PER_NODE from srun; 1 otherwise)
//
// When the launcher bound the rank to some of the cores (mpirun's default with up to 2 ranks
// is one core each, `--bind-to core`, or `--map-by socket:PE=4` for 4 each), `allowed` is
// fewer than the machine's and those are the rank's own: it uses all of them. When nothing
// binds it (`--bind-to none`, or more ranks than cores with `--oversubscribe`), every rank sees
// the whole machine and takes its 1/local of it, at least one. STRATUM_NUM_THREADS or
// OMP_NUM_THREADS, when set (mpirun passes them to every rank: `mpirun -x STRATUM_NUM_THREADS=2`),
// win, as they do in a single process (thread_pool.hpp).
#pragma once

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>

#include "../thread_pool.hpp"

#if defined(__linux__)
#include <sched.h>
#endif

namespace stratum {

/// The ranks of this job on this machine, from the launcher's environment (1 if none says).
inline int local_ranks() {
  for (const char* variable :
       {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"})
    if (const char* value = std::getenv(variable); value && *value) {
      const int ranks = std::atoi(value);
      if (ranks > 0) return ranks;
    }
  return 1;
}

/// The cores this process may run on.
inline int allowed_cores() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(CPU_COUNT(&set), 1);
#endif
  return std::max(static_cast<int>(std::thread::hardware_concurrency()), 1);
}

/// The threads a rank should compute with (see the top of the file).
inline int cores_per_rank() {
  for (const char* variable : {"STRATUM_NUM_THREADS", "OMP_NUM_THREADS"})
    if (const char* value = std::getenv(variable); value && *value)
      return detail::default_thread_count();
  const int machine = std::max(static_cast<int>(std::thread::hardware_concurrency()), 1);
  const int allowed = allowed_cores();
  if (allowed < machine) return allowed;
  return std::max(allowed / local_ranks(), 1);
}

}  // namespace stratum
