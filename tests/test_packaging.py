"""Packaging: the wheel carries configs/, tools/ and model-index.yml in
mmsplitattn/.mim and runs a config away from the checkout; setup.py links
them for an editable install; `mim` trains and tests from an installed copy;
model-index.yml lists every config; `python -m mmsplitattn` reports mmcv's ops.
"""
import glob
import importlib.util
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import pytest
import yaml

from mmsplitattn.engine import build_model

from conftest import (DIVERGE, NO_STATES, ROOT, TINY, copy_with_truncated_latest,
                      finite_checkpoint)

# The wheel is built and installed once (module fixtures): one xdist worker runs them all.
pytestmark = pytest.mark.xdist_group('packaging')

PIP = [sys.executable, '-m', 'pip', '--disable-pip-version-check']

# Configs under configs/ that are deliberately not in the model zoo.
NOT_IN_MODEL_ZOO = {
    'configs/demo/': 'CPU demo configs: the model-zoo recipes shrunk to train on '
                     'synthetic data in minutes (make demo), not models to publish',
}
TASKS = {'Object Detection', 'Instance Segmentation', 'Semantic Segmentation',
         'Image Classification'}
DATASETS = {'COCO', 'Cityscapes', 'ImageNet-1k'}


def source_files():
    """The files a clean clone of the working tree holds (tracked or new, not ignored)."""
    out = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard', '-z'],
                         cwd=ROOT, capture_output=True, check=True).stdout.decode()
    return [f for f in out.split('\0') if f and osp.isfile(osp.join(ROOT, f))]


def copy_source(dst):
    for rel in source_files():
        os.makedirs(osp.join(dst, osp.dirname(rel)), exist_ok=True)
        shutil.copy2(osp.join(ROOT, rel), osp.join(dst, rel))
    return dst


def run(cmd, cwd, env=None, timeout=600):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (f'{" ".join(map(str, cmd))} failed ({proc.returncode}):\n'
                                  f'{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


def configs_in_checkout(with_bases=False):
    """configs/**/*.py; the partial configs in _base_ folders only ``with_bases``."""
    paths = glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    return sorted(osp.relpath(p, ROOT) for p in paths
                  if with_bases or '_base_' not in osp.relpath(p, ROOT).split(os.sep))


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    if not osp.isdir(osp.join(ROOT, '.git')):
        pytest.skip('not a git checkout: no clean copy to build from')
    return copy_source(str(tmp_path_factory.mktemp('src') / 'mmsplitattn'))


@pytest.fixture(scope='module')
def wheel(source, tmp_path_factory):
    dist = tmp_path_factory.mktemp('dist')
    run(PIP + ['wheel', '--no-deps', '--no-build-isolation', '-q', '-w', str(dist), source],
        cwd=str(dist))
    wheels = glob.glob(str(dist / 'mmsplitattn-*.whl'))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope='module')
def installed(wheel, tmp_path_factory):
    """The wheel installed into a folder of its own (put first on PYTHONPATH)."""
    site = tmp_path_factory.mktemp('site')
    run(PIP + ['install', '-q', '--no-deps', '--target', str(site), wheel], cwd=str(site))
    return str(site)


def env_with(site):
    # single-threaded: these subprocesses are start-up bound, extra threads only contend
    env = dict(os.environ, PYTHONPATH=site + os.pathsep + os.environ.get('PYTHONPATH', ''),
               OMP_NUM_THREADS='1')
    env['PATH'] = osp.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
    return env


