// Reading box annotations: Pascal VOC (pugixml) and YOLO labels. Every kind of bad annotation
// is left out with a message naming the file, the object and its class, or thrown in strict
// mode; boxes one pixel past the edge are clamped and counted.
#include <doctest/doctest.h>
#include <stratum/data/voc.hpp>
#include <stratum/data/yolo_labels.hpp>

#include "detection_data.hpp"

using namespace stratum;
using stratum::testing::voc_document;
using stratum::testing::voc_object;

namespace {

const std::vector<std::string> voc_test_classes{"with_mask", "without_mask",
                                                "mask_weared_incorrect"};

/// Parses `objects` in a 400 x 300 image; the object of interest is always the second one,
/// between two good ones.
SceneAnnotation voc_test_parse(const std::string& bad_object, bool strict = false) {
  AnnotationOptions options;
  options.strict = strict;
  const std::string xml =
      voc_document(400, 300,
                   voc_object("with_mask", "10", "20", "30", "40") + bad_object +
                       voc_object("without_mask", "1", "1", "5", "5"));
  return parse_voc(xml, "scene.xml", voc_test_classes, options);
}

}  // namespace

TEST_CASE("VOC: boxes become continuous pixel boxes, classes map through the list") {
  const std::string xml =
      "\n<annotation>\n<folder>images</folder><filename>x.png</filename>"
      "<size><width> 400 </width><height>267</height><depth>3</depth></size>" +
      voc_object("without_mask", "79", "105", "109", "142") +
      voc_object("mask_weared_incorrect", " 1 ", "1", "400", "267") +
      voc_object("with_mask", "10.5", "+20", "30.25", "40") + "</annotation>";
  const SceneAnnotation scene = parse_voc(xml, "x.xml", voc_test_classes);
  CHECK(scene.width == 400);
  CHECK(scene.height == 267);
  CHECK(scene.issues.empty());
  CHECK(scene.clamped_boxes == 0);
  REQUIRE(scene.boxes.size() == 3);
  // 1-based inclusive (79..109) -> [78, 109]: 31 pixels wide.
  CHECK(scene.boxes[0].box == Box{78, 104, 109, 142});
  CHECK(scene.boxes[0].class_id == 1);
  CHECK(scene.boxes[0].box.width() == 31);
  CHECK(scene.boxes[1].box == Box{0, 0, 400, 267});  // the whole image
  CHECK(scene.boxes[1].class_id == 2);
  CHECK(scene.boxes[2].box == Box{9.5f, 19, 30.25f, 40});
  CHECK(scene.boxes[2].class_id == 0);
}

TEST_CASE("VOC: each kind of bad object is left out, named, and the rest is read") {
  struct Case {
    std::string object;
    std::string class_name;
    std::string problem;
  };
  const Case cases[] = {
      {voc_object("dog", "1", "1", "5", "5"), "dog",
       "unknown class 'dog' (the classes are with_mask, without_mask, mask_weared_incorrect)"},
      {"<object><bndbox><xmin>1</xmin></bndbox></object>", "", "it has no <name>"},
      {"<object><name>with_mask</name></object>", "with_mask", "it has no <bndbox>"},
      {"<object><name>with_mask</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax></bndbox></"
       "object>",
       "with_mask", "it has no <ymax>"},
      {voc_object("with_mask", "1", "1", "5a", "5"), "with_mask", "xmax '5a' is not a number"},
      {voc_object("with_mask", "1", "", "5", "5"), "with_mask", "ymin '' is not a number"},
      {voc_object("with_mask", "1", "1", "nan", "5"), "with_mask", "xmax 'nan' is not a number"},
      {voc_object("without_mask", "10", "10", "9", "20"), "without_mask", "the box has zero size"},
      {voc_object("without_mask", "10", "10", "20", "5"), "without_mask",
       "the box is inverted (its maximum is below its minimum)"},
      {voc_object("with_mask", "390", "10", "402", "20"), "with_mask",
       "reaches outside the 400x300 image"},
      {voc_object("with_mask", "-1", "10", "20", "20"), "with_mask",
       "reaches outside the 400x300 image"},
      {voc_object("with_mask", "401", "10", "401", "20"), "with_mask",
       "reaches outside the 400x300 image"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.object);
    const SceneAnnotation scene = voc_test_parse(c.object);
    REQUIRE(scene.boxes.size() == 2);  // the good objects around it
    CHECK(scene.boxes[1].class_id == 1);
    REQUIRE(scene.issues.size() == 1);
    const AnnotationIssue& issue = scene.issues[0];
    CHECK(issue.file == "scene.xml");
    CHECK(issue.object == 1);
    CHECK(issue.class_name == c.class_name);
    CHECK(issue.problem.find(c.problem) != std::string::npos);
    CHECK(issue.message().find("'scene.xml' object 1 (" +
                               (c.class_name.empty() ? "no class" : c.class_name) + "): ") == 0);
    // Strict: the same problem stops the read.
    CHECK_THROWS_WITH_AS(voc_test_parse(c.object, true), doctest::Contains(c.problem.c_str()),
                         AnnotationError);
  }
}

