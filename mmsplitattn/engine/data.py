"""Data checks from what the datasets load: before the run (:func:`check_dataset`
on the datasets the Runner built, so a user's subclass is checked through what
it loads, not by its name) and during it (:class:`NamedErrorPipeline`)."""
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.dataset import Compose

INF = float('inf')
SEE_TOOL = 'tools/misc/check_dataset.py CONFIG lists every bad file.'


class DataError(RuntimeError):
    """A sample could not be read or transformed; the message names its files."""


def file_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be a sample's file (missing, empty), or None; one stat."""
    try:
        return None if os.stat(path).st_size else f'{path} is empty (0 bytes)'
    except FileNotFoundError:
        return f'{path} does not exist'
    except OSError as e:
        return str(e)


def label_size_problem(seg_path: str, seg_hw: Sequence[int], img_path: str,
                       img_hw: Sequence[int]) -> Optional[str]:
    """Why a label map of (height, width) ``seg_hw`` does not fit its image, or None."""
    return None if tuple(seg_hw[:2]) == tuple(img_hw[:2]) else (
        f'label map {seg_path} is {seg_hw[1]}x{seg_hw[0]} (WxH) but its image {img_path} '
        f'is {img_hw[1]}x{img_hw[0]}')


def held_datasets(dataset) -> List:
    """The datasets a wrapper holds (``dataset``, ``datasets``); [] for a plain one."""
    held = [getattr(dataset, 'dataset', None), *(getattr(dataset, 'datasets', None) or [])]
    return [d for d in held if d is not None]


def leaves(dataset) -> List:
    """The plain datasets ``dataset`` is or holds, through any wrappers."""
    return [leaf for held in held_datasets(dataset) for leaf in leaves(held)] or [dataset]


def load_problem(loader: str, error: Exception, source: Optional[str] = None,
                 dataset_cfg: Optional[dict] = None) -> str:
    """What to say when the dataset of ``loader`` (``dataset_cfg``) does not load
    (from ``source``)."""
    key = f'{loader}.dataset'  # of the dataset inside wrappers: the one whose files are gone
    while isinstance(dataset_cfg, dict):
        if isinstance(dataset_cfg.get('dataset'), dict):  # RepeatDataset, ClassBalancedDataset
            key, dataset_cfg = f'{key}.dataset', dataset_cfg['dataset']
        elif dataset_cfg.get('datasets'):  # ConcatDataset: the one whose data_root the error names
            held = dataset_cfg['datasets']
            i = next((i for i, d in enumerate(held) if isinstance(d, dict)
                      and d.get('data_root') and str(d['data_root']) in str(error)), 0)
            key, dataset_cfg = f'{key}.datasets.{i}', held[i]
        else:
            break
    if isinstance(error, OSError):  # the error names the path
        return (f'{type(error).__name__}: {error} (working directory {os.getcwd()!r}): prepare '
                'the data as the README\'s "Data" section shows, or point the config at it, '
                f'e.g. --cfg-options {key}.data_root=/path/to/data/')
    return f'{source + ": " if source else ""}{type(error).__name__}: {error}'


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
        return [f'{loader}: {kind}: {len(found)} ({"; ".join(found[:limit])}'
                f'{"; ..." if len(found[:limit]) < len(found) else ""})'
                for (loader, kind, is_fatal), found in self.problems.items() if is_fatal == fatal]

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
                 masks: bool, index: int) -> bool:
    """The files entry ``index`` names (True if all are fine), its labels, its
    instances (a plain loop: COCO train has 860k)."""
    problems = [file_problem(path) for key, path in entry.items()
                if key.endswith('_path') and isinstance(path, str) and '://' not in path]
    for problem in filter(None, problems):
        report.add(loader, 'missing or empty file', problem)
    where = entry.get('img_path') or f'entry {index}'
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


def check_dataset(dataset, loader: str, report: DatasetReport, read_headers: bool = False,
                  decode: bool = False) -> None:
    """Check what ``dataset`` (of the loader named ``loader``) and the datasets it
    holds loaded into ``report``: the files each entry names exist and are not
    empty (``read_headers``: image and label map sizes agree; ``decode``: images
    decode, label values within the classes), labels, boxes, masks, no empty set."""
    entries = 0
    for leaf in leaves(dataset):
        if not hasattr(leaf, 'full_init'):  # not an MMEngine BaseDataset: no data_list
            report.add(loader, 'datasets not checked', type(leaf).__name__, fatal=False)
            continue
        leaf.full_init()  # a no-op when the Runner built it
        entries += len(leaf)
        if not len(leaf):
            report.add(loader, 'empty dataset', f'{type(leaf).__name__} loaded no entry from '
                       f'{leaf.ann_file or leaf.data_prefix}')
        meta = leaf.metainfo  # a deep copy each time
        classes = len(meta.get('classes') or ()) or INF
        masks = any(getattr(t, 'with_mask', False)
                    for t in getattr(leaf.pipeline, 'transforms', ()))
        # one entry at a time: a serialised dataset's entries are unpickled as needed
        for i, entry in enumerate(leaf.data_list or map(leaf.get_data_info, range(len(leaf)))):
            if _check_entry(entry, report, loader, classes, masks, i) and (read_headers or decode):
                _check_pixels(leaf, meta, entry, report, loader, decode)
    report.checked[loader] = f'{entries} entries'


class NamedErrorPipeline(Compose):
    """``Compose`` raising :class:`DataError` that names the transform, the
    sample's files and what is wrong with them, when a transform fails or a
    label map has another size than its image (before a resize could hide it)."""

    def __init__(self, transforms, ann_file: Optional[str] = None):
        super().__init__(transforms)
        self.ann_file = ann_file

    def __call__(self, results: dict) -> Optional[dict]:
        paths = {k: results[k] for k in ('img_path', 'seg_map_path')
                 if isinstance(results.get(k), str)}
        names = [f'{k} {v}' for k, v in paths.items()]
        if self.ann_file and 'img_id' in results:
            names.append(f'annotations of image id {results["img_id"]} in {self.ann_file}')
        label_checked = False
        for t in self.transforms:
            try:
                results = t(results)
            except Exception as e:  # noqa: BLE001 - re-raised with the files named
                problems = '; '.join(filter(None, map(file_problem, paths.values())))
                hint = ("; an instance of this image has an empty or missing 'segmentation'"
                        if isinstance(e, KeyError) and e.args == ('mask',) else '')
                raise DataError(
                    f'{type(t).__name__} failed on {"; ".join(names) or "a sample"}: '
                    f'{problems + ": " if problems else ""}{type(e).__name__}: {e}{hint}. '
                    f'{SEE_TOOL}') from e
            if results is None:
                return None
            if not label_checked and 'gt_seg_map' in results and 'ori_shape' in results:
                label_checked = True
                problem = label_size_problem(paths.get('seg_map_path'),
                                             results['gt_seg_map'].shape,
                                             paths.get('img_path'), results['ori_shape'])
                if problem:
                    raise DataError(f'{problem}. {SEE_TOOL}')
        return results


def wrap_pipelines(dataset) -> None:
    """Make the pipeline of ``dataset`` and of the datasets it holds a
    :class:`NamedErrorPipeline`."""
    pipeline = getattr(dataset, 'pipeline', None)
    if hasattr(pipeline, 'transforms') and not isinstance(pipeline, NamedErrorPipeline):
        dataset.pipeline = NamedErrorPipeline(pipeline.transforms,
                                              getattr(dataset, 'ann_file', None))
    for held in held_datasets(dataset):
        wrap_pipelines(held)
