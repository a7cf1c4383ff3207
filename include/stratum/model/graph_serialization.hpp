// Graph model files: a GraphModel's architecture (its GraphConfig) and weights in one binary
// file, the counterpart of serialization.hpp for Sequential.
//
// Layout (little-endian; "str" is a u32 length and that many bytes), inside the envelope of
// file_envelope.hpp (magic 89 'S' 'T' 'G' 0D 0A 1A 0A, version 1, size ... checksum):
//
//   metadata  u32 n, then n pairs (str key, str value)
//   inputs    u32 n, then per input: str name, u32 rank, rank x i64
//   nodes     u32 n, then per node, in topological order:
//               str name, str type, u32 k, k x (str key, f64 value)     its LayerConfig
//               u32 m, m x str                                          the nodes it is called on
//               u32 p, then per parameter: str name, u32 rank, rank x i64, f32 values
//   outputs   u32 n, n x str node name
//
// The losses are not stored: compile a loaded model to train or evaluate it. Saving is atomic;
// loading checks the envelope first, then every name, shape and connection (a file can be
// crafted: a cycle, a node called on a name that does not exist, a name defined twice), and
// says which file and which node is at fault. A Sequential model file (magic 'R') loaded here,
// or a graph file given to load_model, is recognised as such.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../layers/add.hpp"
#include "../layers/concatenate.hpp"
#include "graph_model.hpp"
#include "serialization.hpp"

