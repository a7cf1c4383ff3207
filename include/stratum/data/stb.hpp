// stb_image, stb_image_resize and stb_image_write, compiled into every translation unit that
// includes this header as *static* functions, so a header-only library needs no separate
// implementation file and cannot clash at link time with a copy of stb in the user's program.
// (If your program includes these stb headers itself, include stratum's headers first.)
#pragma once

#include "no_fp_contract.hpp"

#if !__has_include(<stb_image.h>)
#error "stratum's image support needs stb (Debian: libstb-dev); add its folder to the include path"
#endif

#ifndef STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#endif
#include <stb_image.h>

#ifndef STB_IMAGE_RESIZE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_STATIC
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#endif
// stb_image_resize's arithmetic rounds each product as written (no_fp_contract.hpp), so its
// filter weights, which stratum's own resampling loops use (resample.hpp), are the same in a
// build with FMA (-march=native) and without, and so are the bytes of a resize.
STRATUM_NO_FP_CONTRACT_BEGIN
#include <stb_image_resize.h>
STRATUM_NO_FP_CONTRACT_END

#ifndef STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#endif
#include <stb_image_write.h>
