// Model files: a Sequential model's architecture, loss and weights in one binary file.
//
// Layout (little-endian; "str" is a u32 length and that many bytes), inside the envelope of
// file_envelope.hpp (magic 89 'S' 'T' 'R' 0D 0A 1A 0A, version 1, size ... checksum):
//
//   metadata     u32 n, then n pairs (str key, str value)     free-form: class names, image size...
//   input shape  u32 rank, rank x i64
//   loss         str type ("" for none), u8 from_logits
//   layers       u32 n, then per layer:
//                  str type, u32 k, k x (str key, f64 value)      its LayerConfig
//                  u32 p, then per parameter: str name, u32 rank, rank x i64, f32 values
//                  (every weight, the non-trainable ones such as moving statistics included)
//
// Saving writes a temporary file and renames it over the target, so a crash never leaves a
// half-written model in place of a good one. Loading checks the magic, the version, the size
// and the checksum before it reads anything else, and every shape against the rebuilt layer;
// each failure says which file and what is wrong with it.
#pragma once

#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "../data/binary_io.hpp"
#include "../hash.hpp"
#include "file_envelope.hpp"
#include "../layers/batch_normalization.hpp"
#include "../layers/conv2d.hpp"
#include "../layers/dense.hpp"
#include "../layers/depthwise_conv2d.hpp"
#include "../layers/dropout.hpp"
#include "../layers/flatten.hpp"
#include "../layers/global_average_pooling2d.hpp"
#include "../layers/max_pool2d.hpp"
#include "../layers/relu.hpp"
#include "../layers/sigmoid.hpp"
#include "../layers/softmax.hpp"
#include "../layers/upsampling2d.hpp"
#include "../losses/binary_crossentropy.hpp"
#include "../losses/sparse_categorical_crossentropy.hpp"
#include "sequential.hpp"

