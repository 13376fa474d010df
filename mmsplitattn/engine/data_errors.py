"""Name the files of a failing sample: at run time (:class:`NamedErrorPipeline`)
and before it (:mod:`.dataset_check` shares the file and label-size checks)."""
import os
from typing import List, Optional, Sequence

from mmengine.dataset import Compose

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
