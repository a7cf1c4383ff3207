// Drawing detections on a photo: a box outline per face in its class's colour and a label
// ("WITH_MASK 87%") in a filled strip above it, written with a built-in 5x7 bitmap font.
//
// Every primitive clips to the image: a box or a label that reaches past an edge is drawn up
// to the edge, never outside the pixel buffer (the tests run this under AddressSanitizer).
//
// Geometry. A box is in continuous pixel coordinates (stratum/detection/box.hpp): pixel column
// j covers [j, j + 1]. The box covers the columns floor(x_min) .. ceil(x_max) - 1; the outline,
// `thickness` pixels wide, is drawn just OUTSIDE those, so it never paints over the face itself:
// most faces in crowd photos are 10 to 30 pixels high, and a 3-pixel line inside would cover
// a fifth of such a face.
#pragma once

#include <stratum/data/image.hpp>
#include <stratum/detection/box.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mask_detection {

using stratum::Image;
using stratum::Rgb;

/// The colour of a class: with_mask green, without_mask red, mask_weared_incorrect orange;
/// any other class (a face detector's "face") blue.
inline Rgb class_colour(const std::string& class_name) {
  if (class_name == "with_mask") return {0, 200, 0};
  if (class_name == "without_mask") return {230, 20, 20};
  if (class_name == "mask_weared_incorrect") return {255, 160, 0};
  return {30, 120, 255};
}

/// Fills the pixels [x0, x1) x [y0, y1), clipped to the image.
inline void fill_rectangle(Image& image, int x0, int y0, int x1, int y1, Rgb colour) {
  x0 = std::max(x0, 0);
  y0 = std::max(y0, 0);
  x1 = std::min(x1, image.width);
  y1 = std::min(y1, image.height);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x)
      std::copy(colour.begin(), colour.end(),
                image.pixels.begin() + (static_cast<std::ptrdiff_t>(y) * image.width + x) * 3);
}

/// The pixel columns [left, right) and rows [top, bottom) a box covers (see the file comment),
/// at least one pixel each way.
struct PixelRect {
  int left, top, right, bottom;
};

inline PixelRect pixel_rect(const stratum::Box& box) {
  // Clamped well outside any image first, so that a wild box cannot overflow an int.
  auto to_int = [](float v) { return static_cast<int>(std::clamp(v, -1e6f, 1e6f)); };
  PixelRect r{to_int(std::floor(box.x_min)), to_int(std::floor(box.y_min)),
              to_int(std::ceil(box.x_max)), to_int(std::ceil(box.y_max))};
  r.right = std::max(r.right, r.left + 1);
  r.bottom = std::max(r.bottom, r.top + 1);
  return r;
}

/// A `thickness`-pixel outline just outside `box`.
inline void draw_outline(Image& image, const stratum::Box& box, Rgb colour, int thickness) {
  const PixelRect r = pixel_rect(box);
  const int t = thickness;
  fill_rectangle(image, r.left - t, r.top - t, r.right + t, r.top, colour);        // top
  fill_rectangle(image, r.left - t, r.bottom, r.right + t, r.bottom + t, colour);  // bottom
  fill_rectangle(image, r.left - t, r.top, r.left, r.bottom, colour);              // left
  fill_rectangle(image, r.right, r.top, r.right + t, r.bottom, colour);            // right
}

// ---- The font --------------------------------------------------------------------------------

/// A 5x7 bitmap font: the characters it has, and per character 7 rows top to bottom, each row's
/// 5 pixels in bits 4 (left) to 0 (right). Letters are capitals (lower case is drawn as capitals);
/// any other character is drawn as '?'.
inline constexpr std::string_view font_characters = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ%._-:? ";
inline constexpr std::array<std::array<std::uint8_t, 7>, font_characters.size()> font_rows{{
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E},  // 0
    {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E},  // 1
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F},  // 2
    {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E},  // 3
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02},  // 4
    {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E},  // 5
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E},  // 6
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},  // 7
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E},  // 8
    {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C},  // 9
    {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11},  // A
    {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E},  // B
    {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E},  // C
    {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C},  // D
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F},  // E
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10},  // F
    {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F},  // G
    {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11},  // H
    {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E},  // I
    {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C},  // J
    {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11},  // K
    {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F},  // L
    {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11},  // M
    {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11},  // N
    {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E},  // O
    {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10},  // P
    {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D},  // Q
    {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11},  // R
    {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E},  // S
    {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},  // T
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E},  // U
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04},  // V
    {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A},  // W
    {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11},  // X
    {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04},  // Y
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F},  // Z
    {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03},  // %
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C},  // .
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F},  // _
    {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00},  // -
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00},  // :
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04},  // ?
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},  // space
}};
inline constexpr int glyph_width = 5, glyph_height = 7;

