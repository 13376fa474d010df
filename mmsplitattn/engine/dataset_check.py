"""The pre-flight data check: each dataset is built as the Runner builds it
(lazily, then ``full_init()``) and what it loaded is checked, so a user's
dataset subclass is checked through what it loads, not by its name."""
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.registry import DATASETS, DefaultScope

from .data_errors import SEE_TOOL, file_problem, held_datasets, label_size_problem

INF = float('inf')


@dataclass
class DatasetReport:
    """Every problem found, by (loader, kind, fatal): fatal ones would stop or
    corrupt the run, the others mmdet/mmseg skip or ignore silently."""
    checked: Dict[str, str] = field(default_factory=dict)  # loader -> how many entries
    problems: Dict[Tuple[str, str, bool], List[str]] = field(default_factory=dict)

    def add(self, loader: str, kind: str, example: str, fatal: bool = True) -> None:
        self.problems.setdefault((loader, kind, fatal), []).append(example)

    def lines(self, fatal: bool, limit: Optional[int] = 3) -> List[str]:
        """'loader: kind: count (examples)', ``limit`` examples a kind (None: all)."""
        return [f'{loader}: {kind}: {len(examples)} ({"; ".join(examples[:limit])}'
                f'{"; ..." if len(examples[:limit]) < len(examples) else ""})'
                for (loader, kind, is_fatal), examples in self.problems.items()
                if is_fatal == fatal]

    fatal = property(lambda self: self.lines(True), doc='List[str]: what stops the run.')
    warnings = property(lambda self: self.lines(False), doc='List[str]: what is skipped.')
    ok = property(lambda self: not self.fatal, doc='bool: nothing fatal.')

    def format(self, config_name: str, limit: Optional[int] = 3) -> str:
        """What was checked, then the problems by kind, ``limit`` examples each."""
        out = [f'dataset check of {config_name}: '
               + '; '.join(f'{loader}: {n}' for loader, n in self.checked.items())]
        for fatal, head in ((True, 'problems that would stop or corrupt the run:'),
                            (False, 'skipped or ignored silently by mmdet/mmseg:')):
            lines = self.lines(fatal, limit)
            out += [head] + ['  ' + line for line in lines] if lines else []
        if self.problems and limit is not None:
            out.append(SEE_TOOL.replace('CONFIG', config_name))
        return '\n'.join(out)


def _lazy(cfg: dict) -> dict:
    """``cfg`` and the dataset configs it holds with ``lazy_init``, the leaves unserialised."""
    cfg = dict(cfg, lazy_init=True)
    if isinstance(cfg.get('dataset'), dict):
        cfg['dataset'] = _lazy(cfg['dataset'])
    if isinstance(cfg.get('datasets'), (list, tuple)):
        cfg['datasets'] = [_lazy(d) for d in cfg['datasets']]
    if 'dataset' not in cfg and 'datasets' not in cfg:
        cfg['serialize_data'] = False
    return cfg


def _leaves(dataset) -> list:
    return [leaf for held in held_datasets(dataset) for leaf in _leaves(held)] or [dataset]


def _count_dropped(leaf, loader: str, report: DatasetReport) -> None:
    """Count the raw annotations (mmdet's ``raw_ann_info``) ``leaf.parse_data_info``
    drops, e.g. of a category not in the classes."""
    parse = leaf.parse_data_info

    def parse_data_info(raw):
        info = parse(raw)
        anns = raw.get('raw_ann_info') if isinstance(raw, dict) else None
        if isinstance(info, dict) and len(anns or ()) > len(info.get('instances', ())):
            report.add(loader, 'annotations dropped by the dataset class (category not in the '
                       'classes, empty box, ignore flag)', f'{info.get("img_path")}: '
                       f'{len(anns) - len(info["instances"])} of {len(anns)} (category_id '
                       f'{sorted({a.get("category_id") for a in anns})})', fatal=False)
        return info

    leaf.parse_data_info = parse_data_info


def _read(path: str, decode: bool):
    """((height, width), pixels if ``decode``) of an image file; (None, None) if unreadable."""
    import numpy as np
    from PIL import Image
    try:
        with Image.open(path) as image:
            return image.size[::-1], np.asarray(image) if decode else None
    except OSError:
        return None, None


def _check_pixels(leaf, meta: dict, entry: dict, report: DatasetReport, loader: str,
                  decode: bool) -> None:
    """Image and label map sizes (headers), with ``decode`` their pixels and the label
    values (``meta``: ``leaf.metainfo``)."""
    img, seg = entry.get('img_path'), entry.get('seg_map_path')
    (img_hw, _), (seg_hw, label) = [_read(p, decode) if p else ((), None) for p in (img, seg)]
    for path, hw in ((img, img_hw), (seg, seg_hw)):
        if hw is None:
            report.add(loader, 'file that is not a readable image', path)
    problem = img_hw and seg_hw and label_size_problem(seg, seg_hw, img, img_hw)
    if problem:
        report.add(loader, 'label map of another size than its image', problem)
    elif label is not None and meta.get('classes'):
        values = set(label.ravel().tolist())
        if getattr(leaf, 'reduce_zero_label', False):  # mmseg: 0 is ignored, v becomes v - 1
            values = {v - 1 for v in values if v not in (0, 255)}
        values = {(meta.get('label_map') or {}).get(v, v) for v in values}
        bad = sorted(values - set(range(len(meta['classes'])))
                     - {getattr(leaf, 'ignore_index', 255)})
        if bad:
            report.add(loader, 'label value outside the classes', f'{seg}: values {bad[:5]}')


def _bad_label(label, classes: float) -> bool:
    values = label.tolist() if hasattr(label, 'tolist') else label
    return any(not 0 <= v < classes for v in (values if isinstance(values, list) else [values]))


