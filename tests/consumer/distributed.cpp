// Starts MPI through stratum::distributed, the target that brings MPI, and sums over the ranks
// (one: the consumer test runs the program without mpirun, as an MPI singleton).
#include <stratum/distributed/communicator.hpp>

#include <iostream>
#include <vector>

int main(int argc, char** argv) {
  stratum::MpiSession mpi(argc, argv);
  const stratum::Communicator world;
  std::vector<double> values{1.5, 2.5};
  world.sum(std::span<double>(values));
  std::cout << "stratum::distributed: " << world.size() << " rank, sum " << values[0] + values[1]
            << '\n';
  return world.size() == 1 && values[0] + values[1] == 4.0 ? 0 : 1;
}
