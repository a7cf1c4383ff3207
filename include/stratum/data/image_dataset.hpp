// A Dataset over some of the images of a LabelledImages collection: pixels stay 8-bit in
// memory and become [0, 1] floats (x / 255, as the notebook scales them) one batch at a time.
// Given an ImageAugmenter, every sample handed out is a fresh random transform of its image
// (for training data only: validation and test data take none).
#pragma once

#include <utility>
#include <vector>

#include "../parallel.hpp"
#include "augmentation.hpp"
#include "dataset.hpp"
#include "image_folder.hpp"

namespace stratum {

template <typename T>
class ImageDataset final : public Dataset<T> {
 public:
  /// The images `indices` of `images` (which must outlive the dataset), in that order.
  ImageDataset(const LabelledImages& images, std::vector<Index> indices,
               ImageAugmenter* augmenter = nullptr)
      : images_(images), indices_(std::move(indices)), augmenter_(augmenter) {
    for (Index i : indices_)
      if (i < 0 || i >= images.count())
        throw Error("ImageDataset: image index " + std::to_string(i) + " is outside [0, " +
                    std::to_string(images.count()) + ")");
  }

  [[nodiscard]] Index size() const override { return static_cast<Index>(indices_.size()); }
  [[nodiscard]] Shape sample_shape() const override { return {images_.height, images_.width, 3}; }
  [[nodiscard]] const std::vector<Index>& indices() const { return indices_; }

  void gather(std::span<const Index> batch, Tensor<T>& x, std::vector<int>& labels) const override {
    gather_part(batch, 0, batch.size(), x, labels);
  }

  void gather_part(std::span<const Index> batch, std::size_t first, std::size_t count, Tensor<T>& x,
                   std::vector<int>& labels) const override {
    const Index image_size = images_.image_size();
    const std::span<const Index> part = batch.subspan(first, count);
    x.resize(sample_shape().with_batch(static_cast<Index>(count)));
    labels.resize(count);
    for (std::size_t k = 0; k < count; ++k) {
      this->check_index(part[k]);
      labels[k] =
          images_.labels[static_cast<std::size_t>(indices_[static_cast<std::size_t>(part[k])])];
    }
    // Sample k of the whole batch draws number first_draw + k, whichever part it is in.
    const std::uint64_t first_draw =
        augmenter_ ? augmenter_->reserve(batch.size()) + std::uint64_t{first} : 0;
    const T scale = T(1) / T(255);
    parallel_for(static_cast<Index>(count), [&](Index k) {
      const Index image = indices_[static_cast<std::size_t>(part[static_cast<std::size_t>(k)])];
      const std::uint8_t* source = images_.image(image);
      T* target = x.data() + k * image_size;
      if (augmenter_)
        augmenter_->augment(source, images_.width, images_.height, target,
                            first_draw + static_cast<std::uint64_t>(k));
      else
        for (Index p = 0; p < image_size; ++p) target[p] = static_cast<T>(source[p]) * scale;
      images_.release(image);
    });
  }

 private:
  const LabelledImages& images_;
  std::vector<Index> indices_;
  ImageAugmenter* augmenter_;
};

}  // namespace stratum
