// Training checkpoints: everything a run needs to continue exactly as if it had never been
// interrupted. The same seed and thread count then give bit-identical weights (for float
// models: the model part stores weights as f32).
//
// Layout, inside the envelope of file_envelope.hpp (magic 89 'S' 'T' 'C' 0D 0A 1A 0A,
// version 1, size ... checksum):
//
//   model        u64 n, n bytes        a complete model file (serialization.hpp): weights,
//                                      moving statistics, metadata
//   progress     u32 completed epochs, u8 stop_training
//   engines      4 x u64               the model's random engine (shuffling)
//                u32 n, n x 4 x u64    each layer's own engine (Dropout), in layer order
//   optimizer    its save_state        learning rate, step count, moments
//   history      History::save         every epoch so far
//   extra state  u32 n, then n x (u64 length, bytes)     callbacks, augmenter (Stateful)
//
// Checkpoints are written atomically, like model files: a run killed while writing one
// leaves the previous one.
//
// A GraphModel's checkpoint has the same layout with a graph model file as its model part
// (graph_serialization.hpp) and, after the history, its named columns (History::save_named:
// the per-output losses). The functions below take either kind of model.
#pragma once

#include <filesystem>
#include <span>
#include <type_traits>

#include "../callbacks.hpp"
#include "file_envelope.hpp"
#include "graph_serialization.hpp"
#include "history.hpp"
#include "serialization.hpp"

