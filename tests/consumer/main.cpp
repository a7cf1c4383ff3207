// Builds and trains a tiny model through the public header only.
#include <stratum/stratum.hpp>

#include <iostream>

int main() {
  using namespace stratum;
  auto data = make_stripes<float>(64, 8, 1, 7);
  Sequential<float> model({8, 8, 1}, 7);
  model.add<Conv2D>(4, 3, Activation::relu);
  model.add<Flatten>();
  model.add<Dense>(2);
  model.compile(std::make_unique<SparseCategoricalCrossentropy<float>>(true),
                std::make_unique<Adam<float>>());
  FitOptions<float> options;
  options.verbose = 0;
  const History history = model.fit(data.images, data.labels, options);
  std::cout << "stratum " << version << ": " << model.parameter_count() << " parameters, loss "
            << history.loss.back() << '\n';
  return model.parameter_count() == 4 * 9 + 4 + 6 * 6 * 4 * 2 + 2 ? 0 : 1;
}
