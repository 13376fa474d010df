"""What SafeRunner's data check costs at the start of a run, against the dataset
build every run does anyway, on a synthetic COCO of a chosen size.

    python tools/analysis_tools/benchmark_data_check.py [--images 118287]
        [--instances 7] [--rounds 3]

Writes instances_train2017.json (``--images`` images, ``--instances``
polygon instances each, like COCO train's 7.3) and a small JPEG under every
image name, then, each round: builds mmdet's CocoDataset as the
Runner does (``Runner.build_dataloader``: JSON parse, filtering,
serialisation) and runs :func:`mmsplitattn.engine.data.check_dataset` on it
(one stat per file, every entry's labels, boxes and masks). Prints both times
and their ratio; the check runs on rank 0 only.
"""
import argparse
import io
import json
import os
import os.path as osp
import statistics
import tempfile
import time

import numpy as np
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from PIL import Image

from mmsplitattn.engine.data import DatasetReport, check_dataset


def write_coco(root: str, images: int, instances: int) -> None:
    """``root``/annotations/instances_train2017.json and ``root``/train2017/*.jpg."""
    os.makedirs(osp.join(root, 'annotations'))
    os.makedirs(osp.join(root, 'train2017'))
    jpeg = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(jpeg, format='JPEG')
    anns, ann_id = [], 0
    for image_id in range(1, images + 1):
        with open(osp.join(root, 'train2017', f'{image_id:012d}.jpg'), 'wb') as f:
            f.write(jpeg.getvalue())
        for k in range(instances):
            ann_id += 1
            x, y = 10.0 + k, 20.0 + k
            anns.append(dict(id=ann_id, image_id=image_id, category_id=1 + k % 3, iscrowd=0,
                             bbox=[x, y, 30.0, 40.0], area=1200.0, segmentation=[
                                 [x, y, x + 30, y, x + 30, y + 40, x, y + 40]]))
    coco = dict(images=[dict(id=i, file_name=f'{i:012d}.jpg', width=640, height=480)
                        for i in range(1, images + 1)], annotations=anns,
                categories=[dict(id=i, name=n) for i, n in enumerate(('a', 'b', 'c'), 1)])
    with open(osp.join(root, 'annotations', 'instances_train2017.json'), 'w') as f:
        json.dump(coco, f)


def one_round(root: str):
    """(seconds to build the dataset as the Runner does, seconds to check it)."""
    dataset = dict(type='CocoDataset', data_root=root + '/',
                   metainfo=dict(classes=('a', 'b', 'c')), ann_file='annotations/instances_train2017.json',
                   data_prefix=dict(img='train2017/'), filter_cfg=dict(filter_empty_gt=True),
                   pipeline=[dict(type='LoadImageFromFile'),
                             dict(type='LoadAnnotations', with_bbox=True, with_mask=True)])
    start = time.perf_counter()
    with DefaultScope.overwrite_default_scope('mmdet'):
        loader = Runner.build_dataloader(dict(dataset=dataset, batch_size=2, num_workers=0,
                                              sampler=dict(type='DefaultSampler')))
    built = time.perf_counter()
    report = DatasetReport()
    check_dataset(loader.dataset, 'train_dataloader', report)
    checked = time.perf_counter()
    if not report.ok:
        raise RuntimeError(report.format('the synthetic COCO'))
    return built - start, checked - built


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=118287)
    parser.add_argument('--instances', type=int, default=7)
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args(argv)
    import mmdet.datasets  # noqa: F401 - registers CocoDataset
    with tempfile.TemporaryDirectory() as root:
        write_coco(root, args.images, args.instances)
        ratios = []
        for r in range(args.rounds):
            build, check = one_round(root)
            ratios.append(check / build)
            print(f'round {r + 1}: build {build:.2f} s, check {check:.2f} s, '
                  f'ratio {ratios[-1]:.3f}', flush=True)
    ratio = statistics.median(ratios)
    print(f'{args.images} images x {args.instances} instances: the check costs '
          f'{ratio:.3f}x the Runner\'s own build (median of {args.rounds} rounds)')
    return ratio


if __name__ == '__main__':
    main()