def test_wheel_carries_configs_tools_and_model_index(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    mim = 'mmsplitattn/.mim/'
    for rel in configs_in_checkout(with_bases=True):
        assert mim + rel in names, f'{rel} missing from the wheel'
    for rel in (['model-index.yml', 'tools/train.py', 'tools/test.py', 'tools/dist_train.sh',
                 'tools/analysis_tools/get_flops.py', 'tools/misc/make_demo_data.py'] +
                [osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs', '*', '*.yml'))]):
        assert mim + rel in names, f'{rel} missing from the wheel'
    assert 'mmsplitattn/__init__.py' in names
    assert not [n for n in names if '__pycache__' in n or n.endswith('.pyc')]
    assert not [n for n in names if n.startswith(('tests/', 'configs/', 'tools/'))]


@pytest.mark.slow
def test_installed_wheel_runs_a_config_away_from_the_checkout(installed, tmp_path):
    """Config.fromfile(<installed>/.mim/configs/maskrcnn_resnest50.py) loads and builds."""
    script = '''
import json, os.path as osp
import mmsplitattn
from mmengine.config import Config
from mmsplitattn.engine import build_model
mim = osp.join(osp.dirname(mmsplitattn.__file__), '.mim')
cfg = Config.fromfile(osp.join(mim, 'configs', 'maskrcnn_resnest50.py'))
model = build_model(cfg)
print(json.dumps(dict(package=mmsplitattn.__file__, backbone=type(model.backbone).__module__,
                      depth=model.backbone.depth,
                      train_py=osp.isfile(osp.join(mim, 'tools', 'train.py')),
                      index=osp.isfile(osp.join(mim, 'model-index.yml')))))
'''
    out = run([sys.executable, '-c', script], cwd=str(tmp_path), env=env_with(installed))
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info['package'].startswith(installed), info
    assert info['backbone'].startswith('mmsplitattn.') and info['depth'] == 50
    assert info['train_py'] and info['index']


def test_sdist_builds_the_same_wheel(source, wheel, tmp_path):
    """MANIFEST.in puts enough in the sdist for a wheel built from it to carry .mim."""
    run([sys.executable, 'setup.py', '-q', 'sdist', '-d', str(tmp_path)], cwd=source)
    sdists = glob.glob(str(tmp_path / 'mmsplitattn-*.tar.gz'))
    assert len(sdists) == 1
    out = tmp_path / 'from_sdist'
    run(PIP + ['wheel', '--no-deps', '--no-build-isolation', '-q', '-w', str(out), sdists[0]],
        cwd=str(tmp_path))
    rebuilt = zipfile.ZipFile(glob.glob(str(out / '*.whl'))[0]).namelist()
    assert sorted(rebuilt) == sorted(zipfile.ZipFile(wheel).namelist())


def load_setup_py(tree):
    spec = importlib.util.spec_from_file_location('mmsplitattn_setup', osp.join(tree, 'setup.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # setup() itself only runs as __main__
    return module


def test_mim_folder_links_for_editable_and_copies_for_wheels(tmp_path, monkeypatch):
    tree = str(tmp_path / 'src')
    os.makedirs(tree)
    for name in ('setup.py', 'model-index.yml'):
        shutil.copy(osp.join(ROOT, name), tree)
    for name in ('configs', 'tools'):
        shutil.copytree(osp.join(ROOT, name), osp.join(tree, name),
                        ignore=shutil.ignore_patterns('__pycache__'))
    os.makedirs(osp.join(tree, 'mmsplitattn'))
    setup_py = load_setup_py(tree)
    mim = osp.join(tree, 'mmsplitattn', '.mim')

    assert setup_py.mim_mode(['setup.py', 'egg_info']) == ''
    monkeypatch.setattr(sys, 'argv', ['setup.py', 'dist_info'])
    setup_py.add_mim_extension()
    assert not osp.exists(mim)

    for command in ('editable_wheel', 'develop'):
        monkeypatch.setattr(sys, 'argv', ['setup.py', command, '--dist-dir', 'x'])
        setup_py.add_mim_extension()
        for name in ('configs', 'tools', 'model-index.yml'):
            link = osp.join(mim, name)
            assert osp.islink(link) and not osp.isabs(os.readlink(link)), (command, name)
            assert osp.samefile(link, osp.join(tree, name))

    monkeypatch.setattr(sys, 'argv', ['setup.py', 'bdist_wheel'])
    setup_py.add_mim_extension()
    for name in ('configs', 'tools', 'model-index.yml'):
        assert not osp.islink(osp.join(mim, name))
    assert osp.isfile(osp.join(mim, 'configs', 'maskrcnn_resnest50.py'))
    # the copies replaced the links: the checkout's files were not touched through them
    assert osp.isfile(osp.join(tree, 'configs', 'maskrcnn_resnest50.py'))


# ---------------------------------------------------------------- mim


def mim_available():
    return shutil.which('mim', path=osp.dirname(sys.executable)) is not None


@pytest.mark.slow
@pytest.mark.skipif(not mim_available(), reason='openmim is not installed (requirements/tests.txt)')
def test_mim_train_and_test_from_the_installed_package(installed, tiny_run, demo_root, tmp_path):
    """`mim train/test mmsplitattn <config>` find the config and tools in <package>/.mim, and
    the config brings the protections (as tests/test_entry_points.py checks for the other
    entry points): --resume skips a truncated latest checkpoint, a diverging run stops with
    no non-finite checkpoint written, a checkpoint of another architecture is refused."""
    mim = shutil.which('mim', path=osp.dirname(sys.executable))
    env = env_with(installed)
    config = 'configs/demo/maskrcnn_resnest_demo.py'
    work = copy_with_truncated_latest(tiny_run, tmp_path / 'work')
    train = subprocess.run([mim, 'train', 'mmsplitattn', config, '--work-dir', str(work),
                            '--resume', '--cfg-options', *TINY, *DIVERGE, *NO_STATES,
                            'train_cfg.max_epochs=6'],
                           cwd=str(demo_root), env=env, capture_output=True, text=True,
                           timeout=600)
    log = train.stdout + train.stderr
    assert train.returncode != 0
    assert osp.join(installed, 'mmsplitattn', '.mim', 'tools', 'train.py') in log, log[-3000:]
    assert f'--resume: skipping {work / "epoch_2.pth"}' in log and 'resumed epoch: 1' in log
    assert 'FloatingPointError: training diverged at iteration' in log
    assert all(finite_checkpoint(p) for p in glob.glob(str(work / '*.pth')))
    test = ['--checkpoint', str(tiny_run / 'epoch_1.pth'), '--work-dir', str(tmp_path / 'test'),
            '--cfg-options', 'test_dataloader.batch_size=2', 'test_dataloader.dataset.indices=2']
    tested = run([mim, 'test', 'mmsplitattn', config] + test, cwd=str(demo_root), env=env,
                 timeout=600)
    assert 'coco/bbox_mAP' in tested.stdout + tested.stderr
    refused = subprocess.run([mim, 'test', 'mmsplitattn', config] + test
                             + ['model.backbone.depth=26'], cwd=str(demo_root), env=env,
                             capture_output=True, text=True, timeout=600)
    assert refused.returncode != 0
    assert 'does not fit the model (MaskRCNN)' in refused.stdout + refused.stderr


@pytest.mark.skipif(not mim_available(), reason='openmim is not installed (requirements/mim.txt)')
def test_mim_search_reads_the_installed_model_index(installed, tmp_path):
    mim = shutil.which('mim', path=osp.dirname(sys.executable))
    out = run([mim, 'search', 'mmsplitattn', '--field', 'flops', 'parameters'],
              cwd=str(tmp_path), env=env_with(installed)).stdout
    listed = {line.split(':', 1)[1].strip() for line in out.splitlines()
              if line.startswith('config id:')}
    assert listed == {m['Name'] for _, _, m in MODELS}
    assert f'parameters  {MODELS[0][2]["Metadata"]["Parameters"]}' in out


# ---------------------------------------------------------------- model index


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def metafile_models():
    index = load_yaml(osp.join(ROOT, 'model-index.yml'))
    models = []
    for meta in index['Import']:
        data = load_yaml(osp.join(ROOT, meta))
        collections = {c['Name'] for c in data.get('Collections', [])}
        for model in data['Models']:
            models.append((meta, collections, model))
    return models


MODELS = metafile_models() if osp.isfile(osp.join(ROOT, 'model-index.yml')) else []


def test_model_index_imports_one_metafile_per_method():
    index = load_yaml(osp.join(ROOT, 'model-index.yml'))
    assert sorted(index['Import']) == [f'configs/{m}/metafile.yml'
                                       for m in ('acmix', 'resnest', 'sem', 'spanet')]


def test_every_config_is_listed_or_excluded_with_a_reason():
    listed = [m['Config'] for _, _, m in MODELS]
    assert len(listed) == len(set(listed)), 'a config is listed twice'
    names = [m['Name'] for _, _, m in MODELS]
    assert len(names) == len(set(names)), 'a model name is used twice'
    for config in listed:
        assert osp.isfile(osp.join(ROOT, config)), f'{config} is listed but does not exist'
    missing = [c for c in configs_in_checkout()
               if c not in listed and not c.startswith(tuple(NOT_IN_MODEL_ZOO))]
    assert not missing, f'configs neither in a metafile nor excluded: {missing}'


def test_metafiles_are_model_index_format():
    for meta in load_yaml(osp.join(ROOT, 'model-index.yml'))['Import']:
        data = load_yaml(osp.join(ROOT, meta))
        for collection in data['Collections']:
            assert collection['Paper']['URL'].startswith('https://arxiv.org/abs/')
            assert collection['Paper']['Title'] and collection['Code']['URL'].startswith('https://')
            assert osp.isfile(osp.join(ROOT, collection['README']))
    for meta, collections, model in MODELS:
        where = f'{meta}: {model["Name"]}'
        assert model['In Collection'] in collections, where
        assert model['Name'] == osp.splitext(osp.basename(model['Config']))[0], where
        md = model['Metadata']
        assert md['Training Data'] in DATASETS, where
        assert isinstance(md['FLOPs'], int) and isinstance(md['Parameters'], int), where
        assert md['FLOPs'] > 0 and md['Parameters'] > 0, where
        assert md.get('Epochs', 0) > 0 or md.get('Iterations', 0) > 0, where
        assert 'GPUs' in md['Training Resources'], where
        for result in model.get('Results', []):
            assert result['Task'] in TASKS and result['Dataset'] in DATASETS, where
            assert result['Metrics'] and all(isinstance(v, (int, float))
                                             for v in result['Metrics'].values()), where
        if 'Results' in model:  # every number published by someone else says by whom
            assert model.get('Results Source'), where


def test_model_index_loads_with_openmmlab_model_index():
    """What `mim search` reads: the model-index package sees every model and result."""
    modelindex = pytest.importorskip('modelindex')
    index = modelindex.load(osp.join(ROOT, 'model-index.yml'))
    assert sorted(m.name for m in index.models) == sorted(m['Name'] for _, _, m in MODELS)
    for model in index.models:
        assert model.metadata.flops > 0 and model.metadata.parameters > 0
        assert all(r.task in TASKS and r.metrics for r in (model.results or []))


@pytest.mark.parametrize('entry', MODELS, ids=[m['Name'] for _, _, m in MODELS])
def test_listed_config_builds_with_the_listed_parameters(entry):
    from mmengine.config import Config
    meta, _, model_info = entry
    cfg = Config.fromfile(osp.join(ROOT, model_info['Config']))
    model = build_model(cfg)
    assert type(model.backbone).__module__.startswith('mmsplitattn.'), model_info['Config']
    backbone = sum(p.numel() for p in model.backbone.parameters())
    whole = sum(p.numel() for p in model.parameters())
    # detection / segmentation entries give the backbone's, classifiers the whole model's
    assert model_info['Metadata']['Parameters'] in (backbone, whole), (
        model_info['Name'], model_info['Metadata']['Parameters'], backbone, whole)
    init = model_info['Metadata'].get('Backbone Init')
    if init is not None:
        init_cfg = cfg.model.backbone.get('init_cfg') or {}
        assert init in (init_cfg.get('checkpoint'), cfg.model.get('pretrained')), (
            f'{model_info["Name"]}: Backbone Init {init!r} is not what the config loads')
    tasks = {r['Task'] for r in model_info.get('Results', [])}
    scope_tasks = {'mmdet': {'Object Detection', 'Instance Segmentation'},
                   'mmseg': {'Semantic Segmentation'}, 'mmpretrain': {'Image Classification'}}
    assert tasks <= scope_tasks[cfg.default_scope], model_info['Name']


def upstream_weight_groups():
    """{(default_scope, backbone config as JSON): [names]} over the entries with Weights."""
    from mmengine.config import Config
    groups = {}
    for _, _, model_info in MODELS:
        if 'Weights' not in model_info:
            continue
        assert model_info['Weights'].startswith('https://download.openmmlab.com/'), model_info
        cfg = Config.fromfile(osp.join(ROOT, model_info['Config']))
        backbone = cfg.model.backbone.to_dict()
        backbone.pop('init_cfg', None)
        key = (cfg.default_scope, json.dumps(backbone, sort_keys=True))
        groups.setdefault(key, []).append(model_info['Name'])
    return groups


@pytest.mark.slow
def test_upstream_weights_fit_the_listed_configs():
    """The Weights of the ResNeSt entries are mmdet's / mmseg's checkpoints (same
    recipes, upstream's ResNeSt): their backbone state dicts load with strict=True."""
    from mmdet.models.backbones import ResNeSt as MMDetResNeSt
    from mmseg.models.backbones import ResNeSt as MMSegResNeSt

    from mmsplitattn.models import ResNeSt
    groups = upstream_weight_groups()
    assert sum(len(names) for names in groups.values()) == 6
    for (scope, backbone), names in groups.items():
        kwargs = json.loads(backbone)
        assert kwargs.pop('type') == 'mmsplitattn.ResNeSt', names
        upstream = (MMDetResNeSt if scope == 'mmdet' else MMSegResNeSt)(**kwargs).state_dict()
        ours = ResNeSt(**kwargs)
        assert {k: v.shape for k, v in ours.state_dict().items()} == \
            {k: v.shape for k, v in upstream.items()}, names
        ours.load_state_dict(upstream, strict=True)


# ---------------------------------------------------------------- python -m mmsplitattn


def test_environment_report_says_whether_mmcv_has_cuda_ops(capsys):
    """`python -m mmsplitattn` (its main(), in this process: the imports are paid)."""
    from mmcv.ops import get_compiling_cuda_version

    from mmsplitattn.__main__ import main
    assert main() == 0
    stdout = capsys.readouterr().out
    line = next(x for x in stdout.splitlines() if x.strip().startswith('mmcv ops:'))
    if get_compiling_cuda_version() in ('', 'not available'):
        assert 'CPU only, no CUDA ops' in line
    else:
        assert f'CPU + CUDA {get_compiling_cuda_version()}' in line
    assert 'ResNeSt' in next(x for x in stdout.splitlines() if 'registered:' in x)


def test_environment_report_warns_about_cpu_only_ops_on_a_gpu_machine():
    from mmsplitattn.__main__ import describe_mmcv_ops
    cpu = dict(compiled='yes', cuda=None, compiler='GCC 12.2', error=None)
    assert describe_mmcv_ops(cpu, gpus=0) == ('compiled, CPU only, no CUDA ops (GCC 12.2)', [])
    text, warnings = describe_mmcv_ops(cpu, gpus=2)
    assert 'CPU only' in text and len(warnings) == 1 and '2 GPU(s)' in warnings[0]
    cuda = dict(cpu, cuda='12.1')
    assert describe_mmcv_ops(cuda, gpus=2) == ('compiled, CPU + CUDA 12.1 (GCC 12.2)', [])
    missing = dict(compiled=None, cuda=None, compiler=None, error='ModuleNotFoundError: mmcv._ext')
    text, warnings = describe_mmcv_ops(missing, gpus=0)
    assert text.startswith('MISSING') and 'MMCV_WITH_OPS=1' in warnings[0]
