// doctest's main() for the test programs. One program holds many test files, and each CTest
// entry runs one file's test cases (--source-file), so a run whose filters select no test case
// fails: a renamed file or a mistyped filter cannot pass by running nothing.
//
// Built with MPI (STRATUM_TEST_MPI), a run started by mpirun (the distributed tests) runs inside
// MPI_Init ... MPI_Finalize, rank 0 reporting and the others printing only their failures; a run
// started otherwise never calls MPI.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <iostream>
#include <optional>

#if defined(STRATUM_TEST_MPI)
#include <stratum/distributed/communicator.hpp>
#endif

namespace {

/// A doctest listener that only remembers how many test cases the run's filters selected.
struct SelectedTestCases : doctest::IReporter {
  static inline int count = -1;  // stays -1 for a query (--list-test-cases, --help, ...)

  explicit SelectedTestCases(const doctest::ContextOptions&) {}
  void test_run_end(const doctest::TestRunStats& stats) override {
    count = static_cast<int>(stats.numTestCasesPassingFilters);
  }
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

}  // namespace

DOCTEST_REGISTER_LISTENER("selected_test_cases", 1, SelectedTestCases);

int main(int argc, char** argv) {
#if defined(STRATUM_TEST_MPI)
  std::optional<stratum::MpiSession> mpi;
  if (stratum::launched_by_mpi()) mpi.emplace(argc, argv);
#endif
  doctest::Context context(argc, argv);
#if defined(STRATUM_TEST_MPI)
  if (mpi && stratum::Communicator().rank() != 0) context.setOption("minimal", true);
#endif
  const int result = context.run();
  if (result == 0 && SelectedTestCases::count == 0) {
    std::cerr << "no test case matches the filters:";
    for (int i = 1; i < argc; ++i) std::cerr << ' ' << argv[i];
    std::cerr << '\n';
    return 1;
  }
  return result;
}