TEST_CASE("VOC: a box one pixel past the edge is clamped and counted, not reported") {
  const SceneAnnotation right = voc_test_parse(voc_object("with_mask", "390", "10", "401", "20"));
  CHECK(right.issues.empty());
  CHECK(right.clamped_boxes == 1);
  REQUIRE(right.boxes.size() == 3);
  CHECK(right.boxes[1].box == Box{389, 9, 400, 20});
  // xmin = 0 is one pixel left of the first column (1-based); ymax = 301 one below the last row.
  const SceneAnnotation corner = voc_test_parse(voc_object("with_mask", "0", "290", "10", "301"));
  CHECK(corner.issues.empty());
  CHECK(corner.clamped_boxes == 1);
  CHECK(corner.boxes[1].box == Box{0, 289, 10, 300});
  // A tolerance of 0 makes the same box a bad one.
  AnnotationOptions exact;
  exact.edge_tolerance = 0;
  const SceneAnnotation strict_edges =
      parse_voc(voc_document(400, 300, voc_object("with_mask", "390", "10", "401", "20")), "e.xml",
                voc_test_classes, exact);
  CHECK(strict_edges.boxes.empty());
  CHECK(strict_edges.issues.size() == 1);
}

TEST_CASE("VOC: files that cannot be read throw, naming the file") {
  auto parse = [](const std::string& xml) {
    return parse_voc(xml, "broken.xml", voc_test_classes);
  };
  CHECK_THROWS_WITH_AS(parse("<annotation><size>"),
                       doctest::Contains("'broken.xml' is not well-formed XML"), AnnotationError);
  CHECK_THROWS_WITH_AS(parse("<annotation><object></annotation>"),
                       doctest::Contains("'broken.xml' is not well-formed XML"), AnnotationError);
  CHECK_THROWS_WITH_AS(parse(""), doctest::Contains("'broken.xml' is not well-formed XML"),
                       AnnotationError);
  CHECK_THROWS_WITH_AS(parse("<other/>"),
                       doctest::Contains("'broken.xml' has no <annotation> element"),
                       AnnotationError);
  CHECK_THROWS_WITH_AS(parse("<annotation/>"), doctest::Contains("has no <size>"), AnnotationError);
  CHECK_THROWS_WITH_AS(parse("<annotation><size><width>40</width></size></annotation>"),
                       doctest::Contains("has no <size><height>"), AnnotationError);
  CHECK_THROWS_WITH_AS(
      parse("<annotation><size><width>4x0</width><height>3</height></size></annotation>"),
      doctest::Contains("image width '4x0' that is not a positive integer"), AnnotationError);
  CHECK_THROWS_WITH_AS(
      parse("<annotation><size><width>0</width><height>3</height></size></annotation>"),
      doctest::Contains("not a positive integer"), AnnotationError);
  // Given the decoded image's size, a <size> that disagrees is an error and a missing one is not.
  CHECK_THROWS_WITH_AS(
      parse_voc(voc_document(400, 300, ""), "s.xml", voc_test_classes, {}, std::pair{300, 400}),
      doctest::Contains("gives the image size 400x300 but the image is 300x400"), AnnotationError);
  const SceneAnnotation sized =
      parse_voc("<annotation>" + voc_object("with_mask", "1", "1", "2", "2") + "</annotation>",
                "n.xml", voc_test_classes, {}, std::pair{10, 10});
  CHECK(sized.width == 10);
  CHECK(sized.boxes.size() == 1);
  // An annotation without objects is a scene without faces.
  CHECK(parse(voc_document(10, 10, "")).boxes.empty());
}

