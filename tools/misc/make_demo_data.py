"""Write a small synthetic dataset in the real COCO 2017, Cityscapes and ImageNet layouts.

    python tools/misc/make_demo_data.py [--out data/demo] [--seed 0]

COCO (``<out>/coco``): ``train2017/``, ``val2017/`` and
``annotations/instances_{train,val}2017.json`` with polygon masks of circles,
squares and triangles on a textured background.

Cityscapes (``<out>/cityscapes``): ``leftImg8bit/{train,val}/<city>/*_leftImg8bit.png``
and ``gtFine/{train,val}/<city>/*_gtFine_polygons.json`` street-like scenes,
converted to ``*_gtFine_labelTrainIds.png`` with cityscapesscripts'
``json2labelImg`` exactly as mmseg's ``tools/dataset_converters/cityscapes.py``
does.

ImageNet (``<out>/imagenet``): ``{train,val}/<class>/<class>_<n>.png`` and
``meta/{train,val}.txt`` (``<class>/<file> <label>`` per line), the layout
mmpretrain's ``ImageNet``/``CustomDataset`` read: one circle, square or
triangle per image on the COCO images' textured background, at the COCO
objects' size in pixels, classes in turn.

The output is a pure function of the seed (the ImageNet-layout set draws
from its own generator, so adding it left the other two unchanged); each
dataset is written to a temporary folder and moved into place only when
complete.
"""
import argparse
import json
import math
import os
import os.path as osp
import shutil
import tempfile

import cv2
import numpy as np

COCO_CLASSES = ('circle', 'square', 'triangle')
# Cityscapes label names drawn in the street scenes (their trainIds: road 0,
# building 2, vegetation 8, sky 10, person 11, car 13).
CITY_LABELS = ('road', 'building', 'vegetation', 'sky', 'person', 'car')
CITY_COLORS = {'road': (128, 64, 128), 'building': (70, 70, 70), 'vegetation': (107, 142, 35),
               'sky': (70, 130, 180), 'person': (220, 20, 60), 'car': (0, 0, 142)}


