// Finding faces and their mask class in a photo with a trained detector model file.
//
// The model file (save_graph_model) is the contract between train-detector and detect:
//
//   metadata  kind        "detector"
//             input_size  S, the letterbox side (the network's input is S x S x 3, pixel / 255)
//             stride      R, input pixels per output cell (4)
//             classes     heatmap channel names in order, comma-separated
//             design      "one-stage": a heatmap channel per class;
//                         "face-then-classifier": one channel ("face"), each face then labelled
//                         by the compact classifier (a Sequential model file, load_model)
//             optional:   size_encoding "log" (default) or "linear" (centernet_targets.hpp),
//                         score_threshold (default 0.3), the operating point detect uses,
//                         crop_margin (default 0.2), the classifier crop's margin (below)
//   outputs   heatmap LOGITS (S/R, S/R, classes), size (S/R, S/R, 2), offset (S/R, S/R, 2),
//             in the units of centernet_targets.hpp / decode.hpp
//
// Detecting in a W x H photo:
//   1. letterbox it (data/letterbox.hpp), scale pixels to [0, 1], run the network. The
//      letterbox is the TIGHT one: the photo at the scale of the S x S square, in a box rounded
//      up to multiples of the network's coarsest stride m (input_multiple()), so a 4:3 photo
//      runs at S x 3S/4 and none of the network's work goes to padding the square would add.
//      The network is built for each box shape the first time one is asked for (the same
//      weights: with_input_shapes). DetectorOptions::square_letterbox runs the S x S square of
//      training instead;
//   2. decode the maps (decode.hpp: 3x3 peaks, top 100, score = sigmoid(logit) >= threshold);
//   3. map each box back to the photo's pixels (Letterbox::to_image, clipped to the photo) and
//      drop the ones left empty (entirely on the padding);
//      With several input sizes (DetectorOptions::input_sizes), steps 1-3 run at each size (the
//      same weights in a network built for that size: with_input_shapes): a larger letterbox
//      shows small faces with more pixels, the trained one keeps large faces whole;
//   4. non-maximum suppression at IoU 0.5 ACROSS classes (and sizes), the top 100 kept: a face
//      has one class, so peaks of two classes on one face (with_mask and mask_weared_incorrect
//      look alike) are one face, and the stronger one stays;
//   5. face-then-classifier only: each face box, widened by crop_margin times its width on the
//      left and right and its height on the top and bottom (the classifier was trained on
//      photos of whole heads, not tight face boxes), clipped to the photo, is resized to the
//      classifier's input (stretched, as its training loader does) and classified; the
//      detection's class is the classifier's label and its score face score x label
//      probability (the probability that this is a face with that label), which must still
//      reach the threshold.
// The result is deterministic: the same photo and model give the same boxes on any thread count
// up to the last bits of the network's sums.
#pragma once

#include <stratum/data/letterbox.hpp>
#include <stratum/detection/decode.hpp>
#include <stratum/detection/nms.hpp>
#include <stratum/model/fold_batch_normalization.hpp>
#include <stratum/model/graph_serialization.hpp>
#include <stratum/stratum.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace mask_detection {

struct DetectorOptions {
  float score_threshold = 0.3f;  ///< detections scoring less are dropped
  float iou_threshold = 0.5f;    ///< of the non-maximum suppression across classes
  int top_k = 100;               ///< peaks decoded per photo (and per input size) at most
  /// Letterbox sides to run the network at, multiples of the model's stride; the detections of
  /// all of them are merged (step 4 of the file comment). Empty: the model's input_size alone.
  std::vector<int> input_sizes;
  /// Letterbox each photo into the S x S square, as training does, instead of the tight box of
  /// step 1 (same scale, less padding). The detections differ only where the network's
  /// receptive field reaches the padding the square adds.
  bool square_letterbox = false;
};

enum class DetectorDesign { one_stage, face_then_classifier };

