// What train and train-detector share about a run: its files (checkpoint, history, curves) and
// where it starts (a new run, or, with --resume, the run its checkpoint left).
#pragma once

#include <stratum/model/checkpoint.hpp>

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"

namespace mask_detection {

/// The options that name a run's files, and --resume and --quiet.
inline const std::vector<OptionSpec> run_options{
    {"checkpoint", "FILE",
     "checkpoint written after every epoch (default: the model's name + .checkpoint)"},
    {"resume", "",
     "continue the interrupted run from its checkpoint (give the same options again)"},
    {"history", "FILE", "training history as CSV (default: the model's name + .history.csv)"},
    {"plot", "FILE", "training curves as PNG (default: the model's name + .history.png)"},
    {"quiet", "", "no progress bar, one line per epoch"},
};

inline std::vector<OptionSpec> with_run_options(std::vector<OptionSpec> specs) {
  specs.insert(specs.end(), run_options.begin(), run_options.end());
  return specs;
}

struct RunFiles {
  std::filesystem::path checkpoint, history, plot;
};

/// The files of a run whose model goes to `model` (m.stmodel: m.checkpoint, m.history.csv and
/// m.history.png beside it) unless the options name others.
inline RunFiles run_files(const Arguments& args, const std::filesystem::path& model) {
  std::filesystem::path stem = model;
  stem.replace_extension();
  return {args.get("checkpoint", stem.string() + ".checkpoint"),
          args.get("history", stem.string() + ".history.csv"),
          args.get("plot", stem.string() + ".history.png")};
}

/// The progress a command's training starts from. A new run's is empty but for `run_metadata`
/// ("run_settings": every option that shapes the run, "threads"). With `resume`, the checkpoint
/// at `path` is loaded into `model` and `state`; it must have been written by a run with the
/// same settings (otherwise the weights would continue another run), and a different thread
/// or MPI rank count is named in a warning, since the sums then differ in their last bits.
template <typename M>
stratum::TrainingProgress start_or_resume(bool resume, const std::filesystem::path& path, M& model,
                                          const std::vector<stratum::Stateful*>& state,
                                          const stratum::Metadata& run_metadata) {
  stratum::TrainingProgress progress;
  progress.metadata = run_metadata;
  if (!resume) return progress;
  progress = stratum::load_checkpoint(path, model, state);
  const std::string& settings = run_metadata.at("run_settings");
  if (progress.metadata["run_settings"] != settings)
    throw stratum::Error("'" + path.string() +
                         "' was written by a run with other settings:\n  checkpoint: " +
                         progress.metadata["run_settings"] + "\n  now:        " + settings +
                         "\nresume with the same options");
  // Threads and MPI ranks (none: one process) change the order of sums, not the run.
  for (const std::string key : {"threads", "ranks"}) {
    auto value = [&](const stratum::Metadata& m) {
      return m.count(key) ? m.at(key) : std::string("1");
    };
    if (value(progress.metadata) != value(run_metadata))
      std::cout << "warning: the checkpoint was written with " << value(progress.metadata) << ' '
                << key << "; with " << value(run_metadata)
                << " the results differ in the last bits\n";
  }
  std::cout << "Resuming from " << path.string() << " after epoch " << progress.completed_epochs
            << "\n";
  return progress;
}

}  // namespace mask_detection
