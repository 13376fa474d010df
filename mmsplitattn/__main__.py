"""``python -m mmsplitattn``: print the environment the package runs in."""
import platform
import sys


def collect_env():
    """Return [(name, value)] describing the software and devices."""
    import torch
    rows = [('Python', sys.version.split()[0]), ('Platform', platform.platform()),
            ('PyTorch', torch.__version__),
            ('CUDA available', torch.cuda.is_available())]
    if torch.cuda.is_available():
        rows.append(('GPUs', ', '.join(
            torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))))
    for name in ('torchvision', 'mmengine', 'mmcv', 'mmdet', 'mmseg', 'timm'):
        try:
            rows.append((name, __import__(name).__version__))
        except Exception as e:  # noqa: BLE001 - report, do not fail
            rows.append((name, f'not available ({type(e).__name__}: {e})'))
    try:
        from mmcv.ops import RoIAlign, nms  # noqa: F401
        import mmcv._ext  # noqa: F401
        rows.append(('mmcv ops', 'compiled ops present'))
    except Exception as e:  # noqa: BLE001
        rows.append(('mmcv ops', f'MISSING ({e})'))
    import mmsplitattn
    from mmsplitattn.registry import MODELS
    rows.append(('mmsplitattn', mmsplitattn.__version__))
    rows.append(('registered', ', '.join(sorted(MODELS.module_dict))))
    return rows


def main():
    for name, value in collect_env():
        print(f'{name:>15}: {value}')


if __name__ == '__main__':
    main()
