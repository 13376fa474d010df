"""What a training forward keeps for backward (the activation memory of
training, device independent): ACmix-ResNet-50 against mmdet's ResNet-50."""
import os.path as osp
import sys

from conftest import ROOT

sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis_tools'))


def test_acmix_resnet50_keeps_about_the_activations_of_resnet50():
    """ACmix keeps q, k and v once, nothing of its attention. Activations
    only (parameters and input aside): 1.31x at this size, 1.27x at 512x864
    (docs/performance.md); 2.12x with the ACmix before the lean one."""
    from saved_bytes import measure
    ratio = measure('acmix-resnet50', (128, 192))[0] / measure('mmdet-resnet50', (128, 192))[0]
    assert ratio <= 1.4, ratio
