#!/usr/bin/env python3
"""Writes tests/data/golden_detection_ap.txt for tests/test_detection_metrics.cpp: random ground
truth and detections (seeded) and their VOC and COCO average precision, computed here with numpy
from the two benchmarks' own definitions, independently of stratum's C++:

- VOC AP50 as the Pascal VOC devkit computes it (VOCevaldet.m, VOCap.m): detections of a class
  ranked by descending score; each is matched to the ground truth of its image it overlaps most;
  a true positive if that IoU >= 0.5 and the box is not yet detected, else a false positive;
  AP = area under the precision envelope (all-point interpolation).
- COCO AP as pycocotools' cocoeval.py computes it: per image, detections by descending score
  (mergesort) each take the unmatched ground truth of largest IoU >= t (equal IoU: the later
  one); per class the images' detections are merged and ranked by score (mergesort);
  precision = tp / (tp + fp + np.spacing(1)), made non-increasing from the right, sampled at the
  101 recall thresholds np.linspace(0, 1, 101) with np.searchsorted(side='left'); AP_t is the
  mean of the samples, AP the mean over t = np.linspace(0.5, 0.95, 10). A class without ground
  truth has no AP ("none").
- Counts at IoU 0.5 with VOC's matching, for the detections of score >= 0.5.

So that float32 (C++) and float64 (here) cannot disagree on a match, coordinates are multiples of
1/64 and scores multiples of 2^-24 (exact in float32 and in the decimal text), scores are
distinct, and a detection is drawn again while its IoU with any ground truth of its class in its
image lies within 1e-4 of a threshold.

Usage: /usr/bin/python3 tests/golden/detection_ap.py tests/data/golden_detection_ap.txt
"""
import sys

import numpy as np

SEED = 14
IMAGES = 30
CLASSES = 4  # the last class has detections but no ground truth
IMAGE_SIZE = 512.0
THRESHOLDS = np.linspace(0.5, 0.95, 10)
OPERATING_SCORE = 0.5