/// The rows of `c`'s glyph.
inline const std::array<std::uint8_t, 7>& glyph(char c) {
  const auto upper = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto at = font_characters.find(upper);
  if (at == std::string_view::npos) at = font_characters.find('?');
  return font_rows[at];
}

/// Text is drawn at an integer `scale` (each font pixel a scale x scale square), with one font
/// pixel between characters.
inline int text_width(std::string_view text, int scale) {
  return text.empty() ? 0 : (static_cast<int>(text.size()) * (glyph_width + 1) - 1) * scale;
}
inline int text_height(int scale) {
  return glyph_height * scale;
}

/// Draws `text` with its top-left corner at (x, y), clipped to the image.
inline void draw_text(Image& image, std::string_view text, int x, int y, Rgb colour, int scale) {
  for (char c : text) {
    const auto& rows = glyph(c);
    for (int row = 0; row < glyph_height; ++row)
      for (int column = 0; column < glyph_width; ++column)
        if (rows[static_cast<std::size_t>(row)] & (0x10 >> column))
          fill_rectangle(image, x + column * scale, y + row * scale, x + (column + 1) * scale,
                         y + (row + 1) * scale, colour);
    x += (glyph_width + 1) * scale;
  }
}

// ---- Labelled boxes --------------------------------------------------------------------------

/// Line and text sizes for a photo: 2-pixel outlines and 7-pixel text on photos up to 1000
/// pixels, growing with larger photos so that labels stay legible when the photo is shown
/// scaled down to a screen.
struct DrawingStyle {
  int thickness = 2;
  int text_scale = 1;
};

inline DrawingStyle drawing_style(int width, int height) {
  const int side = std::max(width, height);
  return {side > 1000 ? 3 : 2, std::max(1, side / 1000 + 1)};
}

/// Black on light colours, white on dark ones (by luma, ITU-R BT.601).
inline Rgb text_colour_on(Rgb background) {
  const int luma = (299 * background[0] + 587 * background[1] + 114 * background[2]) / 1000;
  return luma > 128 ? Rgb{0, 0, 0} : Rgb{255, 255, 255};
}

/// The outline of `box` and a strip with `label` in `colour`. The strip sits above the outline;
/// where there is no room above (a face at the top edge), below it; it is moved left to stay
/// inside the photo where it can.
inline void draw_labelled_box(Image& image, const stratum::Box& box, std::string_view label,
                              Rgb colour, const DrawingStyle& style) {
  draw_outline(image, box, colour, style.thickness);
  const PixelRect r = pixel_rect(box);
  const int pad = style.text_scale;
  const int strip_width = text_width(label, style.text_scale) + 2 * pad;
  const int strip_height = text_height(style.text_scale) + 2 * pad;
  const int outer_top = r.top - style.thickness, outer_bottom = r.bottom + style.thickness;
  const int top = outer_top >= strip_height ? outer_top - strip_height : outer_bottom;
  const int left = std::clamp(r.left - style.thickness, 0, std::max(0, image.width - strip_width));
  fill_rectangle(image, left, top, left + strip_width, top + strip_height, colour);
  draw_text(image, label, left + pad, top + pad, text_colour_on(colour), style.text_scale);
}

/// "WITH_MASK 87%": the class and the score as a whole percentage.
inline std::string detection_label(const std::string& class_name, float score) {
  const int percent = static_cast<int>(std::lround(std::clamp(score, 0.0f, 1.0f) * 100.0f));
  return class_name + " " + std::to_string(percent) + "%";
}

/// A copy of `photo` with every detection drawn (class names index by class_id), the weakest
/// first so that the strongest ones end up on top where labels overlap.
inline Image draw_detections(const Image& photo, const std::vector<stratum::Detection>& detections,
                             const std::vector<std::string>& class_names) {
  Image out = photo;
  const DrawingStyle style = drawing_style(photo.width, photo.height);
  std::vector<stratum::Detection> order = detections;
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.score < b.score; });
  for (const auto& d : order) {
    const std::string& name = class_names.at(static_cast<std::size_t>(d.class_id));
    draw_labelled_box(out, d.box, detection_label(name, d.score), class_colour(name), style);
  }
  return out;
}

}  // namespace mask_detection