def _check_entry(entry: dict, report: DatasetReport, loader: str, classes: float,
                 masks: bool) -> bool:
    """The files an entry names (True if all are fine), its labels, its instances
    (a plain loop: COCO train has 860k)."""
    problems = [file_problem(path) for key, path in entry.items()
                if key.endswith('_path') and isinstance(path, str) and '://' not in path]
    for problem in filter(None, problems):
        report.add(loader, 'missing or empty file', problem)
    where = entry.get('img_path') or f'entry {entry.get("sample_idx")}'
    if 'gt_label' in entry and _bad_label(entry['gt_label'], classes):
        report.add(loader, 'label outside the classes', f'{where}: gt_label {entry["gt_label"]}')
    right, bottom = entry.get('width', INF) + 1.0, entry.get('height', INF) + 1.0
    for i, inst in enumerate(entry.get('instances', ())):
        label, box, mask = inst.get('bbox_label', 0), inst.get('bbox'), inst.get('mask')
        if not (type(label) is int and 0 <= label < classes) and _bad_label(label, classes):
            report.add(loader, 'label outside the classes', f'{where}: instance {i}: '
                       f'bbox_label {label}')
        if box is not None and not (box[2] > box[0] and box[3] > box[1]):
            report.add(loader, 'box of no area', f'{where}: instance {i}: bbox {box}')
        elif box is not None and (box[0] < -1.0 or box[1] < -1.0 or box[2] > right
                                  or box[3] > bottom):
            report.add(loader, 'box reaching outside its image',
                       f'{where}: instance {i}: bbox {box}', fatal=False)
        if type(mask) is list:
            if any(len(polygon) < 6 or len(polygon) % 2 for polygon in mask):
                report.add(loader, 'polygon of fewer than 3 points (ignored by mmdet)',
                           f'{where}: instance {i}: {str(mask)[:60]}', fatal=False)
        elif mask is None and masks:
            report.add(loader, 'instance without a mask (the pipeline loads masks)',
                       f'{where}: instance {i} (an empty segmentation?)')
        elif mask is not None and not (isinstance(mask, dict) and {'counts', 'size'} <= set(mask)):
            report.add(loader, 'mask neither polygons nor RLE',
                       f'{where}: instance {i}: {str(mask)[:60]}')
    return not any(problems)


def _check_leaf(leaf, report: DatasetReport, loader: str, read_headers: bool,
                decode: bool) -> int:
    """Load ``leaf``, check what it loaded; the number of its entries."""
    if not hasattr(leaf, 'full_init'):  # not an MMEngine BaseDataset: no data_list
        report.add(loader, 'datasets not checked', type(leaf).__name__, fatal=False)
        return len(leaf)
    paths = [getattr(leaf, 'data_root', None), getattr(leaf, 'ann_file', None),
             *(getattr(leaf, 'data_prefix', None) or {}).values()]
    missing = [p for p in paths if isinstance(p, str) and p and not os.path.exists(p)]
    if missing:
        report.add(loader, 'dataset path that does not exist', f'{missing[0]!r} (working '
                   f'directory {os.getcwd()!r}): prepare the data as the README\'s "Data" '
                   f'section shows, or point the config at it, e.g. --cfg-options '
                   f'{loader}.dataset.data_root=/path/to/data/')
        return 0
    _count_dropped(leaf, loader, report)
    try:
        leaf.full_init()
    except Exception as e:  # noqa: BLE001 - any parse error, reported with its file
        report.add(loader, 'annotations that do not load',
                   f'{leaf.ann_file or leaf.data_root}: {type(e).__name__}: {e}')
        return 0
    entries = leaf.data_list or [leaf.get_data_info(i) for i in range(len(leaf))]
    if not entries:
        report.add(loader, 'empty dataset', f'{type(leaf).__name__} loaded no entry from '
                   f'{leaf.ann_file or leaf.data_prefix}')
    meta = leaf.metainfo  # a deep copy each time
    classes = len(meta.get('classes') or ()) or INF
    masks = any(getattr(t, 'with_mask', False) for t in getattr(leaf.pipeline, 'transforms', ()))
    for entry in entries:
        if _check_entry(entry, report, loader, classes, masks) and (read_headers or decode):
            _check_pixels(leaf, meta, entry, report, loader, decode)
    return len(entries)


def check_datasets(cfg, loaders: Sequence[str] = ('train_dataloader', 'val_dataloader'),
                   read_headers: bool = False, decode: bool = False) -> DatasetReport:
    """Build the dataset of each of ``loaders`` in the runner config ``cfg``
    (in its ``default_scope``; one that two loaders share, once) and check
    what it loads. ``read_headers`` compares image and label map sizes (file
    headers); ``decode`` reads every image and checks label map values."""
    report, seen = DatasetReport(), {}
    for loader in loaders:
        dataset_cfg = (cfg.get(loader) or {}).get('dataset')
        if dataset_cfg is None:
            continue
        if repr(dataset_cfg) in seen:
            report.checked[loader] = f'the same dataset as {seen[repr(dataset_cfg)]}'
            continue
        seen[repr(dataset_cfg)] = loader
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
            try:
                try:
                    dataset = DATASETS.build(_lazy(dataset_cfg))
                except TypeError:  # a class without lazy_init/serialize_data: as configured
                    dataset = DATASETS.build(dataset_cfg)
            except Exception as e:  # noqa: BLE001 - a config error, named with its loader
                report.add(loader, 'dataset that cannot be built', f'{type(e).__name__}: {e}')
                continue
            entries = sum(_check_leaf(leaf, report, loader, read_headers, decode)
                          for leaf in _leaves(dataset))
        report.checked[loader] = f'{entries} entries'
    return report
