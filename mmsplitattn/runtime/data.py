"""Dataset checks for the tools: paths that exist, files that parse."""
import os
import os.path as osp


def _dataset_paths(dataset):
    """(data_root, [required files/dirs]) of a (possibly wrapped) dataset cfg."""
    while 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset, ...
        dataset = dataset['dataset']
    if 'datasets' in dataset:  # ConcatDataset
        return [p for d in dataset['datasets'] for p in _dataset_paths(d)]
    root = dataset.get('data_root', '') or ''
    paths = [root] if root else []
    if dataset.get('ann_file'):
        paths.append(osp.join(root, dataset['ann_file']))
    prefixes = dataset.get('data_prefix') or {}
    if isinstance(prefixes, str):  # mmpretrain's CustomDataset takes a folder
        prefixes = dict(img_path=prefixes)
    for prefix in prefixes.values():
        if isinstance(prefix, str) and prefix:
            paths.append(osp.join(root, prefix))
    return paths


def check_dataset_paths(cfg, loaders) -> None:
    """Raise FileNotFoundError naming the first missing dataset path.

    Args:
        loaders (list[str]): e.g. ``['train_dataloader', 'val_dataloader']``.
    """
    for loader in loaders:
        if cfg.get(loader) is None:
            continue
        for path in _dataset_paths(cfg[loader]['dataset']):
            if not osp.exists(path):
                raise FileNotFoundError(
                    f'{loader}: dataset path {path!r} does not exist (working '
                    f'directory {os.getcwd()!r}). Prepare the dataset as the '
                    "README's 'Data' section shows, or point the config at it, e.g. "
                    f'--cfg-options {loader}.dataset.data_root=/path/to/data/')


# ---------------------------------------------------------------------------
# Content checks: what tools/misc/check_dataset.py does in full and
# tools/train.py does cheaply (annotation files only) before training.

# Problems that would stop training or corrupt it: reported as errors.
FATAL = ('unreadable annotation file', 'empty segmentation (masks are loaded)',
         'label of another size than its image', 'missing label', 'missing image',
         'undecodable image', 'undecodable label', 'label out of range')


class DatasetReport:
    """Counts and first examples of each kind of problem found in a dataset."""

    def __init__(self, name: str):
        self.name = name
        self.checked = {}  # what was checked -> how many
        self.problems = {}  # kind -> [count, [first examples]]

    def count(self, what: str, n: int = 1) -> None:
        self.checked[what] = self.checked.get(what, 0) + n

    def add(self, kind: str, example: str) -> None:
        entry = self.problems.setdefault(kind, [0, []])
        entry[0] += 1
        if len(entry[1]) < 5:
            entry[1].append(example)

    @property
    def fatal(self):
        return {k: v for k, v in self.problems.items() if k in FATAL}

    def lines(self, kinds=None):
        kinds = self.problems if kinds is None else kinds
        return [f'  {kind}: {n} (first: {"; ".join(examples)})'
                for kind, (n, examples) in self.problems.items() if kind in kinds]

    def summary(self) -> str:
        checked = ', '.join(f'{n} {what}' for what, n in self.checked.items())
        head = f'{self.name}: checked {checked or "nothing"}'
        if not self.problems:
            return head + '; no problems found'
        return '\n'.join([head + '; problems:'] + self.lines())


def _load_json(path, report):
    import json
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        report.add('unreadable annotation file',
                   f'{path}: JSON syntax error at line {e.lineno}, column {e.colno}: {e.msg}')
    except (OSError, UnicodeDecodeError) as e:
        report.add('unreadable annotation file', f'{path}: {type(e).__name__}: {e}')
    return None


def _polygon_area(coords):
    xs, ys = coords[0::2], coords[1::2]
    n = len(xs)
    return abs(sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i] for i in range(n))) / 2


