// libFuzzer target: loading arbitrary bytes as a model file must either give a model or throw
// stratum::Error; never crash, hang or allocate without bound.
//
// Most random inputs would fail the checksum at once, so inputs that do not start with the
// magic number are wrapped in a valid header and checksum: the fuzzer then explores the parser
// behind them.
#include <stratum/model/serialization.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> bytes(data, data + size);
  if (size < 8 || std::memcmp(data, stratum::model_magic, 8) != 0) {
    stratum::BinaryWriter w;
    w.put_array(std::span<const std::uint8_t>(stratum::model_magic, 8));
    w.put(stratum::model_format_version);
    w.put(static_cast<std::uint64_t>(8 + 4 + 8 + size + 8));
    w.put_array(std::span<const std::uint8_t>(data, size));
    w.put(stratum::Fnv1a().add(std::span<const std::uint8_t>(w.bytes())).value());
    bytes = std::move(w.bytes());
  }
  try {
    auto loaded = stratum::deserialize_model<float>(bytes, "fuzz input");
    (void)loaded.model->parameter_count();
  } catch (const stratum::Error&) {
  }
  return 0;
}