namespace stratum {

inline constexpr detail::Magic checkpoint_magic = detail::file_magic('C');
inline constexpr std::uint32_t checkpoint_format_version = 1;

/// Where a checkpoint says training stands.
struct TrainingProgress {
  int completed_epochs = 0;
  bool stop_training = false;  // an early stop was decided: no further epochs
  History history;
  Metadata metadata;  // the model part's metadata (run settings, say)
};

namespace detail {

inline void put_engine(BinaryWriter& w, const Random& rng) {
  for (std::uint64_t word : rng.state()) w.put(word);
}

inline void get_engine(BinaryReader& r, Random& rng) {
  Random::State state;
  for (auto& word : state) word = r.get<std::uint64_t>();
  rng.set_state(state);
}

template <typename T>
std::vector<Random*> layer_engines(Sequential<T>& model) {
  std::vector<Random*> engines;
  for (std::size_t i = 0; i < model.size(); ++i)
    if (Random* rng = model.layer(i).random_engine()) engines.push_back(rng);
  return engines;
}
template <typename T>
std::vector<Random*> layer_engines(GraphModel<T>& model) {
  return model.layer_engines();
}

template <typename T>
std::vector<std::uint8_t> model_file(Sequential<T>& model, const Metadata& metadata) {
  return serialize_model(model, metadata);
}
template <typename T>
std::vector<std::uint8_t> model_file(GraphModel<T>& model, const Metadata& metadata) {
  return serialize_graph_model(model, metadata);
}

/// Reads the checkpoint's model part into `model`, which must have the same architecture
/// layer for layer (the same configurations and weight shapes). Returns its metadata.
template <typename T>
Metadata restore_model_part(std::span<const std::uint8_t> model_bytes, const std::string& name,
                            Sequential<T>& model, BinaryReader& r) {
  LoadedModel<T> saved = deserialize_model<T>(model_bytes, name + " (its model)");
  if (saved.model->size() != model.size() || saved.model->input_shape() != model.input_shape())
    r.fail("holds a model of another architecture than the one being trained");
  for (std::size_t i = 0; i < model.size(); ++i) {
    const LayerConfig a = saved.model->layer(i).config(), b = model.layer(i).config();
    if (a.type != b.type || a.values != b.values)
      r.fail("holds a " + a.type + " layer where the model being trained has " +
             model.layer(i).describe());
  }
  auto from = saved.model->parameters(), to = model.parameters();
  for (std::size_t i = 0; i < to.size(); ++i) to[i]->value = from[i]->value;
  return std::move(saved.metadata);
}

template <typename T>
Metadata restore_model_part(std::span<const std::uint8_t> model_bytes, const std::string& name,
                            GraphModel<T>& model, BinaryReader& r) {
  LoadedGraphModel<T> saved = deserialize_graph_model<T>(model_bytes, name + " (its model)");
  const GraphConfig a = graph_config(*saved.model), b = graph_config(model);
  if (a.inputs != b.inputs || a.outputs != b.outputs || a.nodes.size() != b.nodes.size())
    r.fail("holds a graph of other inputs, outputs or nodes than the one being trained");
  for (std::size_t i = 0; i < a.nodes.size(); ++i)
    if (!(a.nodes[i] == b.nodes[i]))
      r.fail("holds node '" + a.nodes[i].name + "' (" + a.nodes[i].layer.type +
             ") where the graph being trained has '" + b.nodes[i].name + "' (" +
             b.nodes[i].layer.type + ") with other settings or inputs");
  auto from = saved.model->parameters(), to = model.parameters();
  for (std::size_t i = 0; i < to.size(); ++i) to[i]->value = from[i]->value;
  return std::move(saved.metadata);
}

}  // namespace detail

/// The checkpoint's bytes. `model` (a Sequential or a GraphModel) must be compiled (its
/// optimizer state is saved); `extra` are saved in order and must be given in the same order
/// to load_checkpoint.
template <typename M>
std::vector<std::uint8_t> serialize_checkpoint(M& model, const TrainingProgress& progress,
                                               std::span<const Stateful* const> extra = {}) {
  BinaryWriter w;
  detail::begin_envelope(w, checkpoint_magic, checkpoint_format_version);
  const auto model_bytes = detail::model_file(model, progress.metadata);
  w.put(static_cast<std::uint64_t>(model_bytes.size()));
  w.put_array(std::span<const std::uint8_t>(model_bytes));
  w.put(static_cast<std::uint32_t>(progress.completed_epochs));
  w.put(static_cast<std::uint8_t>(progress.stop_training));
  detail::put_engine(w, model.rng());
  const auto engines = detail::layer_engines(model);
  w.put(static_cast<std::uint32_t>(engines.size()));
  for (const Random* rng : engines) detail::put_engine(w, *rng);
  model.optimizer().save_state(w);
  progress.history.save(w);
  if constexpr (std::is_same_v<M, GraphModel<typename M::Scalar>>) progress.history.save_named(w);
  w.put(static_cast<std::uint32_t>(extra.size()));
  for (const Stateful* s : extra) {
    BinaryWriter part;
    s->save_state(part);
    w.put(static_cast<std::uint64_t>(part.bytes().size()));
    w.put_array(std::span<const std::uint8_t>(part.bytes()));
  }
  return detail::seal_envelope(w);
}

template <typename M>
void save_checkpoint(const std::filesystem::path& path, M& model, const TrainingProgress& progress,
                     std::span<const Stateful* const> extra = {}) {
  write_file_atomically(path, serialize_checkpoint(model, progress, extra));
}

/// Restores a checkpoint into `model`, which must have the same architecture and a compiled
/// optimizer of the same kind (build it as the interrupted run did), and into `extra`.
/// Returns where training stands. Throws IoError naming the file on any mismatch.
template <typename M>
TrainingProgress restore_checkpoint(std::span<const std::uint8_t> bytes, const std::string& name,
                                    M& model, std::span<Stateful* const> extra = {}) {
  BinaryReader r =
      detail::open_envelope(bytes, name, checkpoint_magic, "checkpoint", checkpoint_format_version);
  const auto model_size = r.get<std::uint64_t>();
  if (model_size > r.remaining()) r.fail("holds a model larger than the file");
  std::vector<std::uint8_t> model_bytes(static_cast<std::size_t>(model_size));
  r.get_array(std::span<std::uint8_t>(model_bytes));
  TrainingProgress progress;
  progress.metadata = detail::restore_model_part(model_bytes, name, model, r);
  progress.completed_epochs = static_cast<int>(r.get<std::uint32_t>());
  progress.stop_training = r.get<std::uint8_t>() != 0;
  detail::get_engine(r, model.rng());
  const auto engines = detail::layer_engines(model);
  if (r.get<std::uint32_t>() != engines.size())
    r.fail("holds the wrong number of layer random engines");
  for (Random* rng : engines) detail::get_engine(r, *rng);
  model.optimizer().load_state(r, model.trainable_parameters());
  progress.history.load(r);
  if constexpr (std::is_same_v<M, GraphModel<typename M::Scalar>>) progress.history.load_named(r);
  if (r.get<std::uint32_t>() != extra.size())
    r.fail("holds extra training state for a different set of callbacks");
  for (Stateful* s : extra) {
    const auto size = r.get<std::uint64_t>();
    if (size > r.remaining()) r.fail("holds extra training state larger than the file");
    std::vector<std::uint8_t> part(static_cast<std::size_t>(size));
    r.get_array(std::span<std::uint8_t>(part));
    BinaryReader part_reader(part, name);
    s->load_state(part_reader);
    if (part_reader.remaining() != 0)
      part_reader.fail("holds extra training state of the wrong size");
  }
  if (r.remaining() != 0) r.fail("has data after its training state");
  return progress;
}

template <typename M>
TrainingProgress load_checkpoint(const std::filesystem::path& path, M& model,
                                 std::span<Stateful* const> extra = {}) {
  return restore_checkpoint(read_file(path), path.string(), model, extra);
}

/// Writes a checkpoint when training starts and after every epoch (Keras' BackupAndRestore).
/// Put it last among the callbacks, so that it sees the others' state after each epoch.
/// M is the kind of model trained: TrainingCheckpoint<float, GraphModel<float>> for a graph.
template <typename T, typename M = Sequential<T>>
class TrainingCheckpoint final : public Callback<T> {
 public:
  /// `progress` is where training starts: empty for a new run, load_checkpoint's for a resumed
  /// one. `extra` is saved with every checkpoint, in order.
  TrainingCheckpoint(std::filesystem::path path, TrainingProgress progress,
                     std::vector<const Stateful*> extra = {})
      : path_(std::move(path)), progress_(std::move(progress)), extra_(std::move(extra)) {}

  [[nodiscard]] const TrainingProgress& progress() const { return progress_; }

  void on_train_begin(Model<T>& model) override { save(model); }

  void on_epoch_end(Model<T>& model, const EpochLogs& logs) override {
    progress_.completed_epochs = logs.epoch + 1;
    progress_.stop_training = model.stop_training();
    progress_.history.append(logs);
    save(model);
  }

 private:
  void save(Model<T>& model) {
    save_checkpoint(path_, model_as<M>(model, "TrainingCheckpoint"), progress_, extra_);
  }

  std::filesystem::path path_;
  TrainingProgress progress_;
  std::vector<const Stateful*> extra_;
};

}  // namespace stratum