def _image_size(path):
    """(width, height) from the file header, without decoding; None if unreadable."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - any unreadable file
        return None


def _decodes(path):
    import cv2
    if not osp.isfile(path) or osp.getsize(path) == 0:
        return None
    return cv2.imread(path, cv2.IMREAD_UNCHANGED)


def check_coco(ann_file, img_dir, report, with_mask=False, decode=False) -> None:
    """COCO instances file: parse, ids, categories, boxes, polygons; with
    ``decode`` every image is read and its size compared with the file's."""
    data = _load_json(ann_file, report)
    if data is None:
        return
    missing = [k for k in ('images', 'annotations', 'categories') if k not in data]
    if missing:
        report.add('unreadable annotation file', f'{ann_file}: no {", ".join(missing)} list')
        return
    cat_ids = {c.get('id') for c in data['categories']}
    images = {im.get('id'): im for im in data['images']}
    report.count('images', len(images))
    report.count('annotations', len(data['annotations']))
    for ann in data['annotations']:
        image = images.get(ann.get('image_id'))
        where = (f'annotation id {ann.get("id")} of '
                 f'{image["file_name"] if image else "image id " + str(ann.get("image_id"))}')
        if image is None:
            report.add('annotation of an unknown image_id', where)
        if ann.get('category_id') not in cat_ids:
            report.add('unknown category_id (dropped by mmdet)',
                       f'{where}: category_id {ann.get("category_id")}')
        bbox = ann.get('bbox') or [0, 0, 0, 0]
        if len(bbox) != 4 or bbox[2] < 1 or bbox[3] < 1:
            report.add('degenerate box (dropped by mmdet)', f'{where}: bbox {bbox}')
        seg = ann.get('segmentation')
        if isinstance(seg, list) and not ann.get('iscrowd', 0):
            if not seg:
                kind = ('empty segmentation (masks are loaded)' if with_mask
                        else 'empty segmentation')
                report.add(kind, where)
            for poly in seg:
                if (not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2
                        or _polygon_area(poly) == 0):
                    report.add('degenerate polygon (ignored by mmdet)',
                               f'{where}: {str(poly)[:60]}')
                    break
    if not decode:
        return
    for image in images.values():
        path = osp.join(img_dir, image.get('file_name', ''))
        img = _decodes(path)
        if not osp.isfile(path):
            report.add('missing image', path)
        elif img is None:
            report.add('undecodable image', f'{path} ({osp.getsize(path)} bytes)')
        elif (img.shape[1], img.shape[0]) != (image.get('width'), image.get('height')):
            report.add('image of another size than its annotation',
                       f'{path}: {img.shape[1]}x{img.shape[0]}, annotation '
                       f'{image.get("width")}x{image.get("height")}')


def _scan(folder, suffix):
    out = []
    for root, _, files in os.walk(folder, followlinks=True):
        out += [osp.join(root, f) for f in files if f.endswith(suffix)]
    return sorted(out)


def check_segmentation(img_dir, seg_dir, img_suffix, seg_suffix, report, num_classes=None,
                       ignore_index=255, decode=False) -> None:
    """mmseg layout (Cityscapes, ...): every image has a label of its size
    (file headers); with ``decode`` both are read and label values checked."""
    import numpy as np
    images = _scan(img_dir, img_suffix)
    report.count('images', len(images))
    for img_path in images:
        rel = osp.relpath(img_path, img_dir)[:-len(img_suffix)]
        seg_path = osp.join(seg_dir, rel + seg_suffix)
        if not osp.isfile(seg_path):
            report.add('missing label', seg_path)
            continue
        if not decode:
            img_size, seg_size = _image_size(img_path), _image_size(seg_path)
            if img_size is None:
                report.add('undecodable image', img_path)
            elif seg_size is None:
                report.add('undecodable label', seg_path)
            elif img_size != seg_size:
                report.add('label of another size than its image',
                           f'{seg_path}: {seg_size[0]}x{seg_size[1]}, image '
                           f'{img_size[0]}x{img_size[1]}')
            continue
        img, seg = _decodes(img_path), _decodes(seg_path)
        if img is None:
            report.add('undecodable image', f'{img_path}')
        elif seg is None:
            report.add('undecodable label', f'{seg_path}')
        elif img.shape[:2] != seg.shape[:2]:
            report.add('label of another size than its image',
                       f'{seg_path}: {seg.shape[1]}x{seg.shape[0]}, image '
                       f'{img.shape[1]}x{img.shape[0]}')
        elif num_classes is not None:
            values = np.unique(seg)
            bad = [int(v) for v in values if v >= num_classes and v != ignore_index]
            if bad:
                report.add('label out of range', f'{seg_path}: values {bad[:5]}')


IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')