namespace stratum {

inline constexpr detail::Magic model_magic = detail::file_magic('R');
inline constexpr std::uint32_t model_format_version = 1;

using Metadata = std::map<std::string, std::string>;

template <typename T>
struct LoadedModel {
  std::unique_ptr<Sequential<T>> model;
  Metadata metadata;
};

namespace detail {

/// A configuration value that must be a whole number in [low, high].
inline Index config_index(const LayerConfig& c, const char* key, Index low, Index high) {
  const double v = c.get(key);
  if (!(v >= double(low) && v <= double(high)) || v != std::floor(v))
    throw Error("layer " + c.type + ": '" + key + "' = " + std::to_string(v) + " is not a whole number in [" +
                std::to_string(low) + ", " + std::to_string(high) + "]");
  return static_cast<Index>(v);
}

inline constexpr Index max_config_size = Index{1} << 20;

}  // namespace detail

/// Rebuilds a layer from its configuration. Throws Error for an unknown type or a value out of
/// range (model files can be crafted, so nothing here is trusted).
template <typename T>
std::unique_ptr<Layer<T>> layer_from_config(const LayerConfig& c) {
  auto index = [&](const char* key) { return detail::config_index(c, key, 1, detail::max_config_size); };
  auto activation = [&] { return static_cast<Activation>(detail::config_index(c, "activation", 0, 3)); };
  auto padding = [&] { return static_cast<Padding>(detail::config_index(c, "padding", 0, 1)); };
  if (c.type == "Conv2D")
    return std::make_unique<Conv2D<T>>(index("filters"), Size2{index("kernel_h"), index("kernel_w")},
                                       activation(), Size2{index("stride_h"), index("stride_w")},
                                       padding());
  if (c.type == "DepthwiseConv2D")
    return std::make_unique<DepthwiseConv2D<T>>(
        Size2{index("kernel_h"), index("kernel_w")}, Size2{index("stride_h"), index("stride_w")},
        padding(), index("depth_multiplier"), activation(),
        detail::config_index(c, "use_bias", 0, 1) == 1);
  if (c.type == "UpSampling2D")
    return std::make_unique<UpSampling2D<T>>(Size2{index("size_h"), index("size_w")});
  if (c.type == "MaxPooling2D")
    return std::make_unique<MaxPool2D<T>>(Size2{index("pool_h"), index("pool_w")},
                                          Size2{index("stride_h"), index("stride_w")}, padding());
  if (c.type == "Dense") return std::make_unique<Dense<T>>(index("units"), activation());
  if (c.type == "Dropout") return std::make_unique<Dropout<T>>(c.get("rate"));
  if (c.type == "Flatten") return std::make_unique<Flatten<T>>();
  if (c.type == "BatchNormalization")
    return std::make_unique<BatchNormalization<T>>(c.get("momentum"), c.get("epsilon"));
  if (c.type == "GlobalAveragePooling2D") return std::make_unique<GlobalAveragePooling2D<T>>();
  if (c.type == "ReLU") return std::make_unique<ReLU<T>>();
  if (c.type == "Sigmoid") return std::make_unique<Sigmoid<T>>();
  if (c.type == "Softmax") return std::make_unique<Softmax<T>>();
  throw Error("unknown layer type '" + c.type + "'");
}

/// How many parameters a layer of this configuration has on this input, computed without
/// building it, so that a file cannot make the loader allocate more than it holds.
inline double parameter_count(const LayerConfig& c, const Shape& input) {
  if (c.type == "Conv2D" && input.rank() == 3)
    return c.get("kernel_h") * c.get("kernel_w") * double(input[2]) * c.get("filters") + c.get("filters");
  if (c.type == "DepthwiseConv2D" && input.rank() == 3)
    return c.get("kernel_h") * c.get("kernel_w") * double(input[2]) * c.get("depth_multiplier") +
           c.get("use_bias") * double(input[2]) * c.get("depth_multiplier");
  if (c.type == "Dense" && input.rank() == 1) return double(input[0]) * c.get("units") + c.get("units");
  if (c.type == "BatchNormalization" && input.rank() >= 1) return 4.0 * double(input[input.rank() - 1]);
  return 0;
}

template <typename T>
std::unique_ptr<Loss<T>> loss_from_name(const std::string& name, bool from_logits) {
  if (name == "SparseCategoricalCrossentropy")
    return std::make_unique<SparseCategoricalCrossentropy<T>>(from_logits);
  if (name == "BinaryCrossentropy") return std::make_unique<BinaryCrossentropy<T>>(from_logits);
  throw Error("unknown loss '" + name + "'");
}

/// The model file's bytes (see the layout above).
template <typename T>
std::vector<std::uint8_t> serialize_model(Sequential<T>& model, const Metadata& metadata = {}) {
  BinaryWriter w;
  detail::begin_envelope(w, model_magic, model_format_version);
  w.put(static_cast<std::uint32_t>(metadata.size()));
  for (const auto& [key, value] : metadata) {
    w.put_string(key);
    w.put_string(value);
  }
  const Shape& input = model.input_shape();
  w.put(static_cast<std::uint32_t>(input.rank()));
  for (Index d : input.dims()) w.put(static_cast<std::int64_t>(d));
  Loss<T>* loss = model.has_loss() ? &model.loss() : nullptr;
  w.put_string(loss ? loss->name() : "");
  w.put(static_cast<std::uint8_t>(loss && loss->from_logits()));
  w.put(static_cast<std::uint32_t>(model.size()));
  for (std::size_t i = 0; i < model.size(); ++i) {
    Layer<T>& layer = model.layer(i);
    const LayerConfig config = layer.config();
    w.put_string(config.type);
    w.put(static_cast<std::uint32_t>(config.values.size()));
    for (const auto& [key, value] : config.values) {
      w.put_string(key);
      w.put(value);
    }
    const auto params = layer.parameters();
    w.put(static_cast<std::uint32_t>(params.size()));
    for (auto* p : params) {
      w.put_string(p->name);
      w.put(static_cast<std::uint32_t>(p->value.rank()));
      for (Index d : p->value.shape().dims()) w.put(static_cast<std::int64_t>(d));
      for (T v : p->value) w.put(static_cast<float>(v));
    }
  }
  return detail::seal_envelope(w);
}

/// Saves atomically: a crash leaves the previous file, never a partial one.
template <typename T>
void save_model(Sequential<T>& model, const std::filesystem::path& path,
                const Metadata& metadata = {}) {
  write_file_atomically(path, serialize_model(model, metadata));
}

template <typename T = float>
LoadedModel<T> deserialize_model(std::span<const std::uint8_t> bytes, const std::string& name) {
  BinaryReader r = detail::open_envelope(bytes, name, model_magic, "model", model_format_version);
  LoadedModel<T> loaded;
  const auto metadata_count = r.get<std::uint32_t>();
  for (std::uint32_t i = 0; i < metadata_count; ++i) {
    std::string key = r.get_string();
    loaded.metadata[key] = r.get_string();
  }
  const auto rank = r.get<std::uint32_t>();
  if (rank > 8) r.fail("has an input of rank " + std::to_string(rank));
  std::vector<Index> input(rank);
  for (auto& d : input) {
    d = static_cast<Index>(r.get<std::int64_t>());
    if (d < 1 || d > detail::max_config_size) r.fail("has an input dimension of " + std::to_string(d));
  }
  const std::string loss_name = r.get_string();
  const bool from_logits = r.get<std::uint8_t>() != 0;
  try {
    loaded.model = std::make_unique<Sequential<T>>(Shape(input));
    const auto layer_count = r.get<std::uint32_t>();
    for (std::uint32_t l = 0; l < layer_count; ++l) {
      LayerConfig config;
      config.type = r.get_string();
      const auto values = r.get<std::uint32_t>();
      for (std::uint32_t v = 0; v < values; ++v) {
        std::string key = r.get_string();
        config.values.emplace_back(std::move(key), r.get<double>());
      }
      // Parameters come as 4-byte floats: a layer cannot have more than the file holds.
      if (parameter_count(config, loaded.model->output_shape()) * 4 > double(r.remaining()))
        r.fail("describes a " + config.type + " layer larger than the file");
      Layer<T>& layer = loaded.model->add(layer_from_config<T>(config));
      auto params = layer.parameters();
      if (r.get<std::uint32_t>() != params.size())
        r.fail("gives layer '" + layer.name() + "' the wrong number of parameters");
      for (auto* p : params) {
        const std::string param_name = r.get_string();
        const auto param_rank = r.get<std::uint32_t>();
        if (param_rank > 8) r.fail("has a parameter of rank " + std::to_string(param_rank));
        std::vector<Index> dims(param_rank);
        for (auto& d : dims) d = static_cast<Index>(r.get<std::int64_t>());
        if (param_name != p->name || Shape(dims) != p->value.shape())
          r.fail("holds parameter '" + param_name + "' of shape " + Shape(dims).to_string() +
                 " where layer '" + layer.name() + "' has '" + p->name + "' of shape " +
                 p->value.shape().to_string());
        std::vector<float> values_f32(static_cast<std::size_t>(p->value.size()));
        r.get_array(std::span<float>(values_f32));
        std::copy(values_f32.begin(), values_f32.end(), p->value.begin());
      }
    }
    if (!loss_name.empty())
      loaded.model->compile(loss_from_name<T>(loss_name, from_logits), nullptr);
  } catch (const IoError&) {
    throw;
  } catch (const Error& e) {
    throw IoError("'" + name + "' describes a model that cannot be built: " + e.what());
  }
  if (r.remaining() != 0) r.fail("has data after its last layer");
  return loaded;
}

template <typename T = float>
LoadedModel<T> load_model(const std::filesystem::path& path) {
  return deserialize_model<T>(read_file(path), path.string());
}

}  // namespace stratum