class Detector {
 public:
  /// Loads a detector model file (see the file comment). `classifier` is the Sequential
  /// classifier model file that labels faces when the detector's design is
  /// face-then-classifier; it is not read otherwise. Throws stratum::IoError naming the file and
  /// the metadata or output at fault.
  static Detector load(const std::filesystem::path& path, const std::filesystem::path& classifier) {
    return Detector(stratum::load_graph_model<float>(path), path.string(), classifier);
  }

  /// A loaded detector model; `name` names it in error messages.
  Detector(stratum::LoadedGraphModel<float> loaded, const std::string& name,
           const std::filesystem::path& classifier)
      : name_(name) {
    auto& meta = loaded.metadata;
    if (meta["kind"] != "detector")
      throw stratum::IoError("'" + name_ + "' is not a detector model (its metadata 'kind' is '" +
                             meta["kind"] + "', not 'detector')");
    input_size_ = positive_int(meta, "input_size");
    encoding_.stride = positive_int(meta, "stride");
    heatmap_classes_ = split_names(required(meta, "classes"), "classes");
    const std::string design = required(meta, "design");
    if (design == "one-stage")
      design_ = DetectorDesign::one_stage;
    else if (design == "face-then-classifier")
      design_ = DetectorDesign::face_then_classifier;
    else
      fail("has design '" + design + "' (one-stage or face-then-classifier)");
    const std::string encoding = meta.count("size_encoding") ? meta["size_encoding"] : "log";
    if (encoding != "log" && encoding != "linear")
      fail("has size_encoding '" + encoding + "' (log or linear)");
    encoding_.size_encoding =
        encoding == "log" ? stratum::SizeEncoding::log : stratum::SizeEncoding::linear;
    encoding_.classes = static_cast<int>(heatmap_classes_.size());
    if (meta.count("score_threshold"))
      default_options_.score_threshold = static_cast<float>(fraction(meta, "score_threshold"));
    if (meta.count("crop_margin")) crop_margin_ = static_cast<float>(fraction(meta, "crop_margin"));
    check_network(*loaded.model);
    input_multiple_ = coarsest_stride(*loaded.model);
    // Inference only from here: each convolution - batch normalisation - ReLU chain runs as one
    // convolution (model/fold_batch_normalization.hpp).
    scales_[{input_size_, input_size_}] = {
        stratum::fold_batch_normalization(*loaded.model),
        stratum::Tensor<float>({1, input_size_, input_size_, 3})};
    if (design_ == DetectorDesign::face_then_classifier) load_classifier(classifier);
  }

  /// The faces in `photo`, in its pixels, by descending score; class_id indexes class_names().
  std::vector<stratum::Detection> detect(const stratum::Image& photo,
                                         const DetectorOptions& options) {
    const std::vector<int> sizes =
        options.input_sizes.empty() ? std::vector<int>{input_size_} : options.input_sizes;
    std::vector<stratum::Detection> found;
    for (int size : sizes) {
      const std::vector<stratum::Detection> at_size = detect_at(size, photo, options);
      found.insert(found.end(), at_size.begin(), at_size.end());
    }
    found = stratum::non_maximum_suppression(found, options.iou_threshold, /*across_classes=*/true);
    if (found.size() > static_cast<std::size_t>(options.top_k))
      found.resize(static_cast<std::size_t>(options.top_k));
    if (design_ == DetectorDesign::face_then_classifier) {
      classify_faces(photo, found);
      std::erase_if(found, [&](const stratum::Detection& d) {
        return !(d.score >= options.score_threshold);
      });
      std::stable_sort(found.begin(), found.end(),
                       [](const auto& a, const auto& b) { return a.score > b.score; });
    }
    return found;
  }

