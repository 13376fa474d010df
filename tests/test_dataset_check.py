"""The data check (mmsplitattn.engine.data.check_dataset) on the demo sets in
the COCO, Cityscapes and ImageNet layouts, broken on purpose, and on a user's
dataset subclass, through tools/misc/check_dataset.py's builder (training
checks the datasets its Runner built: test_engine, test_faults)."""
import glob
import json
import shutil

import pytest
from mmengine.config import Config

from conftest import DET_CFG, SEG_CFG, load_tool

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def check_datasets(cfg, loaders=LOADERS[:2], read_headers=False, decode=False):
    return load_tool('misc/check_dataset.py').check(cfg, loaders, read_headers, decode)


@pytest.fixture
def data(demo_root, tmp_path, monkeypatch):
    """A private copy of data/demo (to break) in the working directory."""
    shutil.copytree(demo_root / 'data', tmp_path / 'data')
    monkeypatch.chdir(tmp_path)
    return tmp_path / 'data' / 'demo'


def _coco(data, split='train'):
    path = data / 'coco' / 'annotations' / f'instances_{split}2017.json'
    return path, json.loads(path.read_text())


def _cls_cfg(data, **dataset):
    return Config(dict(default_scope='mmpretrain', train_dataloader=dict(dataset=dict(
        type='CustomDataset', data_root=str(data / 'imagenet'), data_prefix='train',
        ann_file='meta/train.txt', pipeline=[dict(type='LoadImageFromFile')], **dataset))))


def test_demo_sets_pass(demo_root, monkeypatch):
    monkeypatch.chdir(demo_root)
    for config, train, val in ((DET_CFG, 16, 8), (SEG_CFG, 8, 4)):
        report = check_datasets(Config.fromfile(config), LOADERS, read_headers=True)
        assert report.ok and not report.warnings, report.format(config)
        assert report.checked == {'train_dataloader': f'{train} entries',
                                  'val_dataloader': f'{val} entries',
                                  'test_dataloader': 'the same dataset as val_dataloader'}
    report = check_datasets(_cls_cfg(demo_root / 'data' / 'demo'), decode=True)
    assert report.ok and report.checked == {'train_dataloader': '12 entries'}


def test_missing_and_empty_coco_images_are_named(data):
    (data / 'coco' / 'train2017' / '000000000003.jpg').unlink()
    (data / 'coco' / 'train2017' / '000000000005.jpg').write_bytes(b'')
    report = check_datasets(Config.fromfile(DET_CFG))
    assert not report.ok
    assert report.fatal == [
        'train_dataloader: missing or empty file: 2 (data/demo/coco/train2017/000000000003.jpg '
        'does not exist; data/demo/coco/train2017/000000000005.jpg is empty (0 bytes))']
    assert 'tools/misc/check_dataset.py cfg.py lists every bad file' in report.format('cfg.py')


def test_annotations_coco_loads_badly(data):
    path, ann = _coco(data)
    ann['annotations'][0]['segmentation'] = []  # mmdet leaves the instance without a mask
    ann['annotations'][1]['segmentation'] = [[1, 2, 3, 4]]  # two points: ignored by mmdet
    ann['annotations'][2]['category_id'] = 7  # not a category: dropped by mmdet
    path.write_text(json.dumps(ann))
    report = check_datasets(Config.fromfile(DET_CFG))
    assert report.fatal == ['train_dataloader: instance without a mask (the pipeline loads '
                            'masks): 1 (data/demo/coco/train2017/000000000001.jpg: instance 0 '
                            '(an empty segmentation?))']
    assert report.warnings[0].startswith(
        'train_dataloader: annotations dropped by the dataset class (category not in the '
        'classes, empty box, ignore flag): 1 (data/demo/coco/train2017/000000000001.jpg: 1 of')
    assert 'polygon of fewer than 3 points (ignored by mmdet): 1' in report.warnings[1]


def test_empty_unbuildable_and_wrapped_datasets(data):
    cfg = Config.fromfile(DET_CFG)
    path, ann = _coco(data, 'val')
    path.write_text(json.dumps(dict(ann, images=[], annotations=[])))
    train = cfg.train_dataloader.dataset
    cfg.train_dataloader.dataset = dict(type='RepeatDataset', times=2, dataset=dict(
        type='ConcatDataset', datasets=[train, dict(train, data_root='data/elsewhere/')]))
    report = check_datasets(cfg)
    assert report.checked == {'val_dataloader': '0 entries'}
    assert report.fatal[0].startswith(
        "train_dataloader: dataset that does not load: 1 (FileNotFoundError: [Errno 2] No such "
        "file or directory: 'data/elsewhere/annotations/instances_train2017.json' (working "
        "directory ")
    assert '--cfg-options train_dataloader.dataset.dataset.datasets.1.data_root=/path/to/data/' \
        in report.fatal[0]  # the dataset inside the wrappers whose files are gone
    assert report.fatal[1] == ('val_dataloader: empty dataset: 1 (CocoDataset loaded no entry '
                               'from data/demo/coco/annotations/instances_val2017.json)')

    path.write_text(path.read_text()[:-1])  # a JSON syntax error
    with pytest.raises(json.JSONDecodeError) as error:
        json.loads(path.read_text())
    report = check_datasets(Config.fromfile(DET_CFG), ['val_dataloader'])
    assert report.fatal == ['val_dataloader: dataset that does not load: 1 (data/demo/coco/'
                            f'annotations/instances_val2017.json: JSONDecodeError: {error.value})']


