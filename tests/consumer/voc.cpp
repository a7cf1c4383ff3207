// Reads a Pascal VOC annotation through stratum::voc, the target that brings pugixml.
#include <stratum/data/voc.hpp>

#include <iostream>

int main() {
  const std::vector<std::string> classes{"with_mask", "without_mask"};
  const stratum::SceneAnnotation scene = stratum::parse_voc(
      "<annotation><size><width>40</width><height>30</height></size><object><name>without_mask"
      "</name><bndbox><xmin>2</xmin><ymin>3</ymin><xmax>10</xmax><ymax>12</ymax></bndbox>"
      "</object></annotation>",
      "consumer.xml", classes);
  std::cout << "stratum::voc: " << scene.boxes.size() << " box, class " << scene.boxes[0].class_id
            << '\n';
  return scene.boxes.size() == 1 && scene.boxes[0].box == stratum::Box{1, 2, 10, 12} ? 0 : 1;
}
