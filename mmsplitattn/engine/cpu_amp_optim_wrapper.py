"""Mixed precision on the CPU, where MMEngine's AmpOptimWrapper refuses to run."""
from contextlib import contextmanager

import torch
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper

from mmsplitattn.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` that runs the model's feature extractor (backbone and
    neck, ``extract_feat``) under CPU autocast in bfloat16 during training.

    The heads stay in float32: mmcv's CPU kernels (NMS, RoIAlign) take no
    bfloat16. bfloat16 has float32's exponent range, so no loss scaling is
    needed; parameters, gradients and the optimizer stay in float32.
    ``tools/train.py --amp`` picks it when there is no CUDA device.
    """

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
            if torch.is_tensor(feats):
                return feats.float()
            return type(feats)(f.float() for f in feats)

        module.extract_feat = autocast_extract_feat  # shadows the method for this step
        try:
            with super().optim_context(model):
                yield
        finally:
            del module.extract_feat