def shape_polygon(rng, kind, cx, cy, r):
    """Vertices (N, 2) float of a circle / square / triangle of radius r."""
    if kind == 'circle':
        t = np.linspace(0, 2 * math.pi, 32, endpoint=False)
    elif kind == 'square':
        t = np.array([0.25, 0.75, 1.25, 1.75]) * math.pi + rng.uniform(0, math.pi / 2)
    else:
        t = np.array([0, 2 / 3, 4 / 3]) * math.pi + rng.uniform(0, 2 * math.pi)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def textured_background(rng, h, w):
    """A smooth random colour field with noise, (h, w, 3) uint8."""
    small = rng.uniform(40, 200, size=(4, 4, 3)).astype(np.float32)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 8, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_coco_split(rng, root, split, num_images, size):
    img_dir = osp.join(root, f'{split}2017')
    os.makedirs(img_dir)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        h, w = size
        img = textured_background(rng, h, w)
        placed = []
        for _ in range(rng.integers(1, 4)):
            for _try in range(20):  # place without heavy overlap
                r = rng.uniform(0.12, 0.26) * min(h, w)
                cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
                if all(math.hypot(cx - px, cy - py) > r + pr for px, py, pr in placed):
                    break
            else:
                continue
            placed.append((cx, cy, r))
            label = int(rng.integers(len(COCO_CLASSES)))
            poly = shape_polygon(rng, COCO_CLASSES[label], cx, cy, r)
            color = [int(c) for c in rng.integers(0, 256, 3)]
            cv2.fillPoly(img, [np.round(poly).astype(np.int32)], color)
            x0, y0 = poly.min(0)
            x1, y1 = poly.max(0)
            annotations.append(dict(
                id=len(annotations) + 1, image_id=image_id, category_id=label + 1,
                segmentation=[[round(float(v), 2) for v in poly.reshape(-1)]],
                area=float(cv2.contourArea(poly.astype(np.float32))),
                bbox=[round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)],
                iscrowd=0))
        file_name = f'{image_id:012d}.jpg'
        cv2.imwrite(osp.join(img_dir, file_name), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append(dict(id=image_id, file_name=file_name, height=h, width=w))
    categories = [dict(id=i + 1, name=n, supercategory='shape')
                  for i, n in enumerate(COCO_CLASSES)]
    with open(osp.join(root, 'annotations', f'instances_{split}2017.json'), 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)


def make_classification_split(rng, root, split, num_images, size):
    """``root/<split>/<class>/*.png`` and ``root/meta/<split>.txt``: one shape per image."""
    h, w = size
    lines = []
    for i in range(num_images):
        label = i % len(COCO_CLASSES)
        name = COCO_CLASSES[label]
        img = textured_background(rng, h, w)
        r = rng.uniform(0.2, 0.45) * min(h, w)
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        poly = shape_polygon(rng, name, cx, cy, r)
        color = [int(c) for c in rng.integers(0, 256, 3)]
        cv2.fillPoly(img, [np.round(poly).astype(np.int32)], color)
        file_name = f'{name}/{name}_{i:05d}.png'
        os.makedirs(osp.join(root, split, name), exist_ok=True)
        cv2.imwrite(osp.join(root, split, file_name), img)
        lines.append(f'{file_name} {label}\n')
    with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
        f.writelines(lines)


def street_scene(rng, h, w):
    """Polygons (label, (N, 2) int) back to front, for one street-like scene."""
    horizon = int(h * rng.uniform(0.4, 0.6))
    objects = [('sky', [(0, 0), (w - 1, 0), (w - 1, horizon), (0, horizon)]),
               ('road', [(0, horizon), (w - 1, horizon), (w - 1, h - 1), (0, h - 1)])]
    x = 0
    while x < w:
        bw = int(rng.uniform(0.1, 0.3) * w)
        top = int(horizon * rng.uniform(0.1, 0.6))
        label = 'building' if rng.random() < 0.7 else 'vegetation'
        objects.append((label, [(x, top), (min(x + bw, w - 1), top),
                                (min(x + bw, w - 1), horizon), (x, horizon)]))
        x += bw + int(rng.uniform(0, 0.1) * w)
    for _ in range(rng.integers(1, 4)):
        cw, ch = int(rng.uniform(0.12, 0.22) * w), int(rng.uniform(0.12, 0.2) * h)
        cx, cy = int(rng.uniform(0, w - cw)), int(rng.uniform(horizon, h - ch))
        objects.append(('car', [(cx, cy), (cx + cw, cy), (cx + cw, cy + ch), (cx, cy + ch)]))
    for _ in range(rng.integers(0, 3)):
        pw, ph = int(rng.uniform(0.03, 0.05) * w), int(rng.uniform(0.2, 0.3) * h)
        px, py = int(rng.uniform(0, w - pw)), int(rng.uniform(horizon - ph // 2, h - ph))
        objects.append(('person', [(px + pw // 2, py), (px + pw, py + ph), (px, py + ph)]))
    return [(label, np.array(poly, np.int32)) for label, poly in objects]


def make_cityscapes_split(rng, root, split, num_images, size, cities):
    from cityscapesscripts.preparation.json2labelImg import json2labelImg
    h, w = size
    for i in range(num_images):
        city = cities[i % len(cities)]
        stem = f'{city}_{i:06d}_000019'
        img_dir = osp.join(root, 'leftImg8bit', split, city)
        gt_dir = osp.join(root, 'gtFine', split, city)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(gt_dir, exist_ok=True)
        img = np.zeros((h, w, 3), np.uint8)
        objects = street_scene(rng, h, w)
        for label, poly in objects:
            base = np.array(CITY_COLORS[label][::-1], np.float32)
            color = np.clip(base + rng.normal(0, 20, 3), 0, 255)
            cv2.fillPoly(img, [poly], [int(c) for c in color])
        img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(osp.join(img_dir, f'{stem}_leftImg8bit.png'), img)
        json_file = osp.join(gt_dir, f'{stem}_gtFine_polygons.json')
        with open(json_file, 'w') as f:
            json.dump(dict(imgHeight=h, imgWidth=w, objects=[
                dict(label=label, polygon=poly.tolist()) for label, poly in objects]), f)
        json2labelImg(json_file, json_file.replace('_polygons.json', '_labelTrainIds.png'),
                      'trainIds')


def write_atomically(dst, writer):
    """Run writer(tmp_dir) and move tmp_dir to dst only if it completes."""
    parent = osp.dirname(osp.abspath(dst))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.tmp-', dir=parent)
    old = None
    try:
        writer(tmp)
        if osp.exists(dst):  # two renames: readers of dst see it gone only between them
            old = tempfile.mkdtemp(prefix='.old-', dir=parent)
            os.replace(dst, osp.join(old, 'data'))
        os.replace(tmp, dst)
    finally:
        for path in (tmp, old):
            if path is not None and osp.exists(path):
                shutil.rmtree(path)


def make_demo_data(out: str = 'data/demo', seed: int = 0, coco_train: int = 240,
                   coco_val: int = 60, coco_size: tuple = (160, 160), city_train: int = 60,
                   city_val: int = 16, city_size: tuple = (128, 256), cls_train: int = 1500,
                   cls_val: int = 300, cls_size: tuple = (96, 96)) -> tuple:
    """Write ``out/coco``, ``out/cityscapes`` and ``out/imagenet``; returns their paths.

    ``cls_train``/``cls_val`` images (classes in turn) of ``cls_size`` (h, w)
    go into the ImageNet-layout set; 0 skips a split.
    """
    for name, value in (('coco_train', coco_train), ('coco_val', coco_val),
                        ('city_train', city_train), ('city_val', city_val),
                        ('cls_train', cls_train), ('cls_val', cls_val)):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f'{name} must be an int >= 0, got {value!r}')
    rng = np.random.default_rng(seed)
    cls_rng = np.random.default_rng([seed, 1])  # independent of the other two sets

    def coco(tmp):
        os.makedirs(osp.join(tmp, 'annotations'))
        make_coco_split(rng, tmp, 'train', coco_train, coco_size)
        make_coco_split(rng, tmp, 'val', coco_val, coco_size)

    def cityscapes(tmp):
        make_cityscapes_split(rng, tmp, 'train', city_train, city_size,
                              ('aachen', 'bremen', 'zurich'))
        make_cityscapes_split(rng, tmp, 'val', city_val, city_size,
                              ('frankfurt', 'lindau'))

    def imagenet(tmp):
        os.makedirs(osp.join(tmp, 'meta'))
        make_classification_split(cls_rng, tmp, 'train', cls_train, cls_size)
        make_classification_split(cls_rng, tmp, 'val', cls_val, cls_size)

    paths = osp.join(out, 'coco'), osp.join(out, 'cityscapes'), osp.join(out, 'imagenet')
    write_atomically(paths[0], coco)
    write_atomically(paths[1], cityscapes)
    write_atomically(paths[2], imagenet)
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='data/demo', help='output folder')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--coco-train', type=int, default=240)
    parser.add_argument('--coco-val', type=int, default=60)
    parser.add_argument('--city-train', type=int, default=60)
    parser.add_argument('--city-val', type=int, default=16)
    parser.add_argument('--cls-train', type=int, default=1500,
                        help='images of the ImageNet-layout classification set')
    parser.add_argument('--cls-val', type=int, default=300)
    args = parser.parse_args()
    coco, city, imagenet = make_demo_data(
        args.out, args.seed, args.coco_train, args.coco_val, city_train=args.city_train,
        city_val=args.city_val, cls_train=args.cls_train, cls_val=args.cls_val)
    print(f'COCO-layout demo data: {coco}\nCityscapes-layout demo data: {city}\n'
          f'ImageNet-layout demo data: {imagenet}')


if __name__ == '__main__':
    main()
