// `mask_detector detect` on one 640 x 480 photo, with 2 threads: the target is at most
// 25 ms a photo, decoding included.
//
//   detector_network_forward/W/H  the network alone on a W x H input (one image), as `detect`
//                               runs it: batch normalisation folded into the convolutions.
//                               512 x 384 is the tight letterbox of a 4:3 photo at S = 512
//   detect_photo/S              what Detector::detect does: letterbox the photo (the tight box
//                               at the scale of the S x S square: S x 3S/4 for this 4:3 photo),
//                               the network, CenterNet decoding (3x3 peaks, top 100), NMS,
//                               boxes mapped back to the photo
//   detect_jpeg_photo/S         the photo's JPEG decoded from memory, then detect_photo, then the
//                               boxes and labels drawn on a copy (all of detect but the file I/O)
//   letterbox_photo/S           the photo letterboxed as detect_photo does (stb's filters in
//                               stratum's loops, data/resample.hpp, on the 2 threads)
//   stb_resize_photo/S          the same resize by one stb_image_resize call (one thread), which
//                               gives the same bytes: what the letterbox cost before
//   detect_shipped_scene/square:Q  all of detect_jpeg_photo with the models `detect` ships
//                               (models/: the detector at its letterbox size, and the compact
//                               classifier labelling each face it finds) on a real test scene
//                               with faces, maksssksksss232 of ../shared (400 x 300, 5 faces
//                               annotated) enlarged to 640 x 480; skipped when the scenes are
//                               not there. Q = 0: the tight letterbox `detect` uses, 1: the
//                               S x S square (--square-letterbox). Counter "detections": the
//                               faces it reports
//
// S is the letterbox side: 384 and 512 (the shipped detector's and the reference detector's).
// Counters: "GFLOP" the network's forward pass per photo at the box it runs at (2 per multiply-add
// of its Conv2D layers), "GFLOP/s" that over the wall time, "images/s".
//
// The network is train-detector's (detector_model.hpp, build_detector_network): stem stride 2,
// stages to stride 32 with residual blocks, a small FPN back to stride 4, heatmap and box heads.
// Its weights are random: the time of a forward pass does not depend on them, and decoding
// scans every cell whatever it holds.
#include <mask_detection/detector_inference.hpp>
#include <mask_detection/detector_model.hpp>
#include <mask_detection/draw_boxes.hpp>
#include <stratum/model/fold_batch_normalization.hpp>

#include "bench_common.hpp"

namespace stratum::bench {
namespace {

/// train-detector's network for S x S inputs and 3 classes, with random weights.
std::unique_ptr<GraphModel<float>> detector_network(int size) {
  return mask_detection::build_detector_network(size, 3, 1);
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
  const double flops = 2 * mask_detection::detector_multiply_adds(network);
  state.counters["GFLOP"] = flops * 1e-9;
  report(state, flops, 1);
}

void detector_network_forward(benchmark::State& state) {
  const TwoThreads threads;
  const auto width = static_cast<int>(state.range(0)), height = static_cast<int>(state.range(1));
  auto network =
      with_input_shapes(*fold_batch_normalization(*detector_network(width)), {{height, width, 3}});
  Tensor<float> x({1, height, width, 3});
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
  report_detector(state, detector.network_for(photo.width, photo.height));
}

/// All of `detect` but the file I/O, on `photo` stored as a JPEG (quality 90): decode, detect,
/// draw. Counts the detections of the last run.
void detect_from_jpeg(benchmark::State& state, mask_detection::Detector& detector,
                      const Image& photo, bool square_letterbox = false) {
  const std::vector<std::uint8_t> jpeg = encode_jpeg(photo, 90);
  mask_detection::DetectorOptions options = detector.default_options();
  options.square_letterbox = square_letterbox;
  std::size_t found = 0;
  for (auto _ : state) {
    const Image decoded = decode_image(jpeg, "photo.jpg");
    const auto detections = detector.detect(decoded, options);
    found = detections.size();
    benchmark::DoNotOptimize(
        mask_detection::draw_detections(decoded, detections, detector.class_names()).pixels.data());
  }
  state.counters["detections"] = double(found);
  report_detector(state, detector.network_for(photo.width, photo.height, square_letterbox));
}

void detect_jpeg_photo(benchmark::State& state) {
  const TwoThreads threads;
  auto detector = bench_detector(static_cast<int>(state.range(0)));
  detect_from_jpeg(state, detector, bench_photo());
}

void detect_shipped_scene(benchmark::State& state) {
  const TwoThreads threads;
  const std::filesystem::path scene =
      std::filesystem::path(STRATUM_SHARED_DETECTION_DATASET) / "images" / "maksssksksss232.jpg";
  if (!std::filesystem::exists(scene)) {
    state.SkipWithError(("no scene at " + scene.string()).c_str());
    return;
  }
  auto detector = mask_detection::Detector::load(STRATUM_SHIPPED_DETECTOR, STRATUM_SHIPPED_MODEL);
  detect_from_jpeg(state, detector, resize_image(load_image(scene), 640, 480), state.range(0) != 0);
}

void letterbox_photo(benchmark::State& state) {
  const TwoThreads threads;
  const Image photo = bench_photo();
  const Letterbox geometry =
      tight_letterbox_geometry(photo.width, photo.height, static_cast<int>(state.range(0)), 32);
  for (auto _ : state) benchmark::DoNotOptimize(letterbox(photo, geometry).image.pixels.data());
  report_images(state, 1);
}

void stb_resize_photo(benchmark::State& state) {
  const Image photo = bench_photo();
  const Letterbox g =
      letterbox_geometry(photo.width, photo.height, static_cast<int>(state.range(0)));
  std::vector<std::uint8_t> out(static_cast<std::size_t>(g.resized_width * g.resized_height * 3));
  for (auto _ : state) {
    if (!stbir_resize_uint8(photo.pixels.data(), photo.width, photo.height, 0, out.data(),
                            g.resized_width, g.resized_height, 0, 3))
      throw Error("stb_image_resize failed");
    benchmark::DoNotOptimize(out.data());
  }
  report_images(state, 1);
}

BENCHMARK(detector_network_forward)
    ->Args({384, 384})
    ->Args({512, 512})
    ->Args({512, 384})
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
BENCHMARK(detect_shipped_scene)
    ->ArgName("square")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2);
BENCHMARK(letterbox_photo)->Arg(384)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(stb_resize_photo)->Arg(384)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace stratum::bench
