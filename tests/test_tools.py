"""The tools for real on the demo data: train, test, resume, distributed, errors."""
import glob
import os.path as osp
import subprocess
import sys

import pytest
import torch

from conftest import DET_CFG, DET_QUICK, ROOT, SEG_CFG, free_port, logged_scalars, run_tool

pytestmark = pytest.mark.slow  # every test starts the tools as subprocesses

SEG_QUICK = ['train_cfg.max_iters=4', 'train_cfg.val_interval=4', 'train_dataloader.batch_size=2',
             'train_dataloader.persistent_workers=False', 'val_dataloader.persistent_workers=False',
             'default_hooks.checkpoint.interval=4']


def _state(path):
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


def test_detection_train_and_test(det_run, demo_root):
    assert osp.isfile(det_run / 'epoch_2.pth')
    val = [r for r in logged_scalars(det_run) if 'coco/bbox_mAP' in r]
    assert val and 'coco/segm_mAP' in val[-1]
    proc = run_tool(['tools/test.py', DET_CFG, str(det_run / 'epoch_2.pth'), '--work-dir',
                     str(demo_root / 'det_test'), '--show-dir', str(demo_root / 'det_vis'),
                     '--out', str(demo_root / 'det_results.pkl')], cwd=demo_root)
    assert 'coco/bbox_mAP' in proc.stdout + proc.stderr
    assert 'coco/segm_mAP' in proc.stdout + proc.stderr
    assert len(glob.glob(str(demo_root / 'det_vis' / '*.jpg'))) == 8
    assert osp.isfile(demo_root / 'det_results.pkl')


def test_resume_continues_to_the_same_result(det_run, demo_root):
    work = demo_root / 'det_resume'

    def train(max_epochs, *extra):
        return run_tool(['tools/train.py', DET_CFG, '--work-dir', str(work), *extra,
                         '--cfg-options', f'train_cfg.max_epochs={max_epochs}',
                         'train_cfg.val_interval=2', *DET_QUICK], cwd=demo_root)

    train(1)  # "interrupted" after the first epoch ...
    assert not osp.exists(work / 'epoch_2.pth')
    proc = train(2, '--resume')  # ... resumed from the work dir's latest checkpoint
    assert 'resumed epoch: 1' in proc.stdout + proc.stderr
    resumed, straight = _state(work / 'epoch_2.pth'), _state(det_run / 'epoch_2.pth')
    assert resumed.keys() == straight.keys()
    for k in straight:
        torch.testing.assert_close(resumed[k], straight[k], rtol=1e-4, atol=1e-5, msg=k)


def test_segmentation_train_and_test(demo_root):
    work = demo_root / 'seg'
    run_tool(['tools/train.py', SEG_CFG, '--work-dir', str(work), '--cfg-options', *SEG_QUICK],
             cwd=demo_root)
    assert any('mIoU' in r for r in logged_scalars(work))
    proc = run_tool(['tools/test.py', SEG_CFG, str(work / 'iter_4.pth'), '--work-dir',
                     str(demo_root / 'seg_test')], cwd=demo_root)
    assert 'mIoU' in proc.stdout + proc.stderr


def test_dist_train_two_cpu_processes(demo_root):
    work = demo_root / 'dist'
    proc = run_tool(['tools/dist_train.sh', DET_CFG, '2', '--work-dir', str(work),
                     '--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
                     *DET_QUICK], cwd=demo_root, env={'PORT': str(free_port())})
    out = proc.stdout + proc.stderr
    assert "'backend': 'gloo'" in out and 'Distributed training: True' in out
    assert 'GPU number: 2' in out  # MMEngine's name for the world size
    assert 'Epoch(train) [1][2/2]' in out  # 8 images / (2 processes x 2 images)
    assert osp.isfile(work / 'epoch_1.pth')
    assert any('coco/bbox_mAP' in r for r in logged_scalars(work))


