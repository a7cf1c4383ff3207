// `mask_detector detect` on one 640 x 480 photo, with 2 threads: the target is at most
// 25 ms a photo, decoding included.
//
//   detector_network/S      the network alone on an S x S input (one image)
//   detect_photo/S          what Detector::detect does: letterbox the photo to S x S, the
//                           network, CenterNet decoding (3x3 peaks, top 100), NMS, boxes mapped
//                           back to the photo
//   detect_jpeg_photo/S     the photo's JPEG decoded from memory, then detect_photo, then the
//                           boxes and labels drawn on a copy (all of detect but the file I/O)
//
// S is the letterbox side: 384 (train-detector's default) and 512 (the reference detector's).
// Counters: "GFLOP" the network's forward pass per photo (2 per multiply-add of its Conv2D
// layers), "GFLOP/s" that over the wall time, "images/s".
//
// The network has train-detector's layers (detector_model.hpp, build_detector_network, as of
// the dettrain branch's commit 169b260): stem stride 2, stages to stride 32 with residual
// blocks, a small FPN back to stride 4, heatmap and box heads. Its weights are random: the
// time of a forward pass does not depend on them, and decoding scans every cell whatever it
// holds.
#include <mask_detection/detector_inference.hpp>
#include <mask_detection/draw_boxes.hpp>

#include "bench_common.hpp"

namespace stratum::bench {
namespace {

Node detector_conv_bn_relu(GraphModel<float>& m, Node x, Index filters, int kernel, int stride) {
  x = m.add<Conv2D>(x, filters, kernel, Activation::linear, stride, Padding::same);
  x = m.add<BatchNormalization>(x, 0.9);
  return m.add<ReLU>(x);
}

Node detector_residual_block(GraphModel<float>& m, Node x, Index filters) {
  Node y = detector_conv_bn_relu(m, x, filters, 3, 1);
  y = m.add<Conv2D>(y, filters, 3, Activation::linear, 1, Padding::same);
  y = m.add<BatchNormalization>(y, 0.9);
  return m.add<ReLU>(m.add<Add>({x, y}));
}

Node detector_fpn_merge(GraphModel<float>& m, Node coarse, Node lateral, Index filters) {
  Node up = m.add<UpSampling2D>(coarse, 2);
  if (m.shape(up)[2] != filters) up = m.add<Conv2D>(up, filters, 1);
  Node side = m.add<Conv2D>(lateral, filters, 1);
  return detector_conv_bn_relu(m, m.add<Add>({up, side}), filters, 3, 1);
}

/// train-detector's network for S x S inputs and 3 classes (file comment).
std::unique_ptr<GraphModel<float>> detector_network(int size) {
  auto model = std::make_unique<GraphModel<float>>(1);
  GraphModel<float>& m = *model;
  Node image = m.input({size, size, 3}, "image");
  Node x = detector_conv_bn_relu(m, image, 16, 3, 2);
  Node c4 = detector_conv_bn_relu(m, detector_conv_bn_relu(m, x, 32, 3, 2), 32, 3, 1);
  Node c8 = detector_residual_block(m, detector_conv_bn_relu(m, c4, 64, 3, 2), 64);
  Node c16 = detector_residual_block(m, detector_conv_bn_relu(m, c8, 96, 3, 2), 96);
  Node c32 = detector_residual_block(m, detector_conv_bn_relu(m, c16, 128, 3, 2), 128);
  Node p = m.add<Conv2D>(c32, 64, 1);
  p = detector_fpn_merge(m, p, c16, 64);
  p = detector_fpn_merge(m, p, c8, 64);
  p = detector_fpn_merge(m, p, c4, 32);
  Node heat_trunk = m.add<Conv2D>(p, 32, 3, Activation::relu, 1, Padding::same);
  Node heatmap = m.add<Conv2D>(heat_trunk, 3, 1);
  Node box_trunk = m.add<Conv2D>(p, 32, 3, Activation::relu, 1, Padding::same);
  Node size_map = m.add<Conv2D>(box_trunk, 2, 1);
  Node offset = m.add<Conv2D>(box_trunk, 2, 1);
  m.build({heatmap, size_map, offset});
  dynamic_cast<Conv2D<float>*>(m.layer(heatmap))->bias().value.fill(-2.19f);
  return model;
}

/// FLOPs of one forward pass: 2 per multiply-add of every layer with a kernel (output
/// positions x kernel size, for Conv2D and DepthwiseConv2D alike).
double graph_forward_flops(GraphModel<float>& model) {
  double flops = 0;
  for (std::size_t i = 0; i < model.node_count(); ++i) {
    const Node n = model.node_at(i);
    Layer<float>* layer = model.layer(n);
    if (!layer) continue;
    const Shape& out = model.shape(n);
    const double positions = double(out.num_elements()) / double(out[out.rank() - 1]);
    for (auto* p : layer->parameters())
      if (p->name == "kernel" || p->name == "depthwise_kernel")
        flops += 2.0 * double(p->value.size()) * positions;
  }
  return flops;
}

mask_detection::Detector bench_detector(int size) {
  LoadedGraphModel<float> loaded{detector_network(size),
                                 {{"kind", "detector"},
                                  {"input_size", std::to_string(size)},
                                  {"stride", "4"},
                                  {"classes", "with_mask,without_mask,mask_weared_incorrect"},
                                  {"design", "one-stage"}}};
  return mask_detection::Detector(std::move(loaded), "benchmark detector", "");
}

/// A 640 x 480 photo of smooth random blobs (closer to a photo than noise, for the JPEG).
Image bench_photo() {
  Image photo{640, 480, std::vector<std::uint8_t>(640 * 480 * 3)};
  Random rng(3);
  const double fx = rng.uniform(0.01, 0.05), fy = rng.uniform(0.01, 0.05);
  for (int y = 0; y < 480; ++y)
    for (int x = 0; x < 640; ++x)
      for (int c = 0; c < 3; ++c)
        photo.pixels[static_cast<std::size_t>((y * 640 + x) * 3 + c)] = static_cast<std::uint8_t>(
            127 + 100 * std::sin(fx * x * (c + 1)) * std::cos(fy * y) + rng.uniform(-20, 20));
  return photo;
}

/// Runs `body` with 2 threads, restoring the count after.
class TwoThreads {
 public:
  TwoThreads() : saved_(num_threads()) { set_num_threads(2); }
  ~TwoThreads() { set_num_threads(saved_); }
  TwoThreads(const TwoThreads&) = delete;
  TwoThreads& operator=(const TwoThreads&) = delete;

