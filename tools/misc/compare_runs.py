"""Print the last validation metrics of MMEngine runs side by side.

    python tools/misc/compare_runs.py NAME=WORK_DIR [NAME=WORK_DIR ...]
        [--keys coco/bbox_mAP coco/segm_mAP]

Each WORK_DIR holds ``<timestamp>/vis_data/scalars.json`` files (the latest
run counts); each row of the table is one run, each column one key.
"""
import argparse
import glob
import json
import os.path as osp


def last_metrics(work_dir: str, keys) -> dict:
    """{key: value} from the last row of the latest run that has every key."""
    logs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not logs:
        raise FileNotFoundError(f'no <timestamp>/vis_data/scalars.json under {work_dir!r}')
    with open(logs[-1]) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    rows = [r for r in rows if all(k in r for k in keys)]
    if not rows:
        raise KeyError(f'{logs[-1]} has no row with every key of {list(keys)}')
    return {k: rows[-1][k] for k in keys}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('runs', nargs='+', help='NAME=WORK_DIR')
    parser.add_argument('--keys', nargs='+', default=['coco/bbox_mAP', 'coco/segm_mAP'])
    args = parser.parse_args(argv)
    runs = []
    for run in args.runs:
        name, sep, work_dir = run.partition('=')
        if not sep or not name or not work_dir:
            raise ValueError(f'runs are NAME=WORK_DIR, got {run!r}')
        runs.append((name, last_metrics(work_dir, args.keys)))
    width = max(len(name) for name, _ in runs)
    print(' ' * width + ''.join(f'  {k:>14}' for k in args.keys))
    for name, metrics in runs:
        print(f'{name:<{width}}' + ''.join(f'  {metrics[k]:>14.3f}' for k in args.keys))


if __name__ == '__main__':
    main()