namespace stratum {

inline constexpr detail::Magic graph_model_magic = detail::file_magic('G');
inline constexpr std::uint32_t graph_model_format_version = 1;

/// A graph's architecture as data, like Keras' get_config(): inputs, layer calls (each node
/// names the nodes it is called on) and outputs. Nodes may be listed in any order:
/// graph_from_config sorts them.
struct GraphConfig {
  struct Input {
    std::string name;
    Shape shape;
    friend bool operator==(const Input&, const Input&) = default;
  };
  struct Call {
    std::string name;
    LayerConfig layer;
    std::vector<std::string> inputs;
    friend bool operator==(const Call& a, const Call& b) {
      return a.name == b.name && a.layer.type == b.layer.type && a.layer.values == b.layer.values &&
             a.inputs == b.inputs;
    }
  };
  std::vector<Input> inputs;
  std::vector<Call> nodes;
  std::vector<std::string> outputs;
  friend bool operator==(const GraphConfig&, const GraphConfig&) = default;
};

template <typename T>
struct LoadedGraphModel {
  std::unique_ptr<GraphModel<T>> model;
  Metadata metadata;
};

/// The configuration of a built model (nodes in its order of execution).
template <typename T>
GraphConfig graph_config(const GraphModel<T>& model) {
  GraphConfig config;
  for (std::size_t k = 0; k < model.input_count(); ++k)
    config.inputs.push_back({model.name(model.input_node(k)), model.shape(model.input_node(k))});
  for (std::size_t i = 0; i < model.node_count(); ++i) {
    const Node n = model.node_at(i);
    if (model.is_input(n)) continue;
    GraphConfig::Call call{model.name(n), model.layer_config(n), {}};
    for (Node u : model.inputs_of(n)) call.inputs.push_back(model.name(u));
    config.nodes.push_back(std::move(call));
  }
  for (std::size_t o = 0; o < model.output_count(); ++o)
    config.outputs.push_back(model.output_name(o));
  return config;
}

/// Rebuilds a multi-input layer from its configuration; null for a type that is not one.
template <typename T>
std::unique_ptr<MergeLayer<T>> merge_layer_from_config(const LayerConfig& c) {
  if (c.type == "Add") return std::make_unique<Add<T>>();
  if (c.type == "Concatenate") return std::make_unique<Concatenate<T>>();
  return nullptr;
}

namespace detail {

/// The order in which to call the nodes of `config`: each after the nodes it is called on,
/// otherwise in the order listed (so a file written in topological order keeps its order).
/// Throws Error naming the node at fault for a name defined twice, a call on an unknown name
/// and a cycle (naming the nodes around it).
inline std::vector<std::size_t> topological_order(const GraphConfig& config) {
  std::map<std::string, int> index;  // input k: -(k + 1); node i: i
  auto define = [&](const std::string& name, int i) {
    if (name.empty()) throw Error("the graph has a node without a name");
    if (!index.emplace(name, i).second)
      throw Error("the graph defines '" + name + "' twice (a layer is called once)");
  };
  for (std::size_t k = 0; k < config.inputs.size(); ++k)
    define(config.inputs[k].name, -static_cast<int>(k) - 1);
  for (std::size_t i = 0; i < config.nodes.size(); ++i)
    define(config.nodes[i].name, static_cast<int>(i));
  std::vector<std::vector<std::size_t>> callers(config.nodes.size());
  std::vector<std::size_t> waiting(config.nodes.size(), 0);  // inputs not yet called
  for (std::size_t i = 0; i < config.nodes.size(); ++i) {
    const auto& call = config.nodes[i];
    if (call.inputs.empty()) throw Error("node '" + call.name + "' is called on no node");
    for (const auto& input : call.inputs) {
      const auto it = index.find(input);
      if (it == index.end())
        throw Error("node '" + call.name + "' is called on '" + input +
                    "', which is not a node of the graph");
      if (it->second >= 0) {
        callers[static_cast<std::size_t>(it->second)].push_back(i);
        ++waiting[i];
      }
    }
  }
  std::vector<std::size_t> order;
  std::vector<bool> done(config.nodes.size(), false);
  for (bool progress = true; progress;) {  // the first ready node each time: stable, n^2 is fine
    progress = false;
    for (std::size_t i = 0; i < config.nodes.size(); ++i)
      if (!done[i] && waiting[i] == 0) {
        done[i] = true;
        order.push_back(i);
        for (std::size_t c : callers[i]) --waiting[c];
        progress = true;
        break;
      }
  }
  if (order.size() == config.nodes.size()) return order;
  // Every node left waits for another node left: follow inputs until one repeats.
  std::size_t v = 0;
  while (done[v]) ++v;
  std::vector<std::size_t> path;
  std::vector<int> seen_at(config.nodes.size(), -1);
  while (seen_at[v] < 0) {
    seen_at[v] = static_cast<int>(path.size());
    path.push_back(v);
    for (const auto& input : config.nodes[v].inputs)
      if (const int u = index.at(input); u >= 0 && !done[static_cast<std::size_t>(u)]) {
        v = static_cast<std::size_t>(u);
        break;
      }
  }
  std::string cycle;
  for (std::size_t k = static_cast<std::size_t>(seen_at[v]); k < path.size(); ++k)
    cycle = " -> '" + config.nodes[path[k]].name + "'" + cycle;
  throw Error("the graph has a cycle: '" + config.nodes[v].name + "'" + cycle);
}

}  // namespace detail

/// Builds the model that `config` describes (weights initialised from `seed`). Throws Error
/// naming the node at fault (see detail::topological_order; shapes are checked by each layer).
/// `before_build`, if given, sees each single-input layer's call and input shape before the
/// layer allocates its weights (the loader checks there that a file cannot ask for more
/// memory than it holds).
template <typename T = float>
std::unique_ptr<GraphModel<T>> graph_from_config(
    const GraphConfig& config, std::uint64_t seed = 0,
    const std::function<void(const GraphConfig::Call&, const Shape&)>& before_build = {}) {
  const auto order = detail::topological_order(config);
  auto model = std::make_unique<GraphModel<T>>(seed);
  std::map<std::string, Node> nodes;
  for (const auto& input : config.inputs) nodes[input.name] = model->input(input.shape, input.name);
  for (std::size_t i : order) {
    const auto& call = config.nodes[i];
    std::vector<Node> xs;
    for (const auto& name : call.inputs) xs.push_back(nodes.at(name));
    if (auto merge = merge_layer_from_config<T>(call.layer)) {
      merge->set_name(call.name);
      nodes[call.name] = model->add(std::shared_ptr<MergeLayer<T>>(std::move(merge)), xs);
    } else {
      auto layer = layer_from_config<T>(call.layer);
      if (xs.size() != 1)
        throw Error("node '" + call.name + "': a " + call.layer.type +
                    " layer takes one input, not " + std::to_string(xs.size()));
      layer->set_name(call.name);
      if (before_build) before_build(call, model->shape(xs[0]));
      nodes[call.name] = model->add(std::shared_ptr<Layer<T>>(std::move(layer)), xs[0]);
    }
  }
  std::vector<Node> outputs;
  for (const auto& name : config.outputs) {
    const auto it = nodes.find(name);
    if (it == nodes.end())
      throw Error("the graph's output '" + name + "' is not a node of the graph");
    outputs.push_back(it->second);
  }
  model->build(outputs);
  return model;
}

/// A copy of the built `model` whose inputs take `input_shapes` (per sample, one for each input)
/// instead: the same layers, settings and weights (BatchNormalization's moving statistics
/// included), shapes inferred afresh. A fully convolutional network trained on 384 x 384 images
/// runs this way on 640 x 640 ones, as a Keras model with free spatial dimensions would. Throws
/// Error naming the node at fault where the graph cannot take the new shapes (a Dense layer
/// after Flatten has weights of another shape).
template <typename T>
std::unique_ptr<GraphModel<T>> with_input_shapes(GraphModel<T>& model,
                                                 const std::vector<Shape>& input_shapes) {
  if (!model.built()) throw Error("with_input_shapes: the model is not built");
  GraphConfig config = graph_config(model);
  if (input_shapes.size() != config.inputs.size())
    throw Error("with_input_shapes: " + std::to_string(input_shapes.size()) +
                " shapes for a model of " + std::to_string(config.inputs.size()) + " inputs");
  for (std::size_t k = 0; k < input_shapes.size(); ++k) config.inputs[k].shape = input_shapes[k];
  auto copy = graph_from_config<T>(config);
  std::map<std::string, Node> copied;  // node names are unique in a graph
  for (std::size_t i = 0; i < copy->node_count(); ++i)
    copied[copy->name(copy->node_at(i))] = copy->node_at(i);
  for (std::size_t i = 0; i < model.node_count(); ++i) {
    const Node from = model.node_at(i), to = copied.at(model.name(from));
    if (!model.layer(from)) continue;
    const auto source = model.layer(from)->parameters(), target = copy->layer(to)->parameters();
    for (std::size_t p = 0; p < source.size(); ++p) {
      if (source[p]->value.shape() != target[p]->value.shape())
        throw Error("with_input_shapes: node '" + model.name(from) + "' would need its " +
                    source[p]->name + " of shape " + target[p]->value.shape().to_string() +
                    " instead of " + source[p]->value.shape().to_string());
      std::copy(source[p]->value.begin(), source[p]->value.end(), target[p]->value.begin());
    }
  }
  return copy;
}

/// The graph model file's bytes (see the layout above). The model must be built.
template <typename T>
std::vector<std::uint8_t> serialize_graph_model(GraphModel<T>& model,
                                                const Metadata& metadata = {}) {
  if (!model.built()) throw Error("save_graph_model: the model is not built");
  const GraphConfig config = graph_config(model);
  BinaryWriter w;
  detail::begin_envelope(w, graph_model_magic, graph_model_format_version);
  w.put(static_cast<std::uint32_t>(metadata.size()));
  for (const auto& [key, value] : metadata) {
    w.put_string(key);
    w.put_string(value);
  }
  w.put(static_cast<std::uint32_t>(config.inputs.size()));
  for (const auto& input : config.inputs) {
    w.put_string(input.name);
    w.put(static_cast<std::uint32_t>(input.shape.rank()));
    for (Index d : input.shape.dims()) w.put(static_cast<std::int64_t>(d));
  }
  w.put(static_cast<std::uint32_t>(config.nodes.size()));
  std::size_t call = 0;
  for (std::size_t i = 0; i < model.node_count(); ++i) {
    const Node n = model.node_at(i);
    if (model.is_input(n)) continue;
    const GraphConfig::Call& c = config.nodes[call++];
    w.put_string(c.name);
    w.put_string(c.layer.type);
    w.put(static_cast<std::uint32_t>(c.layer.values.size()));
    for (const auto& [key, value] : c.layer.values) {
      w.put_string(key);
      w.put(value);
    }
    w.put(static_cast<std::uint32_t>(c.inputs.size()));
    for (const auto& input : c.inputs) w.put_string(input);
    const auto params =
        model.layer(n) ? model.layer(n)->parameters() : std::vector<Parameter<T>*>{};
    w.put(static_cast<std::uint32_t>(params.size()));
    for (auto* p : params) {
      w.put_string(p->name);
      w.put(static_cast<std::uint32_t>(p->value.rank()));
      for (Index d : p->value.shape().dims()) w.put(static_cast<std::int64_t>(d));
      for (T v : p->value) w.put(static_cast<float>(v));
    }
  }
  w.put(static_cast<std::uint32_t>(config.outputs.size()));
  for (const auto& name : config.outputs) w.put_string(name);
  return detail::seal_envelope(w);
}

/// Saves atomically: a crash leaves the previous file, never a partial one.
template <typename T>
void save_graph_model(GraphModel<T>& model, const std::filesystem::path& path,
                      const Metadata& metadata = {}) {
  write_file_atomically(path, serialize_graph_model(model, metadata));
}

template <typename T = float>
LoadedGraphModel<T> deserialize_graph_model(std::span<const std::uint8_t> bytes,
                                            const std::string& name) {
  BinaryReader r = detail::open_envelope(bytes, name, graph_model_magic, "graph model",
                                         graph_model_format_version);
  LoadedGraphModel<T> loaded;
  const auto metadata_count = r.get<std::uint32_t>();
  for (std::uint32_t i = 0; i < metadata_count; ++i) {
    std::string key = r.get_string();
    loaded.metadata[key] = r.get_string();
  }
  auto get_shape = [&](const std::string& what, bool positive) {
    const auto rank = r.get<std::uint32_t>();
    if (rank > 8) r.fail("has " + what + " of rank " + std::to_string(rank));
    std::vector<Index> dims(rank);
    for (auto& d : dims) {
      d = static_cast<Index>(r.get<std::int64_t>());
      if (positive && (d < 1 || d > detail::max_config_size))
        r.fail("has " + what + " with a dimension of " + std::to_string(d));
    }
    return Shape(dims);
  };
  GraphConfig config;
  config.inputs.resize(r.get<std::uint32_t>());
  if (config.inputs.size() > r.remaining()) r.fail("holds more inputs than the file has bytes");
  for (auto& input : config.inputs) {
    input.name = r.get_string();
    input.shape = get_shape("input '" + input.name + "'", true);
  }
  // The weights as stored, per node; checked against the rebuilt layers below.
  struct StoredParameter {
    std::string name;
    Shape shape;
    std::vector<float> values;
  };
  std::map<std::string, std::vector<StoredParameter>> weights;
  const auto node_count = r.get<std::uint32_t>();
  if (node_count > r.remaining()) r.fail("holds more nodes than the file has bytes");
  for (std::uint32_t i = 0; i < node_count; ++i) {
    GraphConfig::Call call;
    call.name = r.get_string();
    call.layer.type = r.get_string();
    const auto values = r.get<std::uint32_t>();
    if (values > r.remaining()) r.fail("gives node '" + call.name + "' too many settings");
    for (std::uint32_t v = 0; v < values; ++v) {
      std::string key = r.get_string();
      call.layer.values.emplace_back(std::move(key), r.get<double>());
    }
    const auto input_count = r.get<std::uint32_t>();
    if (input_count > r.remaining()) r.fail("gives node '" + call.name + "' too many inputs");
    for (std::uint32_t k = 0; k < input_count; ++k) call.inputs.push_back(r.get_string());
    auto& stored = weights[call.name];
    const auto param_count = r.get<std::uint32_t>();
    if (param_count > 64)
      r.fail("gives node '" + call.name + "' " + std::to_string(param_count) + " parameters");
    for (std::uint32_t p = 0; p < param_count; ++p) {
      StoredParameter param;
      param.name = r.get_string();
      param.shape = get_shape("parameter '" + param.name + "' of node '" + call.name + "'", false);
      if (double(param.shape.num_elements()) * 4 > double(r.remaining()))
        r.fail("gives node '" + call.name + "' a parameter larger than the file");
      param.values.resize(static_cast<std::size_t>(param.shape.num_elements()));
      r.get_array(std::span<float>(param.values));
      stored.push_back(std::move(param));
    }
    config.nodes.push_back(std::move(call));
  }
  const auto output_count = r.get<std::uint32_t>();
  if (output_count > r.remaining()) r.fail("holds more outputs than the file has bytes");
  for (std::uint32_t o = 0; o < output_count; ++o) config.outputs.push_back(r.get_string());
  if (r.remaining() != 0) r.fail("has data after its outputs");

  try {
    loaded.model =
        graph_from_config<T>(config, 0, [&](const GraphConfig::Call& call, const Shape& input) {
          if (parameter_count(call.layer, input) * 4 > double(bytes.size()))
            r.fail("describes a " + call.layer.type + " layer '" + call.name +
                   "' larger than the file");
        });
  } catch (const IoError&) {
    throw;
  } catch (const Error& e) {
    throw IoError("'" + name + "' describes a graph model that cannot be built: " + e.what());
  }
  for (std::size_t i = 0; i < loaded.model->node_count(); ++i) {
    const Node n = loaded.model->node_at(i);
    if (loaded.model->is_input(n)) continue;
    const std::string& node_name = loaded.model->name(n);
    const auto& stored = weights[node_name];
    Layer<T>* layer = loaded.model->layer(n);
    const auto params = layer ? layer->parameters() : std::vector<Parameter<T>*>{};
    if (stored.size() != params.size())
      r.fail("gives node '" + node_name + "' " + std::to_string(stored.size()) +
             " parameters where its layer has " + std::to_string(params.size()));
    for (std::size_t p = 0; p < params.size(); ++p) {
      if (stored[p].name != params[p]->name || stored[p].shape != params[p]->value.shape())
        r.fail("holds parameter '" + stored[p].name + "' of shape " + stored[p].shape.to_string() +
               " where node '" + node_name + "' has '" + params[p]->name + "' of shape " +
               params[p]->value.shape().to_string());
      std::copy(stored[p].values.begin(), stored[p].values.end(), params[p]->value.begin());
    }
  }
  return loaded;
}

template <typename T = float>
LoadedGraphModel<T> load_graph_model(const std::filesystem::path& path) {
  return deserialize_graph_model<T>(read_file(path), path.string());
}

}  // namespace stratum
