// quickstart: define, train and evaluate a small CNN on generated images (noisy horizontal
// versus vertical stripes), the Keras way. Run it to see stratum work end to end in seconds.
//
//   quickstart [--epochs N] [--seed N] [--threads N]
#include <stratum/stratum.hpp>

#include <cstdlib>
#include <iostream>
#include <string>

namespace {

long parse_option(int argc, char** argv, const std::string& name, long fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return std::stol(argv[i + 1]);
  return fallback;
}

}  // namespace

int main(int argc, char** argv) try {
  using namespace stratum;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--help") {
      std::cout << "usage: quickstart [--epochs N] [--seed N] [--threads N]\n"
                   "Trains a small CNN to tell horizontal from vertical stripes.\n";
      return 0;
    }
  const int epochs = static_cast<int>(parse_option(argc, argv, "--epochs", 5));
  const auto seed = static_cast<std::uint64_t>(parse_option(argc, argv, "--seed", 42));
  set_num_threads(static_cast<int>(parse_option(argc, argv, "--threads", num_threads())));

  auto train = make_stripes<float>(2000, 24, 3, seed);
  auto test = make_stripes<float>(500, 24, 3, seed + 1);

  Sequential<float> model({24, 24, 3}, seed);
  model.add<Conv2D>(16, 3, Activation::relu);
  model.add<MaxPool2D>(2);
  model.add<Conv2D>(32, 3, Activation::relu);
  model.add<MaxPool2D>(2);
  model.add<Flatten>();
  model.add<Dense>(32, Activation::relu);
  model.add<Dropout>(0.25);
  model.add<Dense>(2);
  model.compile(std::make_unique<SparseCategoricalCrossentropy<float>>(/*from_logits=*/true),
                std::make_unique<Adam<float>>());
  model.summary();

  FitOptions<float> options;
  options.epochs = epochs;
  options.validation_split = 0.1;
  model.fit(train.images, train.labels, options);

  const Evaluation result = model.evaluate(test.images, test.labels);
  std::cout << "test loss " << result.loss << ", test accuracy " << result.accuracy << " on "
            << result.samples << " images\n";
  return result.accuracy > 0.9 ? EXIT_SUCCESS : EXIT_FAILURE;
} catch (const std::exception& e) {
  std::cerr << "quickstart: " << e.what() << '\n';
  return EXIT_FAILURE;
}
