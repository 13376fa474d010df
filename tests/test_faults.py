"""Faults provoked for real on the demo data (issue 13): divergence, corrupt,
partial and unfitting checkpoints, full disks, hung ranks, bad data, slurm."""
import glob
import json
import os
import os.path as osp
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import DET_CFG, ROOT, SEG_CFG, free_port, load_tool, logged_scalars, run_tool
from mmsplitattn.engine import DataError

SEM_CFG = osp.join(ROOT, 'configs', 'demo', 'maskrcnn_sem_demo.py')
# 2 images of 64x64, batch 2: one iteration an epoch, no validation.
TINY = ['train_dataloader.dataset.indices=2', 'train_dataloader.batch_size=2',
        'train_dataloader.persistent_workers=False', 'randomness.seed=0',
        'train_dataloader.dataset.pipeline.2.scales=[(64, 64)]',
        'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']


def _out(proc):
    return proc.stdout + proc.stderr


def _copy_data(demo_root, tmp_path, name):
    """A private copy of data/demo/<name> under tmp_path, to break."""
    shutil.copytree(demo_root / 'data' / 'demo' / name, tmp_path / 'data' / 'demo' / name)
    return tmp_path / 'data' / 'demo' / name


# 1. Divergence: tests/test_entry_points.py (every entry point) and test_engine.py

# 2. Atomic, verified checkpoints (resume past a corrupt one: test_entry_points.py) -------

@pytest.mark.slow  # training / test subprocesses
def test_full_disk_names_the_checkpoint_and_leaves_no_partial_file(demo_root, tmp_path):
    """A 2 MB file size limit (RLIMIT_FSIZE: writes fail with EFBIG, as ENOSPC
    would on a full disk) lets the logs through but not the checkpoint."""
    work = tmp_path / 'full'

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 20, 2 << 20))

    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), DET_CFG, '--work-dir',
           str(work), '--cfg-options', 'train_cfg.max_epochs=1', *TINY]
    proc = subprocess.run(cmd, cwd=demo_root, capture_output=True, text=True, timeout=600,
                          preexec_fn=limit)
    assert proc.returncode != 0
    assert f"cannot write '{work / 'epoch_1.pth'}': File too large" in proc.stderr
    assert sorted(os.listdir(work)) == sorted(n for n in os.listdir(work)
                                              if not n.endswith('.pth') and 'tmp' not in n)
    assert not (work / 'last_checkpoint').exists()


# 3. Checkpoints that do not fit ----------------------------------------------

@pytest.mark.slow  # training / test subprocesses
def test_test_refuses_a_checkpoint_of_another_architecture(det_run, demo_root):
    ckpt = str(det_run / 'epoch_2.pth')
    proc = run_tool(['tools/test.py', SEM_CFG, ckpt], cwd=demo_root, check=False)
    assert proc.returncode != 0
    err = proc.stderr
    assert f"checkpoint '{ckpt}' does not fit the model (MaskRCNN)" in err
    assert 'missing keys in source state_dict: backbone.' in err
    assert 'unexpected key in source state_dict: backbone.' in err
    assert '--allow-partial-load' in err
    assert 'bbox_mAP' not in _out(proc)
    proc = run_tool(['tools/test.py', SEM_CFG, ckpt, '--allow-partial-load', '--cfg-options',
                     'test_dataloader.dataset.indices=2',
                     'test_dataloader.dataset.pipeline.1.scale=(64, 64)'], cwd=demo_root)
    assert 'The model and loaded state dict do not match exactly' in _out(proc)
    assert 'bbox_mAP' in _out(proc)


# 4. Distributed timeouts -----------------------------------------------------