TEST_CASE("VOC: the face-mask set's stray-text file and its 401-px box") {
  const auto dir = stratum::testing::face_mask_detection_dir();
  if (dir.empty()) {
    MESSAGE("skipped: the face-mask detection set is not in ../shared");
    return;
  }
  // maksssksksss0.xml has a file path pasted after its first </bndbox>.
  const SceneAnnotation stray =
      read_voc(dir / "annotations" / "maksssksksss0.xml", voc_test_classes);
  CHECK(stray.width == 512);
  CHECK(stray.height == 366);
  CHECK(stray.issues.empty());
  REQUIRE(stray.boxes.size() == 3);
  CHECK(stray.boxes[0].box == Box{78, 104, 109, 142});
  CHECK(stray.boxes[0].class_id == 1);
  CHECK(stray.boxes[1].box == Box{184, 99, 226, 144});
  CHECK(stray.boxes[1].class_id == 0);
  // Scene 5 (400 px wide) has a box with xmax = 401.
  const SceneAnnotation five =
      read_voc(dir / "annotations" / "maksssksksss5.xml", voc_test_classes);
  CHECK(five.width == 400);
  CHECK(five.issues.empty());
  CHECK(five.clamped_boxes == 1);
  for (const LabelledBox& b : five.boxes) CHECK(b.box.x_max <= 400);
  // A missing file names itself.
  CHECK_THROWS_WITH_AS(read_voc(dir / "annotations" / "no-such-scene.xml", voc_test_classes),
                       doctest::Contains("no-such-scene.xml"), IoError);
}

TEST_CASE("YOLO labels: normalised centres and sizes become pixel boxes; bad lines are named") {
  const std::vector<std::string> classes{"with_mask", "without_mask"};
  const std::string text =
      "0 0.5 0.5 0.25 0.5\n"
      "\n"
      "1 0.1 0.2 0.1 0.2\r\n"
      "2 0.5 0.5 0.1 0.1\n"      // class out of range
      "1 0.5 0.5 0.1\n"          // four fields
      "0 0.5 0.5 0.1 0.1 0.9\n"  // six fields (a confidence column)
      "0 0.5 abc 0.1 0.1\n"      // garbled
      "1.5 0.5 0.5 0.1 0.1\n"    // class not a whole number
      "0 0.5 0.5 0 0.1\n"        // zero width
      "0 0.5 0.5 -0.1 0.1\n"     // inverted
      "1 0.95 0.5 0.2 0.1\n"     // 20 px past the right edge
      "0 0.9975 0.5 0.01 0.1";   // 1 px past the right edge: clamped (no final newline)
  const SceneAnnotation scene = parse_yolo_labels(text, "labels/a.txt", 400, 200, classes);
  REQUIRE(scene.boxes.size() == 3);
  CHECK(scene.boxes[0].box == Box{150, 50, 250, 150});
  CHECK(scene.boxes[0].class_id == 0);
  CHECK(scene.boxes[1].box.x_min == doctest::Approx(20));
  CHECK(scene.boxes[1].box.y_max == doctest::Approx(60));
  CHECK(scene.boxes[1].class_id == 1);
  CHECK(scene.boxes[2].box.x_max == 400);
  CHECK(scene.boxes[2].box.x_min == doctest::Approx(397));
  CHECK(scene.clamped_boxes == 1);
  const std::vector<std::pair<int, std::string>> expected = {
      {2, "the class '2' is not an index in [0, 2)"},
      {3, "the line has 4 fields, not 5"},
      {4, "the line has 6 fields, not 5"},
      {5, "centre_y 'abc' is not a number"},
      {6, "the class '1.5' is not an index"},
      {7, "the box has zero size"},
      {8, "the box is inverted"},
      {9, "reaches outside the 400x200 image"}};
  REQUIRE(scene.issues.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(scene.issues[i].file == "labels/a.txt");
    CHECK(scene.issues[i].object == expected[i].first);
    CHECK(scene.issues[i].problem.find(expected[i].second) != std::string::npos);
  }
  CHECK(scene.issues[1].class_name == "without_mask");  // the class is named when it is known
  AnnotationOptions strict;
  strict.strict = true;
  CHECK_THROWS_WITH_AS(parse_yolo_labels(text, "labels/a.txt", 400, 200, classes, strict),
                       doctest::Contains("'labels/a.txt' object 2 (2): the class '2'"),
                       AnnotationError);
  CHECK(parse_yolo_labels("", "empty.txt", 4, 4, classes).boxes.empty());
  CHECK_THROWS_AS(parse_yolo_labels("", "x.txt", 0, 4, classes), AnnotationError);
}
