// A stratified, seeded train/test split that never separates byte-identical files.
//
// The Kaggle face-mask set holds 268 groups of identical photos (574 files). A plain random
// split puts copies of the same photo on both sides, and the test accuracy then partly measures
// memory. Here each group of identical files is one unit: per class, the groups are shuffled
// with the seed and dealt to the test part until it holds `test_fraction` of the class's
// images; everything else trains. A class's test share is exact up to the size of one group.
#pragma once

#include <cmath>
#include <map>
#include <span>
#include <vector>

#include "../random.hpp"
#include "../tensor.hpp"

namespace stratum {

struct Split {
  std::vector<Index> train;
  std::vector<Index> test;
};

/// Splits the samples `indices` (labels[i] and group_keys[i] describe sample i); samples with
/// equal group keys stay together. Both parts come out shuffled.
inline Split stratified_group_split(std::span<const int> labels,
                                    std::span<const std::uint64_t> group_keys,
                                    const std::vector<Index>& indices, double test_fraction,
                                    std::uint64_t seed) {
  if (!(test_fraction > 0.0 && test_fraction < 1.0))
    throw Error("stratified_group_split: the test fraction must be in (0, 1)");
  // Groups in order of first appearance; a group's class is that of its first member.
  std::map<std::uint64_t, std::size_t> group_of_key;
  std::vector<std::vector<Index>> groups;
  for (Index i : indices) {
    const auto [it, added] = group_of_key.try_emplace(group_keys[static_cast<std::size_t>(i)], groups.size());
    if (added) groups.emplace_back();
    groups[it->second].push_back(i);
  }
  std::map<int, std::vector<std::size_t>> groups_of_class;
  std::map<int, Index> class_size;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const int label = labels[static_cast<std::size_t>(groups[g].front())];
    groups_of_class[label].push_back(g);
    class_size[label] += static_cast<Index>(groups[g].size());
  }

  Random rng(seed);
  Split split;
  for (auto& [label, class_groups] : groups_of_class) {
    rng.shuffle(class_groups.begin(), class_groups.end());
    const auto target = static_cast<Index>(std::llround(test_fraction * static_cast<double>(class_size[label])));
    Index in_test = 0;
    for (std::size_t g : class_groups) {
      auto& part = in_test < target ? split.test : split.train;
      if (in_test < target) in_test += static_cast<Index>(groups[g].size());
      part.insert(part.end(), groups[g].begin(), groups[g].end());
    }
  }
  rng.shuffle(split.train.begin(), split.train.end());
  rng.shuffle(split.test.begin(), split.test.end());
  return split;
}

}  // namespace stratum
