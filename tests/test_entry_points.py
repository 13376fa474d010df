"""The protections come with the config (configs/_base_/mmsplitattn_runtime.py):
the demo detector through mmdet's installed tools/train.py, this repository's
tools/train.py and a script's RUNNERS.build(cfg) (`mim train`: test_packaging.py).
In each, --resume skips a truncated latest checkpoint, a diverging run stops
with the message and leaves no non-finite checkpoint, and a checkpoint of
another architecture is refused (unless safety_cfg.allow_partial_load=True)."""
import argparse
import glob
import os
import os.path as osp

import pytest

from conftest import (DET_CFG, DIVERGE, NO_STATES, ROOT, TINY, copy_with_truncated_latest,
                      finite_checkpoint, run_tool)

pytestmark = pytest.mark.slow

MMDET_TRAIN = osp.join(osp.dirname(__import__('mmdet').__file__), '.mim', 'tools', 'train.py')
ENTRIES = ['mmdet', 'tools/train.py', 'RUNNERS.build']


def _train(entry, work_dir, cwd, options, resume=False):
    """(return code, output) of training the demo config through ``entry``."""
    if entry == 'RUNNERS.build':
        return _build_and_train(work_dir, cwd, options, resume)
    tool = MMDET_TRAIN if entry == 'mmdet' else osp.join(ROOT, 'tools', 'train.py')
    assert osp.isfile(tool)
    proc = run_tool([tool, DET_CFG, '--work-dir', str(work_dir)] + ['--resume'] * resume
                    + ['--cfg-options', *TINY, *options], cwd=cwd, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def _build_and_train(work_dir, cwd, options, resume):
    """What a user's script does (in this process): RUNNERS.build(cfg).train()."""
    from mmengine.config import Config, DictAction
    from mmengine.registry import RUNNERS
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    cfg = Config.fromfile(DET_CFG)
    cfg.merge_from_dict(parser.parse_args(['--cfg-options', *TINY, *options]).cfg_options)
    cfg.work_dir, cfg.resume = str(work_dir), resume
    log, code, cwd_before = [], 0, os.getcwd()
    os.chdir(cwd)
    try:
        RUNNERS.build(cfg).train()
    except (FloatingPointError, ValueError) as e:
        log.append(f'{type(e).__name__}: {e}')
        code = 1
    finally:
        os.chdir(cwd_before)
    log += [open(path).read() for path in glob.glob(osp.join(work_dir, '*', '*.log'))]
    return code, '\n'.join(log)


@pytest.mark.parametrize('entry', ENTRIES)
def test_resume_skips_a_truncated_checkpoint_and_divergence_stops(
        entry, tiny_run, demo_root, tmp_path):
    """A copied work dir (its last_checkpoint names the original's epoch_2.pth)
    whose epoch_2.pth is truncated: --resume takes the copy's epoch_1.pth; at
    lr 1e6 the resumed run diverges and stops before saving it."""
    work = copy_with_truncated_latest(tiny_run, tmp_path / 'copy')
    code, out = _train(entry, work, demo_root, DIVERGE + NO_STATES + ['train_cfg.max_epochs=6'],
                       resume=True)
    assert code != 0, out[-3000:]
    assert f'--resume: skipping {work / "epoch_2.pth"}' in out and 'truncated' in out, out[-3000:]
    assert f'resuming from {work / "epoch_1.pth"}, the newest good checkpoint' in out
    assert 'resumed epoch: 1' in out
    assert 'FloatingPointError: training diverged at iteration' in out and 'lower learning' in out
    checkpoints = glob.glob(str(work / '*.pth'))
    assert len(checkpoints) >= 2 and all(finite_checkpoint(p) for p in checkpoints)
    assert not glob.glob(str(work / '.*tmp*'))


@pytest.mark.parametrize('entry', ENTRIES)
def test_a_checkpoint_of_another_architecture_is_refused(entry, tiny_run, demo_root, tmp_path):
    ckpt = tiny_run / 'epoch_1.pth'
    deeper = ['model.backbone.depth=26', f'load_from={ckpt}', 'train_cfg.max_epochs=1']
    code, out = _train(entry, tmp_path / 'w', demo_root, deeper)
    assert code != 0
    assert f"checkpoint '{ckpt}' does not fit the model (MaskRCNN)" in out, out[-3000:]
    assert 'missing keys in source state_dict: backbone.layer1.1.' in out
    assert 'allow_partial_load=True' in out
    assert not glob.glob(str(tmp_path / 'w' / '*.pth'))
    if entry == 'RUNNERS.build':  # switched on in the config, the matching part is loaded
        code, out = _train(entry, tmp_path / 'partial', demo_root, deeper + [
            'safety_cfg.allow_partial_load=True'])
        assert code == 0 and f'Load checkpoint from {ckpt}' in out, out[-3000:]
        assert finite_checkpoint(tmp_path / 'partial' / 'epoch_1.pth')
