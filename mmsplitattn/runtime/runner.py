"""The Runner the tools build."""
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmsplitattn.engine import wrap_pipelines


class ToolRunner(Runner):
    """MMEngine's Runner whose datasets name the files of a failing sample
    (:class:`mmsplitattn.engine.NamedErrorPipeline`): the pipelines are
    wrapped as each dataloader is built, before its workers start (an
    iteration-based loop starts them when it is built, before any hook)."""

    @staticmethod
    def build_dataloader(dataloader, seed=None, diff_rank_seed=False):
        loader = Runner.build_dataloader(dataloader, seed=seed, diff_rank_seed=diff_rank_seed)
        wrap_pipelines(loader.dataset)
        return loader


def build_runner(cfg):
    """:class:`ToolRunner`, or the config's own ``runner_type``."""
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return ToolRunner.from_cfg(cfg)
