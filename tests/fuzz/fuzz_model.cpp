// libFuzzer target: loading arbitrary bytes as a model file must either give a model or throw
// stratum::Error; never crash, hang or allocate without bound.
//
// Most random inputs would fail the checksum at once, so inputs that do not start with the
// magic number are wrapped in a valid header and checksum: the fuzzer then explores the parser
// behind them.
#include <stratum/model/serialization.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> bytes(data, data + size);
  if (size < 8 || std::memcmp(data, stratum::model_magic.data(), 8) != 0) {
    stratum::BinaryWriter w;
    stratum::detail::begin_envelope(w, stratum::model_magic, stratum::model_format_version);
    w.put_array(std::span<const std::uint8_t>(data, size));
    bytes = stratum::detail::seal_envelope(w);
  }
  try {
    auto loaded = stratum::deserialize_model<float>(bytes, "fuzz input");
    (void)loaded.model->parameter_count();
  } catch (const stratum::Error&) {
  }
  return 0;
}
