// The face-mask detector's network, its losses, and what its model file says about it.
//
// A CenterNet-style detector ("Objects as Points", Zhou et al. 2019) at output stride 4:
//
//   input (S, S, 3), S the letterbox side, pixels / 255
//   backbone  stem  3x3 conv stride 2, 16                        S/2
//             stage 3x3 conv stride 2, 32  + 3x3 conv 32         S/4   c4
//             stage 3x3 conv stride 2, 64  + residual block 64   S/8   c8
//             stage 3x3 conv stride 2, 96  + residual block 96   S/16  c16
//             stage 3x3 conv stride 2, 128 + residual block 128  S/32  c32
//   neck      a small FPN: p = 1x1 conv(c32) to 64; at each finer level p = 3x3 conv(
//             upsample(p) + 1x1 conv(c)), 64 channels down to S/8, 32 at S/4
//   heads     heatmap: 3x3 conv 32, ReLU, 1x1 conv to C LOGITS (bias -2.19: p = 0.1 at start)
//             box: 3x3 conv 32, ReLU, then two 1x1 convs: size (2) and offset (2)
//
// Every backbone and neck convolution is conv (no activation) - BatchNormalization - ReLU, the
// residual blocks x + BN(conv(ReLU(BN(conv x)))) then ReLU, as ResNet's basic block. The
// outputs, in this order (the contract with `detect`, see detector_commands.hpp): heatmap
// logits (S/4, S/4, C), size (S/4, S/4, 2), offset (S/4, S/4, 2), in the units of
// detection/centernet_targets.hpp (log sizes in cells, offsets in cells).
//
// Why this size: the faces are small (median 21 px in scenes mostly 400 px wide), so the
// network keeps a stride-4 output and spends its depth at the coarser levels, where a
// convolution costs 4x, 16x, 64x less than at S/4; the stride-4 level gets only 32 channels.
#pragma once

#include <stratum/losses/focal_loss.hpp>
#include <stratum/losses/l1_loss.hpp>
#include <stratum/model/graph_model.hpp>
#include <stratum/stratum.hpp>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace mask_detection {

/// The output stride of the network: input pixels per heatmap cell.
inline constexpr int detector_stride = 4;

/// The heatmap bias at the start: sigmoid(-2.19) = 0.1, CenterNet's prior, so that the focal
/// loss of the (vastly more numerous) background cells does not swamp the first steps.
inline constexpr float heatmap_prior_bias = -2.19f;

namespace detail {

using stratum::Node;

/// BatchNormalization's momentum: 0.9 rather than Keras' 0.99, since a run is short (about 40
/// steps an epoch) and the moving statistics must follow the weights within an epoch or two,
/// as validation scores them in inference mode.
inline constexpr double batch_norm_momentum = 0.9;

inline Node conv_bn_relu(stratum::GraphModel<float>& m, Node x, stratum::Index filters, int kernel,
                         int stride) {
  using namespace stratum;
  x = m.add<Conv2D>(x, filters, kernel, Activation::linear, stride, Padding::same);
  x = m.add<BatchNormalization>(x, batch_norm_momentum);
  return m.add<ReLU>(x);
}

/// ResNet's basic block without a projection: ReLU(x + BN(conv(ReLU(BN(conv(x)))))).
inline Node residual_block(stratum::GraphModel<float>& m, Node x, stratum::Index filters) {
  using namespace stratum;
  Node y = conv_bn_relu(m, x, filters, 3, 1);
  y = m.add<Conv2D>(y, filters, 3, Activation::linear, 1, Padding::same);
  y = m.add<BatchNormalization>(y, batch_norm_momentum);
  return m.add<ReLU>(m.add<Add>({x, y}));
}

/// One FPN step: the coarser level upsampled, plus the finer backbone level brought to the same
/// channels by a 1x1 conv, then a 3x3 conv to smooth the sum.
inline Node fpn_merge(stratum::GraphModel<float>& m, Node coarse, Node lateral,
                      stratum::Index filters) {
  using namespace stratum;
  Node up = m.add<UpSampling2D>(coarse, 2);
  if (m.shape(up)[2] != filters) up = m.add<Conv2D>(up, filters, 1);
  Node side = m.add<Conv2D>(lateral, filters, 1);
  return conv_bn_relu(m, m.add<Add>({up, side}), filters, 3, 1);
}

}  // namespace detail