def check_image_folder(prefix, ann_file, report, num_classes=None, decode=False) -> None:
    """mmpretrain's ImageNet layout: ``ann_file`` lines '<path> <label>' under
    ``prefix``, or one folder per class; with ``decode`` every image is read."""
    samples = []
    if ann_file:
        try:
            with open(ann_file, encoding='utf-8') as f:
                lines = [line.strip() for line in f if line.strip()]
        except (OSError, UnicodeDecodeError) as e:
            report.add('unreadable annotation file', f'{ann_file}: {type(e).__name__}: {e}')
            return
        for i, line in enumerate(lines, 1):
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip('-').isdigit():
                report.add('unreadable annotation file',
                           f'{ann_file}, line {i}: {line[:60]!r} is not "<path> <label>"')
                continue
            label = int(parts[1])
            if label < 0 or (num_classes is not None and label >= num_classes):
                report.add('label out of range', f'{ann_file}, line {i}: label {label} '
                           f'(classes: {num_classes})')
            samples.append(osp.join(prefix, parts[0]))
    else:
        classes = sorted(d for d in os.listdir(prefix) if osp.isdir(osp.join(prefix, d)))
        report.count('class folders', len(classes))
        for c in classes:
            files = [p for p in _scan(osp.join(prefix, c), '')
                     if p.lower().endswith(IMG_EXTENSIONS)]
            if not files:
                report.add('empty class folder', osp.join(prefix, c))
            samples += files
    report.count('images', len(samples))
    if not decode:
        return
    for path in samples:
        if not osp.isfile(path):
            report.add('missing image', path)
        elif _decodes(path) is None:
            report.add('undecodable image', f'{path} ({osp.getsize(path)} bytes)')


def _loads_masks(pipeline) -> bool:
    return any(isinstance(t, dict) and t.get('type', '').endswith('LoadAnnotations')
               and t.get('with_mask') for t in pipeline or [])


def check_dataset_cfg(dataset, name: str, decode: bool = False) -> DatasetReport:
    """Check the files of a dataset config (COCO-style json, mmseg image/label
    folders, or mmpretrain's ImageNet layout); ``decode=False`` is the cheap
    part: annotation files and file headers, no image decoding."""
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    report = DatasetReport(name)
    if 'datasets' in dataset:
        for i, d in enumerate(dataset['datasets']):
            sub = check_dataset_cfg(d, f'{name}[{i}]', decode)
            for k, n in sub.checked.items():
                report.count(k, n)
            for kind, (n, examples) in sub.problems.items():
                for example in examples:
                    report.add(kind, example)
                report.problems[kind][0] += n - len(examples)
        return report
    root = dataset.get('data_root', '') or ''
    prefix = dataset.get('data_prefix') or {}
    if isinstance(prefix, str):
        prefix = dict(img_path=prefix)
    ann_file = dataset.get('ann_file') or ''
    ann_path = osp.join(root, ann_file) if ann_file else ''
    kind = str(dataset.get('type', ''))
    classes = (dataset.get('metainfo') or {}).get('classes')
    if ann_path.endswith('.json'):
        img_dir = osp.join(root, prefix.get('img', prefix.get('img_path', '')))
        check_coco(ann_path, img_dir, report, with_mask=_loads_masks(dataset.get('pipeline')),
                   decode=decode)
    elif 'seg_map_path' in prefix:
        check_segmentation(
            osp.join(root, prefix.get('img_path', '')), osp.join(root, prefix['seg_map_path']),
            dataset.get('img_suffix', '_leftImg8bit.png' if 'Cityscapes' in kind else '.jpg'),
            dataset.get('seg_map_suffix',
                        '_gtFine_labelTrainIds.png' if 'Cityscapes' in kind else '.png'),
            report, num_classes=len(classes) if classes else (19 if 'Cityscapes' in kind
                                                              else None),
            ignore_index=dataset.get('ignore_index', 255), decode=decode)
    elif 'ImageNet' in kind or 'CustomDataset' in kind:
        img_prefix = prefix.get('img_path', '')
        if 'ImageNet' in kind and dataset.get('split') and not img_prefix:
            img_prefix = dataset['split']
            meta = osp.join(root, 'meta', f'{dataset["split"]}.txt')
            if not ann_file and osp.isfile(meta):
                ann_path = meta
        check_image_folder(osp.join(root, img_prefix), ann_path, report,
                           num_classes=len(classes) if classes else None, decode=decode)
    else:
        report.count(f'nothing: no check for a {kind or "dataset"} of this layout', 0)
    return report