  /// The names of the classes detections carry: the heatmap's classes (one-stage) or the
  /// classifier's labels (face-then-classifier).
  [[nodiscard]] const std::vector<std::string>& class_names() const {
    return design_ == DetectorDesign::one_stage ? heatmap_classes_ : classifier_classes_;
  }
  /// The options the model's metadata suggests (its score_threshold).
  [[nodiscard]] const DetectorOptions& default_options() const { return default_options_; }
  [[nodiscard]] DetectorDesign design() const { return design_; }
  [[nodiscard]] int input_size() const { return input_size_; }
  /// m of step 1: the letterbox's sides are multiples of it, and so must input sizes be.
  [[nodiscard]] int input_multiple() const { return input_multiple_; }
  /// The network at the model's input size (S x S).
  [[nodiscard]] stratum::GraphModel<float>& network() {
    return *scales_.at({input_size_, input_size_}).network;
  }
  /// The network detect runs for a width x height photo at the model's input size: at its
  /// tight letterbox's box, or S x S with `square_letterbox`.
  [[nodiscard]] stratum::GraphModel<float>& network_for(int width, int height,
                                                        bool square_letterbox = false) {
    const stratum::Letterbox box = geometry_for(width, height, input_size_, square_letterbox);
    return *scale_at(box.width, box.height).network;
  }

 private:
  /// The network at one input size, and its input.
  struct Scale {
    std::unique_ptr<stratum::GraphModel<float>> network;
    stratum::Tensor<float> input;
  };

  /// Steps 1-3 of the file comment at letterbox side `size`.
  std::vector<stratum::Detection> detect_at(int size, const stratum::Image& photo,
                                            const DetectorOptions& options) {
    if (size < input_multiple_ || size % input_multiple_ != 0)
      throw stratum::Error("input size " + std::to_string(size) + " is not a multiple of " +
                           std::to_string(input_multiple_) + ", the coarsest stride of " + name_ +
                           "'s network");
    const stratum::Letterbox geometry =
        geometry_for(photo.width, photo.height, size, options.square_letterbox);
    Scale& scale = scale_at(geometry.width, geometry.height);
    const stratum::LetterboxedImage boxed = stratum::letterbox(photo, geometry);
    for (stratum::Index p = 0; p < scale.input.size(); ++p)
      scale.input[p] = static_cast<float>(boxed.image.pixels[static_cast<std::size_t>(p)]) / 255.0f;
    const stratum::Tensor<float>* input = &scale.input;
    const auto& maps = scale.network->forward(
        std::span<const stratum::Tensor<float>* const>(&input, 1), stratum::Mode::inference);
    stratum::CenterNetDecodeOptions decode;
    decode.top_k = options.top_k;
    decode.score_threshold = options.score_threshold;
    decode.from_logits = true;
    std::vector<stratum::Detection> found =
        stratum::decode_centernet(*maps[0], *maps[1], *maps[2], encoding_, decode)[0];
    for (auto& d : found) d.box = boxed.geometry.to_image(d.box);
    std::erase_if(found, [](const stratum::Detection& d) { return d.box.area() <= 0; });
    return found;
  }

  /// Step 1's letterbox of a width x height photo at side `size`.
  [[nodiscard]] stratum::Letterbox geometry_for(int width, int height, int size,
                                                bool square_letterbox) const {
    return square_letterbox
               ? stratum::letterbox_geometry(width, height, size)
               : stratum::tight_letterbox_geometry(width, height, size, input_multiple_);
  }

  /// The network for a width x height letterbox, built from the model's the first time it is
  /// asked for.
  Scale& scale_at(int width, int height) {
    const std::pair<int, int> key{height, width};
    if (const auto found = scales_.find(key); found != scales_.end()) return found->second;
    Scale scale;
    try {
      scale.network = stratum::with_input_shapes(network(), {{height, width, 3}});
    } catch (const stratum::Error& e) {
      throw stratum::Error("'" + name_ + "' cannot run on a " + std::to_string(width) + "x" +
                           std::to_string(height) + " letterbox: " + e.what());
    }
    scale.input = stratum::Tensor<float>({1, height, width, 3});
    return scales_.emplace(key, std::move(scale)).first->second;
  }

  /// The largest factor by which the network shrinks its input (32 for the shipped detector's
  /// backbone): a box whose sides are multiples of it gives every level whole cells, so the
  /// upsampled levels line up with the ones they are added to. At least the output stride.
  [[nodiscard]] int coarsest_stride(stratum::GraphModel<float>& net) const {
    int stride = encoding_.stride;
    for (std::size_t i = 0; i < net.node_count(); ++i) {
      const stratum::Shape& shape = net.shape(net.node_at(i));
      if (shape.rank() == 3 && shape[0] > 0 && input_size_ % shape[0] == 0)
        stride = std::max(stride, input_size_ / static_cast<int>(shape[0]));
    }
    return stride;
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw stratum::IoError("'" + name_ + "' " + what);
  }

