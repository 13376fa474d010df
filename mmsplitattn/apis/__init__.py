from .runtime import (adapt_cfg_to_device, build_runner, check_checkpoint,
                      check_dataset_paths, load_config, prepare_torch_load, task_of)

__all__ = ['adapt_cfg_to_device', 'build_runner', 'check_checkpoint', 'check_dataset_paths',
           'load_config', 'prepare_torch_load', 'task_of']
