"""Name the file behind every failure of a data pipeline.

The tools' Runner (:class:`mmsplitattn.runtime.ToolRunner`) wraps the
pipeline of every dataset it builds, before any loader worker starts."""
import os.path as osp



class DataError(RuntimeError):
    """A sample could not be read or transformed; the message names its files."""


def _file_problem(path):
    if not osp.exists(path):
        return f'{path} does not exist'
    if osp.getsize(path) == 0:
        return f'{path} is empty (0 bytes)'
    return None


class NamedErrorPipeline:
    """Run ``pipeline``'s transforms as ``Compose`` does; on any error raise
    :class:`DataError` naming the transform, the sample's image / label /
    annotation files and the problem. A label map whose size differs from
    its image's is such an error too (caught right where it is loaded, before
    a resize could hide it)."""

    def __init__(self, pipeline, ann_file=None):
        self.pipeline = pipeline
        self.ann_file = ann_file

    @property
    def transforms(self):
        return self.pipeline.transforms

    def __repr__(self):
        return repr(self.pipeline)

    def _describe(self, results):
        files = [f'{k} {results[k]}' for k in ('img_path', 'seg_map_path')
                 if isinstance(results.get(k), str)]
        if self.ann_file and 'img_id' in results:
            files.append(f'annotations of image id {results["img_id"]} in {self.ann_file}')
        return '; '.join(files) or 'a sample without file names'

    def __call__(self, results):
        paths = {k: results.get(k) for k in ('img_path', 'seg_map_path', 'img_id')}
        label_checked = False
        for t in self.pipeline.transforms:
            try:
                results = t(results)
            except Exception as e:  # noqa: BLE001 - re-raised with the files named
                problems = [p for p in (_file_problem(v) for k, v in paths.items()
                                        if k != 'img_id' and isinstance(v, str)) if p]
                hint = ''
                if isinstance(e, KeyError) and e.args == ('mask',):
                    hint = ("; an instance of this image has an empty or missing "
                            "'segmentation'")
                raise DataError(
                    f'{type(t).__name__} failed on {self._describe(paths)}: '
                    f'{"; ".join(problems) + ": " if problems else ""}{type(e).__name__}: {e}'
                    f'{hint}. tools/misc/check_dataset.py CONFIG lists every bad file.'
                ) from e
            if results is None:
                return None
            if not label_checked and 'gt_seg_map' in results and 'ori_shape' in results:
                label_checked = True
                label, image = results['gt_seg_map'].shape[:2], tuple(results['ori_shape'][:2])
                if tuple(label) != image:
                    raise DataError(
                        f'label map {paths["seg_map_path"]} is {label[1]}x{label[0]} (WxH) but '
                        f'its image {paths["img_path"]} is {image[1]}x{image[0]}. '
                        'tools/misc/check_dataset.py CONFIG lists every bad file.')
        return results


def wrap_pipelines(dataset) -> None:
    """Make every pipeline of ``dataset`` (and of the datasets it wraps) a
    :class:`NamedErrorPipeline`."""
    if hasattr(dataset, 'pipeline') and not isinstance(dataset.pipeline, NamedErrorPipeline) \
            and hasattr(dataset.pipeline, 'transforms'):
        dataset.pipeline = NamedErrorPipeline(dataset.pipeline, getattr(dataset, 'ann_file', None))
    for child in [getattr(dataset, 'dataset', None)] + list(getattr(dataset, 'datasets', [])):
        if child is not None:
            wrap_pipelines(child)