def test_a_users_dataset_subclass_is_checked_by_what_it_loads(data):
    from mmdet.datasets import CocoDataset
    from mmdet.registry import DATASETS

    @DATASETS.register_module(name='OffByOneShapes', force=True)
    class OffByOneShapes(CocoDataset):
        """Two of the three classes, in another layout; labels = category ids (1-based)."""
        METAINFO = dict(classes=('circle', 'square'))

        def parse_data_info(self, raw_data_info):
            info = super().parse_data_info(raw_data_info)
            for instance in info['instances']:
                instance['bbox_label'] = self.cat_ids[instance['bbox_label']]
            return info

    shutil.move(data / 'coco' / 'train2017', data / 'coco' / 'pictures')
    cfg = Config(dict(default_scope='mmdet', train_dataloader=dict(dataset=dict(
        type='OffByOneShapes', data_root='data/demo/coco/', data_prefix=dict(img='pictures/'),
        ann_file='annotations/instances_train2017.json', pipeline=[]))))
    report = check_datasets(cfg)
    assert report.fatal[0].startswith('train_dataloader: label outside the classes: ')
    assert '(data/demo/coco/pictures/000000000002.jpg: instance 0: bbox_label 2; ' \
        in report.fatal[0]
    assert 'annotations dropped by the dataset class' in report.warnings[0]  # triangles
    (data / 'coco' / 'pictures' / '000000000002.jpg').unlink()
    assert 'pictures/000000000002.jpg does not exist' in '\n'.join(check_datasets(cfg).fatal)


def test_a_dataset_class_without_lazy_init_is_checked_as_configured(data):
    from mmengine.dataset import BaseDataset
    from mmpretrain.registry import DATASETS

    @DATASETS.register_module(name='FixedArgsList', force=True)
    class FixedArgsList(BaseDataset):
        """Takes only its own arguments; its entries name one missing file."""
        def __init__(self, root, pipeline):
            super().__init__(data_root=root, pipeline=pipeline)

        def load_data_list(self):
            return [dict(img_path=f'{self.data_root}/{name}', gt_label=0)
                    for name in ('train/circle/circle_00000.png', 'gone.png')]

    report = check_datasets(Config(dict(default_scope='mmpretrain', train_dataloader=dict(
        dataset=dict(type='FixedArgsList', root=str(data / 'imagenet'), pipeline=[])))))
    assert report.checked == {'train_dataloader': '2 entries'}
    assert report.fatal == [f'train_dataloader: missing or empty file: 1 '
                            f'({data / "imagenet"}/gone.png does not exist)']


@pytest.mark.parametrize('serialize', [True, False])
def test_an_entry_without_files_is_named_by_its_index(serialize):
    from mmengine.dataset import BaseDataset

    from mmsplitattn.engine import check_dataset
    from mmsplitattn.engine.data import DatasetReport

    class Labels(BaseDataset):
        METAINFO = dict(classes=('a', 'b'))

        def load_data_list(self):
            return [dict(gt_label=1), dict(gt_label=7)]

    report = DatasetReport()
    check_dataset(Labels(serialize_data=serialize), 'train_dataloader', report)
    assert report.fatal == ['train_dataloader: label outside the classes: 1 '
                            '(entry 1: gt_label 7)']


def test_label_values_and_sizes(data):
    import cv2
    label = sorted(glob.glob(str(data / 'cityscapes' / 'gtFine' / 'val' / '*' /
                                 '*_labelTrainIds.png')))[0]
    cv2.imwrite(label, cv2.imread(label, cv2.IMREAD_UNCHANGED) * 0 + 30)  # 19 classes
    cfg = Config.fromfile(SEG_CFG)
    assert check_datasets(cfg, read_headers=True).ok
    fatal = check_datasets(cfg, decode=True).fatal
    assert fatal == [f'val_dataloader: label value outside the classes: 1 '
                     f'({label[len(str(data.parent.parent)) + 1:]}: values [30])']
    cv2.imwrite(label, cv2.imread(label, cv2.IMREAD_UNCHANGED)[:64])
    assert check_datasets(cfg).ok  # sizes are read only with read_headers
    fatal = check_datasets(cfg, read_headers=True).fatal
    assert 'val_dataloader: label map of another size than its image: 1 (label map ' in fatal[0]
    assert 'is 256x64 (WxH) but its image ' in fatal[0]

    meta = data / 'imagenet' / 'meta' / 'train.txt'
    meta.write_text(meta.read_text().replace(' 2\n', ' 3\n', 1))
    fatal = check_datasets(_cls_cfg(data, metainfo=dict(classes=('c', 's', 't')))).fatal
    assert fatal[0].startswith('train_dataloader: label outside the classes: 1 (')
    assert fatal[0].endswith('train/triangle/triangle_00002.png: gt_label 3)')
