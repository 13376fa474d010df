"""Render what each attention module of a trained model did on one image.

    python tools/analysis_tools/visualize_attention.py CONFIG CHECKPOINT IMAGE
        --out-dir DIR [--pixel Y X] [--device cpu]

Writes one PNG per kind of module found in the backbone:
  split_attention.png  radix weights (mean over channels) of every block
  sem_decisions.png    SEM's SE / ECA / IE decision weights of every block
  spanet_positions.png the positions each SPA block selected, on the image
  acmix_rates.png      ACmix's rate1 (attention) / rate2 (convolution)
  acmix_window.png     ACmix's attention window, per head, at one pixel
                       (``--pixel``, in input-image coordinates; default centre)
"""
import argparse
import os
import os.path as osp

import matplotlib
import numpy as np

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import mmcv  # noqa: E402
from mmengine.config import Config  # noqa: E402

from mmsplitattn.engine import check_checkpoint, task_of  # noqa: E402
from mmsplitattn.models import SEM, ACmix, SPABlock, SplitAttentionConv2d  # noqa: E402

KINDS = (SplitAttentionConv2d, SEM, SPABlock, ACmix)


def run_model(config, checkpoint, image, device):
    """Build, load and run the model once with attention recording on.

    Returns (backbone, input image RGB (H, W, 3), network input size (h, w)).
    """
    cfg = Config.fromfile(config)
    if task_of(cfg, tasks=('det', 'seg')) == 'det':
        from mmdet.apis import inference_detector as infer
        from mmdet.apis import init_detector as init
    else:
        from mmseg.apis import inference_model as infer
        from mmseg.apis import init_model as init
    model = init(cfg, checkpoint, device=device)
    modules = [m for m in model.backbone.modules() if isinstance(m, KINDS)]
    if not modules:
        raise ValueError(f'{config}: its backbone {type(model.backbone).__name__} has no '
                         'Split-Attention, SEM, SPA or ACmix module to show')
    for m in modules:
        m.return_attention = True
    result = infer(model, image)
    img_shape = result.metainfo['img_shape']
    return model.backbone, mmcv.imread(image, channel_order='rgb'), img_shape


def named(backbone, kind):
    return [(n, m) for n, m in backbone.named_modules() if isinstance(m, kind)]


def save(fig, out):
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def grouped_bars(mods, series, title, out, ylabel=None, ylim=None):
    """One group of bars per module, one bar per (label, values) of ``series``."""
    x = np.arange(len(mods))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6, 0.4 * len(mods)), 3.5))
    for i, (label, values) in enumerate(series):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=label)
    ax.set_xticks(x, [n for n, _ in mods], rotation=60, ha='right', fontsize=7)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    save(fig, out)


def plot_split_attention(mods, out):
    """Mean attention of each radix split, per block: a (blocks x R) heatmap."""
    weights = np.stack([m.last_attention[0].mean(1).cpu().numpy() for _, m in mods])
    fig, ax = plt.subplots(figsize=(2 + weights.shape[1], 1 + 0.3 * len(mods)))
    im = ax.imshow(weights, aspect='auto', cmap='viridis', vmin=0, vmax=1)
    ax.set_yticks(range(len(mods)), [n for n, _ in mods], fontsize=7)
    ax.set_xticks(range(weights.shape[1]), [f'radix {r}' for r in range(weights.shape[1])])
    ax.set_title('Split-attention: mean weight per radix split')
    fig.colorbar(im, ax=ax)
    save(fig, out)


def plot_sem(mods, out):
    w = np.stack([m.last_decision[0].cpu().numpy() for _, m in mods])  # (blocks, 3)
    grouped_bars(mods, [(label, w[:, i]) for i, label in enumerate(('SE', 'ECA', 'IE'))],
                 'SEM: switch decisions per block', out, ylabel='decision weight', ylim=(0, 1))


def plot_spanet(mods, img, img_shape, out):
    """Selected positions of every SPA block, mapped onto the (resized) image."""
    h_in, w_in = img_shape
    shown = mmcv.imresize(img, (w_in, h_in))
    cols = min(4, len(mods))
    rows = -(-len(mods) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis('off')
    for ax, (name, m) in zip(axes.flat, mods):
        h, w = m.last_size
        idx = m.last_indices[0].cpu().numpy()
        ys, xs = (idx // w + 0.5) * h_in / h, (idx % w + 0.5) * w_in / w
        ax.imshow(shown)
        ax.scatter(xs, ys, s=30, c='red', marker='x')
        ax.set_title(f'{name} (k={len(idx)})', fontsize=7)
    fig.suptitle('SPANet: selected salient positions')
    save(fig, out)


def plot_acmix_rates(mods, out):
    grouped_bars(mods, [('rate1 (attention)', [m.rate1.item() for _, m in mods]),
                        ('rate2 (convolution)', [m.rate2.item() for _, m in mods])],
                 'ACmix: attention / convolution mix per block', out)


def plot_acmix_window(mods, img_shape, pixel, out):
    """Attention window of the first ACmix block at ``pixel`` (input coords)."""
    name, m = mods[0]
    att = m.last_attention[0].cpu().numpy()  # (N, K*K, H', W')
    n, kk, h, w = att.shape
    k = int(round(kk ** 0.5))
    y, x = pixel if pixel is not None else (img_shape[0] // 2, img_shape[1] // 2)
    fy = min(h - 1, int(y * h / img_shape[0]))
    fx = min(w - 1, int(x * w / img_shape[1]))
    fig, axes = plt.subplots(1, n, figsize=(2.5 * n, 2.8), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(att[i, :, fy, fx].reshape(k, k), cmap='magma')
        ax.set_title(f'head {i}', fontsize=8)
        ax.axis('off')
    fig.suptitle(f'ACmix {name}: {k}x{k} window at feature ({fy}, {fx})', fontsize=9)
    save(fig, out)


def visualize(config, checkpoint, image, out_dir, pixel=None, device='cpu'):
    """Write the figures; returns their paths."""
    check_checkpoint(checkpoint)
    if not osp.isfile(image):
        raise FileNotFoundError(f'image {image!r} does not exist')
    backbone, img, img_shape = run_model(config, checkpoint, image, device)
    os.makedirs(out_dir, exist_ok=True)
    written = []

    def out(name):
        written.append(osp.join(out_dir, name))
        return written[-1]

    found = {kind: named(backbone, kind) for kind in KINDS}
    if found[SplitAttentionConv2d]:
        plot_split_attention(found[SplitAttentionConv2d], out('split_attention.png'))
    if found[SEM]:
        plot_sem(found[SEM], out('sem_decisions.png'))
    if found[SPABlock]:
        plot_spanet(found[SPABlock], img, img_shape, out('spanet_positions.png'))
    if found[ACmix]:
        plot_acmix_rates(found[ACmix], out('acmix_rates.png'))
        plot_acmix_window(found[ACmix], img_shape, pixel, out('acmix_window.png'))
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('image')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--pixel', type=int, nargs=2, metavar=('Y', 'X'))
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    for path in visualize(args.config, args.checkpoint, args.image, args.out_dir,
                          args.pixel, args.device):
        print(path)


if __name__ == '__main__':
    main()
