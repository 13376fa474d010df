"""Install mmsplitattn.

    pip install .                  # a wheel with configs/ and tools/ inside (mmsplitattn/.mim)
    pip install -e .               # editable: mmsplitattn/.mim links back to the checkout
    pip install ".[tests]"         # with the test tools

The OpenMMLab stack itself (torch, mmcv with its compiled ops, mmdet,
mmsegmentation) is best installed first, the way docs/install.md says: pip
cannot build mmcv's ops against the torch it picks by itself.
"""
import os
import os.path as osp
import shutil
import sys
import warnings

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))

# What `mim train/test/search mmsplitattn ...` looks for in <package>/.mim.
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def read_version() -> str:
    namespace = {}
    with open(osp.join(HERE, 'mmsplitattn', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def read_readme() -> str:
    path = osp.join(HERE, 'README.md')
    if not osp.exists(path):
        return ''
    with open(path, encoding='utf-8') as f:
        return f.read()


def mim_mode(argv) -> str:
    """'symlink' for an editable install, 'copy' for anything that builds a
    wheel, an sdist or installs, '' for commands that only read metadata."""
    commands = set(argv[1:])
    if commands & {'develop', 'editable_wheel'}:
        return 'symlink'
    if commands & {'sdist', 'bdist_wheel', 'install', 'build', 'build_py'}:
        return 'copy'
    return ''


def add_mim_extension() -> None:
    """Place configs/, tools/ and model-index.yml in mmsplitattn/.mim, where an
    installed package is looked up by `mim` and by users of the wheel.

    A wheel or an sdist gets copies; an editable install gets relative
    symlinks, so edits in the checkout show at once (copies where the file
    system refuses symlinks). Anything already in mmsplitattn/.mim is replaced.
    """
    mode = mim_mode(sys.argv)
    if not mode:
        return
    mim_dir = osp.join(HERE, 'mmsplitattn', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(HERE, name)
        if not osp.exists(src):
            # An sdist built without them, or a partial checkout: nothing to ship.
            warnings.warn(f'{name} not found next to setup.py: not added to mmsplitattn/.mim')
            continue
        dst = osp.join(mim_dir, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            try:
                os.symlink(osp.relpath(src, mim_dir), dst)
                continue
            except OSError:
                warnings.warn(f'cannot symlink {dst}; copying {name} instead')
        if osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmsplitattn',
        version=read_version(),
        description='ResNeSt, SEM, ACmix and SPANet backbones for OpenMMLab 2.x '
        '(mmdet 3.x / mmsegmentation 1.x / mmpretrain 1.x)',
        long_description=read_readme(),
        long_description_content_type='text/markdown',
        keywords='computer vision, backbone, attention, ResNeSt, object detection, '
        'instance segmentation, semantic segmentation, OpenMMLab',
        packages=find_packages(exclude=('configs', 'configs.*', 'tools', 'tools.*',
                                        'tests', 'tests.*')),
        # mmsplitattn/.mim/** (configs, tools, model-index.yml) through MANIFEST.in.
        include_package_data=True,
        python_requires='>=3.8',
        # torch >= 2.6: the models use nothing newer than Tensor.unflatten and
        # torch.fx.wrap (2.0); engine/ uses torch.nn.utils.get_total_norm (2.6), as
        # does the --dynamo ONNX export of tools/deployment (torch.export.Dim.AUTO).
        # Tested with torch 2.14.1 only.
        # mmengine 0.10.x: engine/ overrides methods of its Runner (tested: 0.10.7).
        # mmcv < 2.2: mmdet 3.3 and mmsegmentation 1.2 assert it at import.
        install_requires=[
            'torch>=2.6',
            'torchvision',
            'mmengine>=0.10.0,<0.11',
            'mmcv>=2.0.0,<2.2.0',
            'mmdet>=3.2.0,<3.4.0',
            'mmsegmentation>=1.2.0,<1.3.0',
            'numpy',
            'pycocotools',
            'ftfy',  # mmseg imports them unconditionally
            'regex',
        ],
        extras_require={
            'timm': ['timm>=0.9'],
            'cityscapes': ['cityscapesscripts'],
            'pretrain': ['mmpretrain>=1.2.0,<1.3.0'],
            'deploy': ['onnx', 'onnxscript', 'onnxruntime'],
            # openmim is left out on purpose: its dependency openxlab pins
            # setuptools~=60.2; `pip install --no-deps openmim` (docs/install.md).
            'tests': ['pytest', 'pytest-xdist', 'filelock', 'timm>=0.9', 'cityscapesscripts',
                      'matplotlib', 'onnx', 'onnxscript', 'onnxruntime'],
        },
        classifiers=[
            'Development Status :: 4 - Beta',
            'Operating System :: POSIX :: Linux',
            'Programming Language :: Python :: 3',
            'Programming Language :: Python :: 3.8',
            'Programming Language :: Python :: 3.9',
            'Programming Language :: Python :: 3.10',
            'Programming Language :: Python :: 3.11',
            'Intended Audience :: Science/Research',
            'Topic :: Scientific/Engineering :: Artificial Intelligence',
            'Topic :: Scientific/Engineering :: Image Recognition',
        ],
        license='Apache-2.0',
        zip_safe=False,
    )
