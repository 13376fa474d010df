import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version():
    namespace = {}
    with open(osp.join(HERE, 'mmsplitattn', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='mmsplitattn',
    version=read_version(),
    description='ResNeSt, SEM, ACmix and SPANet backbones for OpenMMLab 2.x '
    '(mmdet / mmseg)',
    long_description=open(osp.join(HERE, 'README.md')).read()
    if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.8',
    install_requires=[
        'torch>=1.13',
        'torchvision',
        'mmengine>=0.10.0,<1.0',
        'mmcv>=2.0.0,<2.2.0',
        'mmdet>=3.2.0,<3.4.0',
        'mmsegmentation>=1.2.0,<1.3.0',
        'numpy',
        'pycocotools',
        'ftfy',
        'regex',
    ],
    extras_require={
        'timm': ['timm>=0.9'],
        'cityscapes': ['cityscapesscripts'],
        'tests': ['pytest', 'timm>=0.9', 'cityscapesscripts', 'matplotlib'],
    },
    license='Apache-2.0',
    zip_safe=False,
)