def _children(pid):
    out = subprocess.run(['ps', '-o', 'pid=', '--ppid', str(pid)], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


def _rank_of(pid):
    try:
        with open(f'/proc/{pid}/environ', 'rb') as f:
            env = dict(kv.split(b'=', 1) for kv in f.read().split(b'\0') if b'=' in kv)
    except OSError:
        return None
    return int(env[b'RANK']) if b'RANK' in env else None


def _alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(') ')[1][0] != 'Z'
    except OSError:
        return False


@pytest.mark.slow  # training / test subprocesses
def test_stopped_rank_ends_the_job_within_the_timeout(demo_root, tmp_path):
    """SIGSTOP rank 1 of a 2-process CPU training: rank 0 must report the
    timed-out collective within the configured timeout and exit."""
    timeout = 15
    cmd = ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), DET_CFG, '2', '--work-dir',
           str(tmp_path / 'w'), '--cfg-options', 'train_cfg.max_epochs=100',
           f'env_cfg.dist_cfg.timeout={timeout}', 'default_hooks.logger.interval=1',
           'default_hooks.checkpoint.interval=1000', *TINY, 'train_dataloader.dataset.indices=4']
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1', PORT=str(free_port()))
    proc = subprocess.Popen(cmd, cwd=demo_root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines, started, named = [], threading.Event(), []

    def read():
        for line in proc.stdout:
            lines.append(line)
            if 'Epoch(train)' in line:
                started.set()
            if 'a collective operation did not complete' in line and not named:
                named.append(time.monotonic())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    workers = {}
    try:
        assert started.wait(300), ''.join(lines[-50:])
        workers = {_rank_of(p): p for p in _children(proc.pid)}
        os.kill(workers[1], signal.SIGSTOP)
        stopped_at = time.monotonic()
        while _alive(workers[0]) and time.monotonic() < stopped_at + timeout + 60:
            time.sleep(0.2)
        rank0_ended = time.monotonic() - stopped_at
        # torchrun has sent the stopped process SIGTERM, which waits for SIGCONT
        # (without it torchrun kills it after its 30 s grace period)
        os.kill(workers[1], signal.SIGCONT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in workers.values():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    reader.join(5)
    out = ''.join(lines)
    assert proc.returncode != 0
    assert re.search(rf'rank 0: a collective operation did not complete within {timeout} s',
                     out), out[-3000:]
    assert 'DistributedTimeoutError' in out and 'another rank is stopped, hung or gone' in out
    print(f'timeout reported {named[0] - stopped_at:.1f} s and rank 0 ended {rank0_ended:.1f} s '
          f'after SIGSTOP (timeout {timeout} s)')
    assert named[0] - stopped_at < timeout + 15  # + load
    assert rank0_ended < timeout + 45  # + process teardown (gloo, loader workers)


# 5. Bad data -----------------------------------------------------------------
# Checks that stop a tool before it builds anything run its main() in this
# process (same code path, no interpreter start-up); runs that load data are
# real subprocesses.

_tool = load_tool  # tools/<path> as a module, to call its main(argv)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in tmp_path, as the tools do from a working directory with data/."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('LOCAL_RANK', '0')
    return tmp_path


def _coco_ann(root, split='train'):
    path = root / 'annotations' / f'instances_{split}2017.json'
    return path, json.loads(path.read_text())


def test_check_dataset_coco(demo_root, in_tmp, capsys):
    coco = _copy_data(demo_root, in_tmp, 'coco')
    path, ann = _coco_ann(coco)
    (coco / 'train2017' / ann['images'][1]['file_name']).write_bytes(b'')
    ann['annotations'][0]['segmentation'] = [[1, 2, 3, 4]]  # two points
    ann['annotations'][1]['category_id'] = 77
    ann['annotations'][2]['segmentation'] = []
    path.write_text(json.dumps(ann))
    assert _tool('misc/check_dataset.py').main([DET_CFG]) == 1
    out = capsys.readouterr().out
    images = {im['id']: im['file_name'] for im in ann['images']}
    assert 'train_dataloader: 16 entries; val_dataloader: 8 entries; test_dataloader: the ' \
           'same dataset as val_dataloader' in out
    assert (f'missing or empty file: 1 (data/demo/coco/train2017/'
            f'{ann["images"][1]["file_name"]} is empty (0 bytes))') in out
    assert 'polygon of fewer than 3 points (ignored by mmdet): 1 (' in out
    assert re.search(r'annotations dropped by the dataset class \(category not in the classes, '
                     r'empty box, ignore flag\): 1 \(data/demo/coco/train2017/'
                     + images[ann['annotations'][1]['image_id']] + r': 1 of \d \(category_id '
                     r'\[[\d, ]*77\]\)\)', out), out
    assert 'instance without a mask (the pipeline loads masks): 1 (' in out


def test_check_dataset_cityscapes_and_imagenet(demo_root, in_tmp, capsys):
    import cv2
    city = _copy_data(demo_root, in_tmp, 'cityscapes')
    label = sorted(glob.glob(str(city / 'gtFine' / 'train' / '*' / '*_labelTrainIds.png')))[0]
    cv2.imwrite(label, cv2.imread(label, cv2.IMREAD_UNCHANGED)[::2, ::2])  # same aspect
    check_dataset = _tool('misc/check_dataset.py')
    assert check_dataset.main([SEG_CFG]) == 1
    out = capsys.readouterr().out
    assert 'label map of another size than its image: 1 (label map ' \
           f'{osp.relpath(label, in_tmp)} is 128x64 (WxH) but its image ' in out
    assert 'is 256x128)' in out

    imagenet = _copy_data(demo_root, in_tmp, 'imagenet')
    bad = sorted(glob.glob(str(imagenet / 'train' / '*' / '*.png')))[0]
    open(bad, 'w').close()
    cfg = in_tmp / 'cls.py'
    cfg.write_text(_cls_config(str(imagenet)))
    assert check_dataset.main([str(cfg)]) == 1
    out = capsys.readouterr().out
    assert f'missing or empty file: 1 ({bad} is empty (0 bytes))' in out
    assert 'train_dataloader: 12 entries' in out


def test_train_names_bad_annotations_before_training(demo_root, in_tmp):
    """The dataset's JSONDecodeError, named with its loader and the tool naming the file."""
    coco = _copy_data(demo_root, in_tmp, 'coco')
    path, ann = _coco_ann(coco)
    text = json.dumps(ann)
    column = text.index('"annotations": [') + len('"annotations": [') + 1
    path.write_text(text.replace('"annotations": [', '"annotations": [,', 1))  # syntax error
    with pytest.raises(DataError) as error:
        _tool('train.py').main([DET_CFG, '--work-dir', str(in_tmp / 'w')])
    assert str(error.value) == (
        'train_dataloader: the dataset does not load: JSONDecodeError: Expecting value: line 1 '
        f'column {column} (char {column - 1}). tools/misc/check_dataset.py {DET_CFG} lists '
        'every bad file.')
    assert not glob.glob(str(in_tmp / 'w' / '*.pth'))
    assert _tool('misc/check_dataset.py').main([DET_CFG, '--loaders', 'train_dataloader']) == 1


@pytest.mark.slow  # a training subprocess
def test_empty_segmentation_is_named(demo_root, in_tmp):
    coco = _copy_data(demo_root, in_tmp, 'coco')
    path, ann = _coco_ann(coco)
    for a in ann['annotations']:  # every instance of the first 4 images
        if a['image_id'] <= 4:
            a['segmentation'] = []
    path.write_text(json.dumps(ann))
    args = ['tools/train.py', DET_CFG, '--work-dir', str(in_tmp / 'w'), '--cfg-options', *TINY]
    with pytest.raises(ValueError) as error:
        _tool('train.py').main(args[1:])
    assert re.search(r'train_dataloader: instance without a mask \(the pipeline loads masks\): '
                     r'\d+ \(data/demo/coco/train2017/000000000001\.jpg: instance 0 ',
                     str(error.value)), str(error.value)
    # past the check, the loader names the image whose instance has no mask
    args.insert(4, '--skip-data-check')
    proc = run_tool(args, cwd=in_tmp, check=False)
    assert proc.returncode != 0
    assert re.search(r"DataError: LoadAnnotations failed on img_path data/demo/coco/train2017/"
                     r"00000000000[1-4]\.jpg; annotations of image id [1-4] in "
                     r"data/demo/coco/annotations/instances_train2017\.json: KeyError: 'mask'; "
                     r"an instance of this image has an empty or missing 'segmentation'",
                     proc.stderr), proc.stderr[-3000:]


@pytest.mark.slow  # a training subprocess
def test_zero_byte_image_is_named(demo_root, in_tmp):
    """Named before training (a stat of every file the dataset names), and, past
    the check, by the sample that reads it."""
    coco = _copy_data(demo_root, in_tmp, 'coco')
    for i in range(1, 5):
        (coco / 'train2017' / f'{i:012d}.jpg').write_bytes(b'')
    args = ['tools/train.py', DET_CFG, '--work-dir', str(in_tmp / 'w'), '--cfg-options', *TINY]
    with pytest.raises(ValueError) as error:  # TINY: the first 2 images
        _tool('train.py').main(args[1:])
    assert ('train_dataloader: missing or empty file: 2 (data/demo/coco/train2017/'
            '000000000001.jpg is empty (0 bytes); data/demo/coco/train2017/000000000002.jpg '
            'is empty (0 bytes))') in str(error.value)
    args.insert(4, '--skip-data-check')
    proc = run_tool(args, cwd=in_tmp, check=False)
    assert proc.returncode != 0
    assert re.search(r'DataError: LoadImageFromFile failed on img_path data/demo/coco/'
                     r'train2017/00000000000[1-4]\.jpg; annotations of image id [1-4] in \S+: '
                     r'data/demo/coco/train2017/00000000000[1-4]\.jpg is empty \(0 bytes\)',
                     proc.stderr), proc.stderr[-3000:]


@pytest.mark.slow  # a training subprocess
def test_wrong_size_label_is_named(demo_root, in_tmp):
    import cv2
    city = _copy_data(demo_root, in_tmp, 'cityscapes')
    for label in glob.glob(str(city / 'gtFine' / 'train' / '*' / '*_labelTrainIds.png')):
        cv2.imwrite(label, cv2.imread(label, cv2.IMREAD_UNCHANGED)[:100])
    args = ['tools/train.py', SEG_CFG, '--work-dir', str(in_tmp / 'w'), '--cfg-options',
            'train_cfg.max_iters=1', 'train_dataloader.batch_size=2']
    with pytest.raises(ValueError) as error:  # label sizes are read with read_headers
        _tool('train.py').main(args[1:] + ['safety_cfg.read_headers=True'])
    assert 'label map of another size than its image: 8 (label map ' in str(error.value)
    args.insert(4, '--skip-data-check')
    proc = run_tool(args, cwd=in_tmp, check=False)
    assert proc.returncode != 0
    assert re.search(r'DataError: label map data/demo/cityscapes/gtFine/train/\w+/\w+'
                     r'_gtFine_labelTrainIds\.png is 256x100 \(WxH\) but its image '
                     r'data/demo/cityscapes/leftImg8bit/train/\S+ is 256x128', proc.stderr)


def test_config_syntax_error_names_the_file(in_tmp):
    cfg = in_tmp / 'broken.py'
    cfg.write_text(f"_base_ = '{DET_CFG}'\nmodel = dict(backbone=dict(depth=14)\n")
    with pytest.raises(SyntaxError, match=re.escape(f"config file '{cfg}', line 2")):
        _tool('train.py').main([str(cfg)])


# 6. Slurm ---------------------------------------------------------------------

@pytest.mark.slow  # training / test subprocesses
def test_slurm_train_and_test(det_run, demo_root, slurm_shims, monkeypatch):
    monkeypatch.delenv('MASTER_ADDR', raising=False)  # from scontrol, as on a cluster
    env = {'PATH': f'{slurm_shims}:{os.environ["PATH"]}', 'GPUS': '2', 'GPUS_PER_NODE': '2',
           'CPUS_PER_TASK': '1', 'MASTER_PORT': str(free_port()), 'OMP_NUM_THREADS': '1'}
    work = demo_root / 'slurm'
    proc = run_tool(['tools/slurm_train.sh', 'cpu', 'demo', DET_CFG, str(work),
                     '--cfg-options', 'train_cfg.max_epochs=1', *TINY,
                     'train_dataloader.dataset.indices=4'], cwd=demo_root, env=env)
    out = _out(proc)
    assert 'Distributed training: True' in out and 'GPU number: 2' in out
    assert 'Epoch(train) [1][1/1]' in out  # 4 images / (2 processes x 2 images)
    assert osp.isfile(work / 'epoch_1.pth')
    srun = (slurm_shims / 'srun.args').read_text()
    assert '-p cpu' in srun and '--ntasks=2' in srun and '--launcher slurm' in srun
    assert 'show hostnames testnode[01]' in (slurm_shims / 'scontrol.args').read_text()
    proc = run_tool(['tools/slurm_test.sh', 'cpu', 'demo', DET_CFG, str(det_run / 'epoch_2.pth'),
                     '--work-dir', str(demo_root / 'slurm_test'), '--cfg-options',
                     'test_dataloader.dataset.indices=2'], cwd=demo_root,
                    env=dict(env, MASTER_PORT=str(free_port())))
    assert 'GPU number: 2' in _out(proc) and 'coco/segm_mAP' in _out(proc)


# (issue 10) fused inference, (issue 12) classification through the tools ------

@pytest.mark.slow  # training / test subprocesses
def test_fuse_conv_bn_gives_the_same_metrics(det_run, demo_root):
    val = [r for r in logged_scalars(det_run) if 'coco/bbox_mAP' in r][-1]
    proc = run_tool(['tools/test.py', DET_CFG, str(det_run / 'epoch_2.pth'), '--fuse-conv-bn',
                     '--work-dir', str(demo_root / 'fused')], cwd=demo_root)
    out = _out(proc)
    assert 'BatchNorms folded into their convolutions' in out
    for key in ('coco/bbox_mAP', 'coco/segm_mAP', 'coco/bbox_mAP_50'):
        got = float(re.search(re.escape(key) + r': ([\d.]+)', out).group(1))
        assert got == pytest.approx(val[key], abs=1.5e-3), key


def _cls_config(data_root):
    return f"""
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmsplitattn'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    backbone=dict(type='mmsplitattn.ResNeSt', depth=14, out_indices=(3,)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=3, in_channels=2048,
              loss=dict(type='CrossEntropyLoss'), topk=(1, 2)))
data_preprocessor = dict(num_classes=3, mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], to_rgb=True)
pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=32),
            dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=4, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CustomDataset', data_root='{data_root}', data_prefix='train',
                 ann_file='meta/train.txt', pipeline=pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CustomDataset', data_root='{data_root}', data_prefix='val',
                 ann_file='meta/val.txt', pipeline=pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 2))
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)
val_cfg = dict()
test_cfg = dict()
"""


@pytest.mark.slow  # training / test subprocesses
def test_classification_train_and_test(demo_root, tmp_path):
    cfg = tmp_path / 'cls_demo.py'
    cfg.write_text(_cls_config(str(demo_root / 'data' / 'demo' / 'imagenet')))
    work = tmp_path / 'cls'
    run_tool(['tools/train.py', str(cfg), '--work-dir', str(work)], cwd=tmp_path)
    assert osp.isfile(work / 'epoch_1.pth')
    proc = run_tool(['tools/test.py', str(cfg), str(work / 'epoch_1.pth'), '--out',
                     str(tmp_path / 'cls.pkl'), '--work-dir', str(tmp_path / 'cls_test')],
                    cwd=tmp_path)
    out = _out(proc)
    assert 'accuracy/top1' in out and 'accuracy/top2' in out
    assert osp.isfile(tmp_path / 'cls.pkl')
