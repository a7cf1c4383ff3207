// stb_image, stb_image_resize and stb_image_write, compiled into every translation unit that
// includes this header as *static* functions, so a header-only library needs no separate
// implementation file and cannot clash at link time with a copy of stb in the user's program.
// (If your program includes these stb headers itself, include stratum's headers first.)
#pragma once

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
// stb_image_resize's arithmetic rounds each product as written: no fused multiply-add, which
// GCC (in its GNU dialects) and Clang would otherwise form wherever the target has FMA. So its
// filter weights, which stratum's own resampling loops use (resample.hpp), are the same in a
// build with FMA (-march=native) and without, and so are the bytes of a resize.
#if defined(__clang__)
#pragma float_control(push)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif
#include <stb_image_resize.h>
#if defined(__clang__)
#pragma float_control(pop)
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

#ifndef STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#endif
#include <stb_image_write.h>
