# The package's training and testing protections, inherited by every config of
# it (docs/training.md): mmsplitattn.SafeRunner adds the non-finite stop, atomic
# checkpoints, --resume from the newest complete checkpoint, strict checkpoint
# loading, the dataset check and named bad samples to whatever tool builds the
# runner (mmdet's/mmseg's tools/train.py, mim train, tools/train.py, a script's
# RUNNERS.build(cfg)). The settings below are its defaults.
custom_imports = dict(imports=['mmsplitattn'], allow_failed_imports=False)
runner_type = 'mmsplitattn.SafeRunner'
safety_cfg = dict(
    data_check=True,  # check the datasets before training / testing (rank 0)
    read_headers=False,  # ... and read every image's header (slower)
    allow_partial_load=False,  # load a checkpoint that does not fit the model
    non_finite_check=True)  # stop at a NaN/inf loss, gradient norm or weight
