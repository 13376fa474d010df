from .runtime import (adapt_cfg_to_device, check_checkpoint, check_dataset_paths,
                      prepare_torch_load, task_of)

__all__ = ['adapt_cfg_to_device', 'check_checkpoint', 'check_dataset_paths',
           'prepare_torch_load', 'task_of']