def iou(a, b):
    """IoU of boxes (x_min, y_min, x_max, y_max) in continuous coordinates."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def quantise(box):
    box = np.clip(np.round(np.asarray(box) * 64) / 64, 0, IMAGE_SIZE)
    if box[2] - box[0] < 1:
        box[2] = box[0] + 1
    if box[3] - box[1] < 1:
        box[3] = box[1] + 1
    return box


def random_box(rng):
    w, h = np.exp(rng.uniform(np.log(4), np.log(120), size=2))
    x, y = rng.uniform(0, IMAGE_SIZE - w), rng.uniform(0, IMAGE_SIZE - h)
    return quantise([x, y, x + w, y + h])


def jittered(rng, box, spread):
    w, h = box[2] - box[0], box[3] - box[1]
    return quantise(box + rng.normal(0, spread, size=4) * np.array([w, h, w, h]))


def well_conditioned(box, class_id, truth):
    for g_box, g_class in truth:
        if g_class == class_id:
            value = iou(box, g_box)
            if np.min(np.abs(THRESHOLDS - value)) < 1e-4:
                return False
    return True


def generate(rng):
    """A list of images, each (truth: [(box, class)], detections: [(box, class, score)])."""
    images = []
    for _ in range(IMAGES):
        truth = [(random_box(rng), int(rng.choice(3, p=[0.6, 0.3, 0.1])))
                 for _ in range(rng.integers(0, 10))]
        # Crowds: a neighbour overlapping a box by about half, so that a detection's best box
        # may be taken while another is free (where VOC's and COCO's matching differ).
        for box, class_id in list(truth):
            if rng.random() < 0.4:
                w = box[2] - box[0]
                truth.append((quantise(box + rng.uniform(0.15, 0.35) * w * np.array([1, 0, 1, 0])),
                              class_id))
        proposals = []  # (how to draw a box, its class)
        for box, class_id in truth:
            for _ in range(int(rng.random() < 0.85) + int(rng.random() < 0.2)):
                detected = class_id if rng.random() < 0.9 else int(rng.integers(0, CLASSES))
                spread = rng.choice([0.03, 0.1, 0.25])
                proposals.append((lambda b=box, s=spread: jittered(rng, b, s), detected))
        for _ in range(rng.integers(0, 5)):
            proposals.append((lambda: random_box(rng), int(rng.integers(0, CLASSES))))
        detections = []
        for draw, class_id in proposals:
            box = draw()
            while not well_conditioned(box, class_id, truth):
                box = draw()
            detections.append([box, class_id, None])
        images.append((truth, detections))
    all_detections = [d for _, dets in images for d in dets]
    scores = rng.choice(1 << 24, size=len(all_detections), replace=False) / float(1 << 24)
    for d, s in zip(all_detections, scores):
        d[2] = float(s)
    return images


def voc(images, class_id):
    """VOC AP50, and (TP, FP) among detections scoring >= OPERATING_SCORE; None without truth."""
    ranked = [(d[2], i, d[0]) for i, (_, dets) in enumerate(images) for d in dets
              if d[1] == class_id]
    order = np.argsort(-np.array([r[0] for r in ranked]), kind='mergesort')
    detected = [np.zeros(len(t), bool) for t, _ in images]
    npos = sum(1 for t, _ in images for g in t if g[1] == class_id)
    tp = np.zeros(len(ranked))
    fp = np.zeros(len(ranked))
    for k, r in enumerate(order):
        score, image, box = ranked[r]
        truth = images[image][0]
        candidates = [g for g in range(len(truth)) if truth[g][1] == class_id]
        overlaps = [iou(box, truth[g][0]) for g in candidates]
        if overlaps and max(overlaps) >= 0.5:
            g = candidates[int(np.argmax(overlaps))]
            if not detected[image][g]:
                tp[k] = 1
                detected[image][g] = True
            else:
                fp[k] = 1
        else:
            fp[k] = 1
    scores = np.array([ranked[r][0] for r in order])
    kept = scores >= OPERATING_SCORE
    counts = (int(tp[kept].sum()), int(fp[kept].sum()))
    if npos == 0:
        return None, counts
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    rec = tp / npos
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])), counts


def coco(images, class_id):
    """COCO's AP at each IoU threshold; None without truth."""
    npig = sum(1 for t, _ in images for g in t if g[1] == class_id)
    if npig == 0:
        return None
    rec_thrs = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1)
    result = []
    for t in THRESHOLDS:
        scores, matched = [], []
        for truth, dets in images:
            gts = [g[0] for g in truth if g[1] == class_id]
            mine = [d for d in dets if d[1] == class_id]
            order = np.argsort(-np.array([d[2] for d in mine]), kind='mergesort')
            gtm = np.zeros(len(gts), bool)
            for k in order:
                best, m = min(t, 1 - 1e-10), -1
                for g, gt_box in enumerate(gts):
                    if gtm[g]:
                        continue
                    value = iou(mine[k][0], gt_box)
                    if value < best:
                        continue
                    best, m = value, g
                if m >= 0:
                    gtm[m] = True
                scores.append(mine[k][2])
                matched.append(m >= 0)
        inds = np.argsort(-np.array(scores), kind='mergesort')
        tps = np.array(matched, bool)[inds]
        tp_sum = np.cumsum(tps).astype(float)
        fp_sum = np.cumsum(~tps).astype(float)
        rc = tp_sum / npig
        pr = list(tp_sum / (fp_sum + tp_sum + np.spacing(1)))
        for i in range(len(pr) - 1, 0, -1):
            if pr[i] > pr[i - 1]:
                pr[i - 1] = pr[i]
        q = np.zeros(len(rec_thrs))
        for ri, pi in enumerate(np.searchsorted(rc, rec_thrs, side='left')):
            if pi < len(pr):
                q[ri] = pr[pi]
        result.append(float(np.mean(q)))
    return result


def main(path):
    rng = np.random.default_rng(SEED)
    images = generate(rng)
    lines = ['# Written by tests/golden/detection_ap.py (seed %d, numpy %s); read by '
             'tests/test_detection_metrics.cpp.' % (SEED, np.__version__),
             '# image: a new image; gt CLASS X_MIN Y_MIN X_MAX Y_MAX; '
             'det CLASS SCORE X_MIN Y_MIN X_MAX Y_MAX;',
             '# voc CLASS AP50|none TP FP (counts at score >= %g); '
             'coco CLASS none | AP_0.50 ... AP_0.95' % OPERATING_SCORE,
             'classes %d' % CLASSES]
    for truth, dets in images:
        lines.append('image')
        lines += ['gt %d %r %r %r %r' % (c, *map(float, b)) for b, c in truth]
        lines += ['det %d %r %r %r %r %r' % (c, s, *map(float, b)) for b, c, s in dets]
    for c in range(CLASSES):
        ap, (tp, fp) = voc(images, c)
        lines.append('voc %d %s %d %d' % (c, 'none' if ap is None else repr(ap), tp, fp))
        aps = coco(images, c)
        lines.append('coco %d %s' % (c, 'none' if aps is None else ' '.join(map(repr, aps))))
    with open(path, 'w') as out:
        out.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
    main(sys.argv[1])