/// The detector network (file comment) for S x S inputs and `heatmap_channels` classes, built
/// and with the heatmap bias set; compile it with compile_detector.
inline std::unique_ptr<stratum::GraphModel<float>> build_detector_network(int input_size,
                                                                          int heatmap_channels,
                                                                          std::uint64_t seed) {
  using namespace stratum;
  using detail::conv_bn_relu;
  if (input_size < 32 || input_size % 32 != 0)
    throw Error("the detector's input size must be a multiple of 32 (at least 32), not " +
                std::to_string(input_size));
  auto model = std::make_unique<GraphModel<float>>(seed);
  GraphModel<float>& m = *model;
  Node image = m.input({input_size, input_size, 3}, "image");
  Node x = conv_bn_relu(m, image, 16, 3, 2);
  Node c4 = conv_bn_relu(m, conv_bn_relu(m, x, 32, 3, 2), 32, 3, 1);
  Node c8 = detail::residual_block(m, conv_bn_relu(m, c4, 64, 3, 2), 64);
  Node c16 = detail::residual_block(m, conv_bn_relu(m, c8, 96, 3, 2), 96);
  Node c32 = detail::residual_block(m, conv_bn_relu(m, c16, 128, 3, 2), 128);

  Node p = m.add<Conv2D>(c32, 64, 1);
  p = detail::fpn_merge(m, p, c16, 64);
  p = detail::fpn_merge(m, p, c8, 64);
  p = detail::fpn_merge(m, p, c4, 32);

  Node heat_trunk = m.add<Conv2D>(p, 32, 3, Activation::relu, 1, Padding::same);
  Node heatmap = m.add<Conv2D>(heat_trunk, heatmap_channels, 1);
  Node box_trunk = m.add<Conv2D>(p, 32, 3, Activation::relu, 1, Padding::same);
  Node size = m.add<Conv2D>(box_trunk, 2, 1);
  Node offset = m.add<Conv2D>(box_trunk, 2, 1);
  m.set_name(heatmap, "heatmap");
  m.set_name(size, "size");
  m.set_name(offset, "offset");
  m.build({heatmap, size, offset});
  auto* head = dynamic_cast<Conv2D<float>*>(m.layer(heatmap));
  head->bias().value.fill(heatmap_prior_bias);
  return model;
}

/// Weights of the three losses. CenterNet weighs size 0.1 because its size target is w / 4 in
/// cells, errors of several units; ours is log(w / 4) (centernet_targets.hpp), whose L1 errors
/// are relative (0.1 = a 10 % size error), of the same order as the offset's, so all weigh 1.
struct DetectorLossWeights {
  double heatmap = 1, size = 1, offset = 1;
};

/// Heatmap focal loss on the logits, masked L1 on size and offset (at object centres only).
inline void compile_detector(stratum::GraphModel<float>& model, double learning_rate,
                             double weight_decay, DetectorLossWeights weights = {}) {
  using namespace stratum;
  std::vector<OutputLoss<float>> losses;
  losses.push_back({std::make_unique<HeatmapFocalLoss<float>>(), weights.heatmap});
  losses.push_back({std::make_unique<L1Loss<float>>(), weights.size});
  losses.push_back({std::make_unique<L1Loss<float>>(), weights.offset});
  model.compile(std::move(losses),
                std::make_unique<Adam<float>>(learning_rate, 0.9, 0.999, 1e-7, weight_decay));
}

/// Multiply-adds of one forward pass of one sample through the convolutions (the layers that
/// cost; BatchNormalization, ReLU, Add and UpSampling2D are a few operations per value):
/// output cells x kernel area x input channels x filters, per Conv2D.
inline double detector_multiply_adds(stratum::GraphModel<float>& model) {
  using namespace stratum;
  double total = 0;
  for (std::size_t i = 0; i < model.node_count(); ++i) {
    const Node n = model.node_at(i);
    auto* conv = dynamic_cast<Conv2D<float>*>(model.layer(n));
    if (!conv) continue;
    const Shape& out = model.shape(n);
    const Shape& in = model.shape(model.inputs_of(n)[0]);
    total += double(out[0]) * double(out[1]) * double(out[2]) *
             double(conv->kernel_size().h * conv->kernel_size().w) * double(in[2]);
  }
  return total;
}

/// What a detector model file's metadata says (the contract with `detect`).
struct DetectorInfo {
  int input_size = 512;
  int stride = detector_stride;
  std::vector<std::string> classes;  // in heatmap channel order
  std::string design = "one-stage";  // or "face-then-classifier"
};

inline std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

inline stratum::Metadata detector_metadata(const DetectorInfo& info) {
  return {{"kind", "detector"},
          {"input_size", std::to_string(info.input_size)},
          {"stride", std::to_string(info.stride)},
          {"classes", join_names(info.classes)},
          {"design", info.design}};
}

/// Reads the metadata of a detector model file named `file`; throws naming it when it is not
/// one.
inline DetectorInfo read_detector_info(const stratum::Metadata& metadata, const std::string& file) {
  auto field = [&](const std::string& key) {
    const auto it = metadata.find(key);
    if (it == metadata.end())
      throw stratum::IoError("'" + file + "' is not a detector model: its metadata has no '" + key +
                             "'");
    return it->second;
  };
  if (field("kind") != "detector")
    throw stratum::IoError("'" + file + "' is a '" + field("kind") + "' model, not a detector");
  DetectorInfo info;
  info.input_size = std::stoi(field("input_size"));
  info.stride = std::stoi(field("stride"));
  info.design = field("design");
  std::stringstream names(field("classes"));
  for (std::string name; std::getline(names, name, ',');) info.classes.push_back(name);
  if (info.classes.empty()) throw stratum::IoError("'" + file + "' names no classes");
  return info;
}

}  // namespace mask_detection
