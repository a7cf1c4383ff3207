// libFuzzer target: decoding and resizing arbitrary bytes must either give an image or throw
// stratum::Error; never crash, hang or read out of bounds.
//
// A file can claim any size in its header; a smaller pixel limit than the library's keeps each
// run fast without changing the code paths.
#define STRATUM_MAX_IMAGE_PIXELS (1 << 18)
#include <stratum/data/image.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const stratum::Image image = stratum::decode_image(std::span(data, size), "fuzz input");
    (void)stratum::resize_image(image, 16, 16);
  } catch (const stratum::Error&) {
  }
  return 0;
}
