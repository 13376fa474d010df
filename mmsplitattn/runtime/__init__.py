"""What ``tools/train.py`` and ``tools/test.py`` do around MMEngine's Runner:
up-front checks with clear messages (config, dataset, checkpoint), and the
process-group set-up a CPU-only machine needs. Not mmdet-style inference APIs:
for those use ``mmdet.apis`` / ``mmseg.apis`` / ``mmpretrain.apis``."""
from .checkpoint import check_checkpoint, find_resumable_checkpoint
from .config import (TASKS, check_config_syntax, load_config, prepare_torch_load, task_of,
                     unwrap_model)
from .data import DatasetReport, check_dataset_cfg, check_dataset_paths
from .dist import (DistributedTimeoutError, adapt_cfg_to_device, describe_timeout,
                   init_cpu_process_group, is_collective_timeout, run_reporting_timeouts)
from .hooks import add_custom_hook, check_dataset_contents, use_safe_checkpoint_hook
from .runner import ToolRunner, build_runner

__all__ = ['TASKS', 'DatasetReport', 'DistributedTimeoutError', 'ToolRunner',
           'adapt_cfg_to_device', 'add_custom_hook', 'build_runner', 'check_checkpoint',
           'check_config_syntax', 'check_dataset_cfg', 'check_dataset_contents',
           'check_dataset_paths', 'describe_timeout', 'find_resumable_checkpoint',
           'init_cpu_process_group', 'is_collective_timeout', 'load_config',
           'prepare_torch_load', 'run_reporting_timeouts', 'task_of', 'unwrap_model',
           'use_safe_checkpoint_hook']
