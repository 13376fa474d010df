"""The README's inference snippets run as written, on a checkpoint of this
package's tools/train.py, with torch's default ``weights_only=True``: the test
process's TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD (conftest.py) is not passed on; and
what importing mmsplitattn allow-lists for such loads (checkpoint_safety.py)."""
import io
import json
import os
import pickle
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

import mmsplitattn  # noqa: F401  (allow-lists MMEngine's checkpoint classes)
from conftest import ROOT

README = Path(ROOT) / 'README.md'


def section(title: str) -> str:
    """The text of the README's ``## title`` section."""
    text = README.read_text(encoding='utf-8')
    match = re.search(rf'^## {re.escape(title)}\n(.*?)(?=^## |\Z)', text, re.M | re.S)
    assert match, f'README.md has no "## {title}" section'
    return match.group(1)


def python_snippets(text: str) -> list:
    return re.findall(r'^```python\n(.*?)^```', text, re.M | re.S)


def weights_only_round_trip(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_history_buffers_and_generator_states_load_with_weights_only():
    history = HistoryBuffer()
    for value in (1.0, 2.0, 4.0):
        history.update(value)
    state = weights_only_round_trip(dict(loss=history, numpy=np.random.get_state(),
                                         python=random.getstate(), n=np.int64(3)))
    assert state['loss'].mean() == pytest.approx(7 / 3) and state['loss'].current() == 4.0
    assert (state['numpy'][1] == np.random.get_state()[1]).all()


class GetattrOf:
    """Pickles as ``getattr(owner, name)``."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return getattr, (self.owner, self.name)


@pytest.mark.parametrize('owner,name', [(HistoryBuffer, '__init__'), (np.ndarray, 'tofile')])
def test_weights_only_still_refuses_any_other_getattr(owner, name):
    with pytest.raises(pickle.UnpicklingError, match='getattr only for the HistoryBuffer'):
        weights_only_round_trip(dict(x=GetattrOf(owner, name)))


@pytest.mark.slow
def test_a_checkpoint_of_the_tools_loads_with_weights_only(det_run):
    checkpoint = torch.load(det_run / 'epoch_2.pth', map_location='cpu', weights_only=True)
    assert checkpoint['meta']['epoch'] == 2 and checkpoint['rng_states']
    assert 'log_scalars' in checkpoint['message_hub']


@pytest.mark.slow
def test_inference_snippets_run_as_written(det_run, demo_root, tmp_path):
    snippets = python_snippets(section('Inference'))
    assert snippets and any('DetInferencer' in s for s in snippets)
    code = '\n'.join(snippets)
    # the files the snippets name, relative to where a user runs them: the checkout
    (tmp_path / 'configs').symlink_to(Path(ROOT) / 'configs')
    for weights in re.findall(r"'([^']+\.pth)'", code):
        (tmp_path / weights).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(det_run / 'epoch_2.pth', tmp_path / weights)
    images = re.findall(r"'([^']+\.jpg)'", code)
    val_image = next((demo_root / 'data' / 'demo' / 'coco' / 'val2017').glob('*.jpg'))
    for image in images:
        shutil.copy(val_image, tmp_path / image)
    report = "\nimport json\nprint('RESULT', json.dumps(sorted(result['predictions'][0])))\n"
    env = {k: v for k, v in os.environ.items() if k != 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'}
    proc = subprocess.run([sys.executable, '-c', code + report], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f'{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}'
    keys = json.loads(proc.stdout.split('RESULT ', 1)[1])
    assert {'labels', 'scores', 'bboxes', 'masks'} <= set(keys)
    for image in images:
        assert (tmp_path / 'outputs' / 'vis' / Path(image).name).is_file()