def test_dist_launchers_name_a_bad_gpus_count_and_a_busy_port(tmp_path):
    import socket
    proc = run_tool(['tools/dist_train.sh', DET_CFG, '--work-dir', 'w'], cwd=tmp_path,
                    check=False)
    assert proc.returncode == 2
    assert "GPUS must be the number of processes per node (1, 2, ...), got '--work-dir'" \
        in proc.stderr
    with socket.socket() as busy:
        busy.bind(('127.0.0.1', 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_tool(['tools/dist_test.sh', DET_CFG, 'x.pth', '2'], cwd=tmp_path,
                        env={'PORT': str(port)}, check=False)
        assert proc.returncode == 2
        assert f'port {port} on 127.0.0.1 is in use (another run?): set PORT to a free one, ' \
            f'e.g. PORT={port + 1} in front of the command\n' in proc.stderr
        proc = run_tool(['tools/dist_test.sh', DET_CFG, 'x.pth', '2'], cwd=tmp_path,
                        env={'PORT': str(port), 'NNODES': '2'}, check=False)
    assert proc.returncode == 2
    assert 'or, on a node other than the first, set NODE_RANK' in proc.stderr


def test_dist_test_two_cpu_processes(det_run, demo_root):
    proc = run_tool(['tools/dist_test.sh', DET_CFG, str(det_run / 'epoch_2.pth'), '2',
                     '--work-dir', str(demo_root / 'dist_test')], cwd=demo_root,
                    env={'PORT': str(free_port())})
    out = proc.stdout + proc.stderr
    assert 'GPU number: 2' in out and 'coco/segm_mAP' in out


def test_missing_dataset_is_reported(tmp_path):
    proc = run_tool(['tools/train.py', DET_CFG], cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert ("DataError: train_dataloader: the dataset does not load: FileNotFoundError: "
            "[Errno 2] No such file or directory: 'data/demo/coco/annotations/") in proc.stderr
    assert '--cfg-options train_dataloader.dataset.data_root=' in proc.stderr
    assert 'Traceback' not in proc.stderr.split('DataError: train_dataloader')[-1]


def test_corrupt_checkpoint_is_reported(det_run, demo_root, tmp_path):
    bad = tmp_path / 'truncated.pth'
    bad.write_bytes((det_run / 'epoch_2.pth').read_bytes()[:5000])
    proc = run_tool(['tools/test.py', DET_CFG, str(bad)], cwd=demo_root, check=False)
    assert proc.returncode != 0
    assert f"checkpoint '{bad}' is corrupt or not a PyTorch checkpoint" in proc.stderr


def test_bad_config_value_is_reported(demo_root):
    proc = run_tool(['tools/train.py', DET_CFG, '--cfg-options', 'model.backbone.radix=0'],
                    cwd=demo_root, check=False)
    assert proc.returncode != 0
    assert 'radix must be an integer >= 1, got 0' in proc.stderr


def test_environment_report():
    out = subprocess.run([sys.executable, '-m', 'mmsplitattn'], capture_output=True,
                         text=True, check=True).stdout
    assert 'mmcv ops: compiled' in out  # its compiled ops load
    assert 'ResNeSt' in out


@pytest.mark.parametrize('backbone', ['sem', 'spanet', 'acmix'])
def test_attention_backbones_train_and_evaluate(demo_root, backbone):
    """One short epoch of each attention backbone's demo, validated with COCO metrics."""
    cfg = osp.join(ROOT, 'configs', 'demo', f'maskrcnn_{backbone}_demo.py')
    work = demo_root / f'det_{backbone}'
    run_tool(['tools/train.py', cfg, '--work-dir', str(work), '--cfg-options',
              'train_cfg.max_epochs=1', 'train_cfg.val_interval=1', *DET_QUICK], cwd=demo_root)
    assert osp.isfile(work / 'epoch_1.pth')
    assert any('coco/segm_mAP' in r for r in logged_scalars(work))


def test_amp_training(demo_root):
    """--amp on a detector (on CPU: bfloat16 backbone + neck, float32 heads
    whose mmcv kernels take no bfloat16)."""
    work = demo_root / 'det_amp'
    proc = run_tool(['tools/train.py', DET_CFG, '--amp', '--work-dir', str(work),
                     '--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
                     *DET_QUICK], cwd=demo_root)
    expected = 'AmpOptimWrapper' if torch.cuda.is_available() else 'CPUAmpOptimWrapper'
    assert expected in proc.stdout + proc.stderr
    assert osp.isfile(work / 'epoch_1.pth')
    assert any('coco/bbox_mAP' in r for r in logged_scalars(work))
