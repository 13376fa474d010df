"""Mixed precision on the CPU, where MMEngine's AmpOptimWrapper refuses to run."""
from contextlib import contextmanager

import torch
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper

from mmsplitattn.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` that runs ``extract_feat`` (backbone, neck) under CPU
    bfloat16 autocast in training (``tools/train.py --amp`` without CUDA).
    The heads stay float32 (mmcv's CPU NMS/RoIAlign take no bfloat16); with
    float32's exponent range bfloat16 needs no loss scaling."""

    def __init__(self, *args, dtype='bfloat16', **kwargs):
        super().__init__(*args, **kwargs)
        self.cast_dtype = getattr(torch, dtype)

    @contextmanager
    def optim_context(self, model):
        module = model.module if is_model_wrapper(model) else model
        extract_feat = module.extract_feat

        def autocast_extract_feat(*args, **kwargs):
            with torch.autocast('cpu', dtype=self.cast_dtype):
                feats = extract_feat(*args, **kwargs)
            return feats.float() if torch.is_tensor(feats) else type(feats)(
                f.float() for f in feats)

        module.extract_feat = autocast_extract_feat  # shadows the method for this step
        try:
            with super().optim_context(model):
                yield
        finally:
            del module.extract_feat
