// Pascal VOC annotations: one XML file per image, parsed with pugixml (Debian libpugixml-dev;
// link stratum::voc, which exists when CMake found pugixml):
//
//   <annotation>
//     <size><width>400</width><height>267</height><depth>3</depth></size>
//     <object>
//       <name>with_mask</name>
//       <bndbox><xmin>79</xmin><ymin>105</ymin><xmax>109</xmax><ymax>142</ymax></bndbox>
//     </object> ...
//   </annotation>
//
// VOC corners are 1-based and inclusive, so (xmin, ymin, xmax, ymax) becomes the box
// [xmin - 1, xmax] x [ymin - 1, ymax] (detection/box.hpp). Coordinates may be written as
// decimals (some tools do). Class names map to indices through the caller's list. Other
// elements (<pose>, <difficult>...) and text between elements are ignored: the face-mask set's
// maksssksksss0.xml has a file path pasted after a </bndbox>, which is well-formed XML (mixed
// content) and does not change the boxes. <filename> is not used: pair files by name instead.
//
// Bad objects and broken files: see annotation.hpp.
#pragma once

#if !__has_include(<pugixml.hpp>)
#error "stratum/data/voc.hpp needs pugixml (Debian: libpugixml-dev); link the target stratum::voc"
#endif

#include <filesystem>
#include <pugixml.hpp>
#include <span>
#include <string>
#include <string_view>

#include "annotation.hpp"
#include "binary_io.hpp"

namespace stratum {

namespace detail {

/// The text of `node` without surrounding white space.
inline std::string trimmed_string(const pugi::xml_node& node) {
  return std::string(trimmed(node.child_value()));
}

/// <size>'s width or height as a positive integer. Throws AnnotationError naming `name`.
inline int voc_image_side(const pugi::xml_node& size, const char* side, const std::string& name) {
  const pugi::xml_node node = size.child(side);
  if (!node) throw AnnotationError("'" + name + "' has no <size><" + side + ">");
  const auto value = parse_number(node.child_value());
  if (!value || *value < 1 || *value > 1 << 30 || *value != std::floor(*value))
    throw AnnotationError("'" + name + "' has an image " + side + " '" +
                          std::string(trimmed(node.child_value())) +
                          "' that is not a positive integer");
  return static_cast<int>(*value);
}

}  // namespace detail

/// Reads the VOC annotation in `xml` (`name` is used in messages). The boxes are checked
/// against `image_size` when given (the size of the decoded image: a <size> that disagrees with
/// it is an error, as every box would be misplaced), else against <size>.
/// Throws AnnotationError for a file that cannot be used (see annotation.hpp).
inline SceneAnnotation parse_voc(std::string_view xml, const std::string& name,
                                 std::span<const std::string> class_names,
                                 const AnnotationOptions& options = {},
                                 std::optional<std::pair<int, int>> image_size = std::nullopt) {
  pugi::xml_document document;
  const pugi::xml_parse_result parsed =
      document.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_auto);
  if (!parsed)
    throw AnnotationError("'" + name + "' is not well-formed XML: " + parsed.description() +
                          " at byte " + std::to_string(parsed.offset));
  const pugi::xml_node root = document.child("annotation");
  if (!root) throw AnnotationError("'" + name + "' has no <annotation> element");

  SceneAnnotation scene;
  const pugi::xml_node size = root.child("size");
  if (size) {
    scene.width = detail::voc_image_side(size, "width", name);
    scene.height = detail::voc_image_side(size, "height", name);
  }
  if (image_size) {
    const auto [width, height] = *image_size;
    if (size && (scene.width != width || scene.height != height))
      throw AnnotationError("'" + name + "' gives the image size " + std::to_string(scene.width) +
                            "x" + std::to_string(scene.height) + " but the image is " +
                            std::to_string(width) + "x" + std::to_string(height));
    scene.width = width;
    scene.height = height;
  } else if (!size) {
    throw AnnotationError("'" + name + "' has no <size> (and no image size was given)");
  }

  int index = 0;
  for (const pugi::xml_node object : root.children("object")) {
    AnnotationIssue where{name, index++, detail::trimmed_string(object.child("name")), ""};
    auto bad = [&](std::string problem) {
      where.problem = std::move(problem);
      detail::report_bad_object(scene, std::move(where), options);
    };
    if (!object.child("name")) {
      bad("it has no <name>");
      continue;
    }
    const int class_id = class_index(class_names, where.class_name);
    if (class_id < 0) {
      bad("unknown class '" + where.class_name + "' (the classes are " +
          joined_class_names(class_names) + ")");
      continue;
    }
    const pugi::xml_node box_node = object.child("bndbox");
    if (!box_node) {
      bad("it has no <bndbox>");
      continue;
    }
    double corner[4] = {};
    std::string missing;
    const char* const tags[4] = {"xmin", "ymin", "xmax", "ymax"};
    for (int k = 0; k < 4 && missing.empty(); ++k) {
      const pugi::xml_node node = box_node.child(tags[k]);
      const auto value = node ? detail::parse_number(node.child_value()) : std::nullopt;
      if (!node)
        missing = std::string("it has no <") + tags[k] + ">";
      else if (!value)
        missing = std::string(tags[k]) + " '" + std::string(detail::trimmed(node.child_value())) +
                  "' is not a number";
      else
        corner[k] = *value;
    }
    if (!missing.empty()) {
      bad(missing);
      continue;
    }
    // 1-based inclusive pixel indices -> continuous coordinates.
    const Box box{static_cast<float>(corner[0] - 1), static_cast<float>(corner[1] - 1),
                  static_cast<float>(corner[2]), static_cast<float>(corner[3])};
    detail::accept_box(scene, box, class_id, std::move(where), options);
  }
  return scene;
}

/// Reads the VOC file at `path`; messages name it as `name` (default: the path).
inline SceneAnnotation read_voc(const std::filesystem::path& path,
                                std::span<const std::string> class_names,
                                const AnnotationOptions& options = {},
                                std::optional<std::pair<int, int>> image_size = std::nullopt,
                                std::string name = {}) {
  if (name.empty()) name = path.string();
  const std::vector<std::uint8_t> bytes = read_file(path);
  return parse_voc(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                   name, class_names, options, image_size);
}

}  // namespace stratum
