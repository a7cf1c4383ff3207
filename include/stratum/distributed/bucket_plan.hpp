// Which gradients go into which all-reduce bucket (no MPI here: the plan is plain arithmetic,
// tested on its own).
//
// Backward finishes the layers from the last to the first, so the buckets are filled in that
// order: layer L-1's gradients first, each layer's parameters in their own order, every bucket
// `capacity` elements until the last. A parameter larger than what is left of a bucket is cut:
// its first elements end this bucket and the rest start the next, so a bucket smaller than one
// layer works (a layer then spans several buckets), and so does one larger than the whole
// model (one bucket). Every element of every gradient is in exactly one bucket.
//
// A bucket can be reduced once every layer it covers has finished backward: once the layer of
// its last piece, `first_layer` (the lowest layer index in it), has.
#pragma once

#include <cstddef>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"

namespace stratum {

/// Elements [begin, end) of parameter `parameter` (its index in the plan's parameter list).
struct BucketPiece {
  std::size_t parameter = 0;
  Index begin = 0;
  Index end = 0;
};

struct Bucket {
  std::vector<BucketPiece> pieces;
  Index elements = 0;
  std::size_t first_layer = 0;
};

/// A plan over the trainable parameters of layers 0..L-1: `sizes_by_layer[i]` are the element
/// counts of layer i's parameters. The plan's parameter list numbers them in backward order
/// (layer L-1's first); `layer_of[k]` is parameter k's layer.
struct BucketPlan {
  std::vector<Bucket> buckets;
  std::vector<std::size_t> layer_of;
};

inline BucketPlan plan_buckets(const std::vector<std::vector<Index>>& sizes_by_layer,
                               Index capacity) {
  if (capacity < 1) throw Error("plan_buckets: a bucket must hold at least one element");
  BucketPlan plan;
  Bucket open;
  auto close = [&] {
    if (open.elements > 0) plan.buckets.push_back(std::move(open));
    open = Bucket{};
  };
  for (std::size_t layer = sizes_by_layer.size(); layer-- > 0;) {
    for (const Index size : sizes_by_layer[layer]) {
      const std::size_t parameter = plan.layer_of.size();
      plan.layer_of.push_back(layer);
      for (Index begin = 0; begin < size;) {
        const Index end = std::min(size, begin + (capacity - open.elements));
        open.pieces.push_back({parameter, begin, end});
        open.elements += end - begin;
        open.first_layer = layer;
        begin = end;
        if (open.elements == capacity) close();
      }
    }
  }
  close();
  return plan;
}

}  // namespace stratum
