"""Plot training curves from MMEngine logs (mmdet's ``analyze_logs.py`` habit).

    python tools/analysis_tools/analyze_logs.py plot_curve LOG [LOG ...]
        [--keys loss coco/bbox_mAP] [--legend A B] [--title T] --out curve.png

LOG is a ``vis_data/scalars.json`` (or ``<timestamp>.json``) written by
MMEngine, or a work dir / run dir containing one. Training rows are plotted
against the iteration, validation metrics against their step.
"""
import argparse
import glob
import json
import os.path as osp


def find_log(path):
    """The scalars.json file for a file, a run dir or a work dir."""
    if osp.isfile(path):
        return path
    hits = sorted(glob.glob(osp.join(path, '**', 'vis_data', 'scalars.json'), recursive=True))
    if not hits:
        raise FileNotFoundError(f'no vis_data/scalars.json under {path!r}')
    return hits[-1]  # the latest run


def load_rows(path):
    with open(find_log(path)) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_curve(logs, keys, out, legend=None, title=None):
    """Plot ``keys`` of every log into one PNG per key row; returns ``out``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    legend = legend or [osp.basename(osp.dirname(osp.abspath(find_log(p)))) for p in logs]
    if len(legend) != len(logs):
        raise ValueError(f'--legend needs {len(logs)} names, got {len(legend)}')
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 3 * len(keys)), squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        plotted = False
        for log, name in zip(logs, legend):
            rows = [r for r in load_rows(log) if key in r]
            if rows:
                ax.plot([r['step'] for r in rows], [r[key] for r in rows],
                        marker='o' if len(rows) < 20 else None, label=name)
                plotted = True
        if not plotted:
            raise KeyError(f'no log has the key {key!r}')
        ax.set_xlabel('iteration' if 'coco/' not in key and 'mIoU' not in key else 'step')
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description='Analyze MMEngine training logs')
    sub = parser.add_subparsers(dest='task', required=True)
    p = sub.add_parser('plot_curve', help='plot keys of one or more logs')
    p.add_argument('logs', nargs='+', help='scalars.json files or work dirs')
    p.add_argument('--keys', nargs='+', default=['loss'], help='keys to plot')
    p.add_argument('--legend', nargs='+', help='one name per log')
    p.add_argument('--title')
    p.add_argument('--out', required=True, help='output PNG')
    args = parser.parse_args(argv)
    print(plot_curve(args.logs, args.keys, args.out, args.legend, args.title))


if __name__ == '__main__':
    main()