 private:
  int saved_;
};

void report_detector(benchmark::State& state, GraphModel<float>& network) {
  const double flops = graph_forward_flops(network);
  state.counters["GFLOP"] = flops * 1e-9;
  report(state, flops, 1);
}

void detector_network_forward(benchmark::State& state) {
  const TwoThreads threads;
  const auto size = static_cast<int>(state.range(0));
  auto network = detector_network(size);
  Tensor<float> x({1, size, size, 3});
  Random rng(5);
  for (auto& v : x) v = static_cast<float>(rng.uniform());
  network->forward(std::vector<Tensor<float>>{x}, Mode::inference);
  for (auto _ : state)
    benchmark::DoNotOptimize(network->forward(std::vector<Tensor<float>>{x}, Mode::inference));
  report_detector(state, *network);
}

void detect_photo(benchmark::State& state) {
  const TwoThreads threads;
  auto detector = bench_detector(static_cast<int>(state.range(0)));
  const Image photo = bench_photo();
  const mask_detection::DetectorOptions options;
  std::size_t found = detector.detect(photo, options).size();
  for (auto _ : state) benchmark::DoNotOptimize(found = detector.detect(photo, options).size());
  state.counters["detections"] = double(found);
  report_detector(state, detector.network());
}

void detect_jpeg_photo(benchmark::State& state) {
  const TwoThreads threads;
  auto detector = bench_detector(static_cast<int>(state.range(0)));
  const Image photo = bench_photo();
  // The photo as a JPEG file's bytes (quality 90), as detect reads it.
  const auto path = std::filesystem::temp_directory_path() / "stratum-bench-detect.jpg";
  if (!stbi_write_jpg(path.string().c_str(), photo.width, photo.height, 3, photo.pixels.data(), 90))
    throw IoError("cannot write '" + path.string() + "'");
  const std::vector<std::uint8_t> jpeg = read_file(path);
  std::filesystem::remove(path);
  const mask_detection::DetectorOptions options;
  for (auto _ : state) {
    const Image decoded = decode_image(jpeg, "photo.jpg");
    const auto found = detector.detect(decoded, options);
    benchmark::DoNotOptimize(
        mask_detection::draw_detections(decoded, found, detector.class_names()).pixels.data());
  }
  report_detector(state, detector.network());
}

BENCHMARK(detector_network_forward)
    ->Arg(384)
    ->Arg(512)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2);
BENCHMARK(detect_photo)
    ->Arg(384)
    ->Arg(512)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2);
BENCHMARK(detect_jpeg_photo)
    ->Arg(384)
    ->Arg(512)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2);

}  // namespace
}  // namespace stratum::bench
