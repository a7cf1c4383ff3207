// The MPI processes of a run (MPI_COMM_WORLD), as data-parallel training uses them: who am I
// (rank), how many are we (size), rank 0's values to everyone (broadcast), and sums over every
// rank (all-reduce). Needs MPI: link stratum::distributed.
//
//   int main(int argc, char** argv) {
//     stratum::MpiSession mpi(argc, argv);       // MPI_Init ... MPI_Finalize
//     stratum::Communicator world;
//     if (world.rank() == 0) std::cout << world.size() << " ranks\n";
//
// Only the thread that created the session calls MPI (MPI_THREAD_FUNNELED): stratum's own
// threads compute, the main thread communicates between kernels.
#pragma once

#include <mpi.h>

#include <cstdlib>
#include <span>
#include <string>

#include "../errors.hpp"

namespace stratum {

/// Whether this process was started by an MPI launcher (mpirun, srun): it then has a rank in a
/// job. A program started by hand is not, and then trains alone, without calling MPI at all.
inline bool launched_by_mpi() {
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (const char* value = std::getenv(variable); value && *value) return true;
  return false;
}

/// MPI's lifetime: MPI_Init_thread on construction, MPI_Finalize on destruction (once per
/// process, in main).
class MpiSession {
 public:
  MpiSession(int& argc, char**& argv) {
    int provided = 0;
    check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    if (provided < MPI_THREAD_FUNNELED) {
      MPI_Finalize();
      throw Error("MPI: this MPI library cannot be called from a threaded program");
    }
  }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  ~MpiSession() { MPI_Finalize(); }

  /// Throws Error naming `call` when an MPI call fails (MPI_ERRORS_RETURN is not the default,
  /// so most failures abort the job inside MPI first, with MPI's own message).
  static void check(int code, const char* call) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    throw Error(std::string("MPI: ") + call + " failed: " + std::string(text, length));
  }
};

/// The MPI datatype of a scalar type.
template <typename T>
MPI_Datatype mpi_type();
template <>
inline MPI_Datatype mpi_type<float>() {
  return MPI_FLOAT;
}
template <>
inline MPI_Datatype mpi_type<double>() {
  return MPI_DOUBLE;
}

class Communicator {
 public:
  explicit Communicator(MPI_Comm comm = MPI_COMM_WORLD) : comm_(comm) {
    MpiSession::check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    MpiSession::check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }

  [[nodiscard]] int rank() const { return rank_; }
  [[nodiscard]] int size() const { return size_; }
  [[nodiscard]] MPI_Comm comm() const { return comm_; }

  /// Every rank's `values` become rank 0's.
  template <typename T>
  void broadcast(std::span<T> values) const {
    for (std::size_t done = 0; done < values.size();) {  // MPI counts are ints
      const int count = chunk(values.size() - done);
      MpiSession::check(MPI_Bcast(values.data() + done, count, mpi_type<T>(), 0, comm_),
                        "MPI_Bcast");
      done += static_cast<std::size_t>(count);
    }
  }

  /// Every rank's `values` become their element-wise sum over the ranks (the same bits on every
  /// rank: Open MPI reduces each element once and hands the result out).
  template <typename T>
  void sum(std::span<T> values) const {
    for (std::size_t done = 0; done < values.size();) {
      const int count = chunk(values.size() - done);
      MpiSession::check(
          MPI_Allreduce(MPI_IN_PLACE, values.data() + done, count, mpi_type<T>(), MPI_SUM, comm_),
          "MPI_Allreduce");
      done += static_cast<std::size_t>(count);
    }
  }

  void barrier() const { MpiSession::check(MPI_Barrier(comm_), "MPI_Barrier"); }

 private:
  static int chunk(std::size_t remaining) {
    constexpr std::size_t most = std::size_t{1} << 30;
    return static_cast<int>(remaining < most ? remaining : most);
  }

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace stratum