  std::string required(stratum::Metadata& meta, const std::string& key) const {
    if (!meta.count(key)) fail("has no '" + key + "' in its metadata: it is not a detector model");
    return meta[key];
  }

  int positive_int(stratum::Metadata& meta, const std::string& key) const {
    const std::string text = required(meta, key);
    std::size_t used = 0;
    int value = 0;
    try {
      value = std::stoi(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != text.size() || value < 1 || value > 1 << 16)
      fail("has '" + key + "' = '" + text + "', not a positive whole number");
    return value;
  }

  double fraction(stratum::Metadata& meta, const std::string& key) const {
    const std::string text = meta[key];
    std::size_t used = 0;
    double value = -1;
    try {
      value = std::stod(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != text.size() || !(value >= 0 && value <= 1))
      fail("has '" + key + "' = '" + text + "', not a number from 0 to 1");
    return value;
  }

  std::vector<std::string> split_names(const std::string& list, const std::string& key) const {
    std::vector<std::string> names;
    std::size_t start = 0;
    for (;;) {
      const std::size_t comma = list.find(',', start);
      names.push_back(list.substr(start, comma - start));
      if (names.back().empty()) fail("has an empty name in its '" + key + "': '" + list + "'");
      if (comma == std::string::npos) return names;
      start = comma + 1;
    }
  }

  /// The input and the three outputs must have the shapes the metadata promises.
  void check_network(stratum::GraphModel<float>& net) const {
    const int s = input_size_, r = encoding_.stride;
    if (s % r != 0) fail("has input_size " + std::to_string(s) + ", not a multiple of its stride");
    if (design_ == DetectorDesign::face_then_classifier && heatmap_classes_.size() != 1)
      fail("is a face-then-classifier detector with " + std::to_string(heatmap_classes_.size()) +
           " heatmap classes (it finds faces: one class)");
    if (net.input_count() != 1 || net.shape(net.input_node(0)) != stratum::Shape{s, s, 3})
      fail("has a network whose input is not one " + std::to_string(s) + "x" + std::to_string(s) +
           " RGB image (input_size " + std::to_string(s) + ")");
    if (net.output_count() != 3)
      fail("has a network with " + std::to_string(net.output_count()) +
           " outputs, not 3 (heatmap, size, offset)");
    const stratum::Index cells = s / r;
    const stratum::Shape expected[3] = {
        {cells, cells, static_cast<stratum::Index>(heatmap_classes_.size())},
        {cells, cells, 2},
        {cells, cells, 2}};
    const char* what[3] = {"heatmap", "size", "offset"};
    for (std::size_t o = 0; o < 3; ++o)
      if (net.shape(net.output_node(o)) != expected[o])
        fail("has a " + std::string(what[o]) + " output '" + net.output_name(o) + "' of shape " +
             net.shape(net.output_node(o)).to_string() + ", expected " + expected[o].to_string() +
             " (input_size / stride, classes)");
  }

  void load_classifier(const std::filesystem::path& path) {
    if (!std::filesystem::exists(path))
      fail("finds faces and needs the face classifier '" + path.string() +
           "' to label them, which is missing");
    stratum::LoadedModel<float> loaded = stratum::load_model<float>(path);
    auto& meta = loaded.metadata;
    const std::string file = "'" + path.string() + "'";
    if (!loaded.model->has_loss())
      throw stratum::IoError(file + " has no loss, so its outputs cannot be read as classes");
    if (!meta.count("class_names"))
      throw stratum::IoError(file + " has no class_names in its metadata");
    classifier_classes_ = split_names(meta["class_names"], "class_names of " + file);
    const stratum::Shape& input = loaded.model->input_shape();
    if (input.rank() != 3 || input[2] != 3)
      throw stratum::IoError(file + " expects input " + input.to_batch_string() +
                             ", not RGB images");
    classifier_ = stratum::fold_batch_normalization(*loaded.model);  // inference only, as above
  }

  /// Step 5 of the file comment, on every face at once (one batch through the classifier).
  void classify_faces(const stratum::Image& photo, std::vector<stratum::Detection>& faces) {
    if (faces.empty()) return;
    const stratum::Shape& input = classifier_->input_shape();
    const int height = static_cast<int>(input[0]), width = static_cast<int>(input[1]);
    const auto count = static_cast<stratum::Index>(faces.size());
    crops_.resize({count, height, width, 3});
    const stratum::Index crop_size = stratum::Index{height} * width * 3;
    for (stratum::Index k = 0; k < count; ++k) {
      const stratum::Image crop =
          stratum::resize_image(cut(photo, faces[static_cast<std::size_t>(k)].box), width, height);
      for (stratum::Index p = 0; p < crop_size; ++p)
        crops_[k * crop_size + p] =
            static_cast<float>(crop.pixels[static_cast<std::size_t>(p)]) / 255.0f;
    }
    const stratum::Tensor<float>& out = classifier_->forward(crops_, stratum::Mode::inference);
    const stratum::Index outputs = out.dim(1);
    std::vector<double> probabilities(std::max<std::size_t>(classifier_classes_.size(), 2));
    for (stratum::Index k = 0; k < count; ++k) {
      const float* row = out.data() + k * outputs;
      auto& face = faces[static_cast<std::size_t>(k)];
      classifier_->loss().class_probabilities(row, outputs, probabilities.data());
      face.class_id = classifier_->loss().predicted_label(row, outputs);
      if (face.class_id < 0 ||
          static_cast<std::size_t>(face.class_id) >= classifier_classes_.size())
        throw stratum::IoError("the face classifier's label " + std::to_string(face.class_id) +
                               " has no name in its class_names");
      face.score *= static_cast<float>(probabilities[static_cast<std::size_t>(face.class_id)]);
    }
  }

  /// The pixels of `box` widened by the crop margin, clipped to the photo (at least 1 pixel).
  [[nodiscard]] stratum::Image cut(const stratum::Image& photo, const stratum::Box& box) const {
    const float mx = crop_margin_ * box.width(), my = crop_margin_ * box.height();
    auto column = [&](float x) {
      return std::clamp(static_cast<int>(std::floor(x)), 0, photo.width);
    };
    auto row = [&](float y) {
      return std::clamp(static_cast<int>(std::floor(y)), 0, photo.height);
    };
    const int x0 = std::min(column(box.x_min - mx), photo.width - 1);
    const int y0 = std::min(row(box.y_min - my), photo.height - 1);
    const int x1 = std::max(column(std::ceil(box.x_max + mx)), x0 + 1);
    const int y1 = std::max(row(std::ceil(box.y_max + my)), y0 + 1);
    stratum::Image crop;
    crop.width = x1 - x0;
    crop.height = y1 - y0;
    crop.pixels.resize(static_cast<std::size_t>(crop.width) *
                       static_cast<std::size_t>(crop.height) * 3);
    for (int y = 0; y < crop.height; ++y) {
      const auto from =
          photo.pixels.begin() + (static_cast<std::ptrdiff_t>(y0 + y) * photo.width + x0) * 3;
      std::copy(from, from + crop.width * 3,
                crop.pixels.begin() + static_cast<std::ptrdiff_t>(y) * crop.width * 3);
    }
    return crop;
  }

  std::map<std::pair<int, int>, Scale> scales_;  // the network by letterbox (height, width)
  std::string name_;
  int input_size_ = 0;
  int input_multiple_ = 1;
  stratum::CenterNetEncoding encoding_;
  std::vector<std::string> heatmap_classes_;
  DetectorDesign design_ = DetectorDesign::one_stage;
  DetectorOptions default_options_;
  float crop_margin_ = 0.2f;

  std::unique_ptr<stratum::Sequential<float>> classifier_;
  std::vector<std::string> classifier_classes_;
  stratum::Tensor<float> crops_;
};

}  // namespace mask_detection
