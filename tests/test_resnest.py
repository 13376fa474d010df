"""ResNeSt backbone: shapes, options, and drop-in equivalence with mmdet/mmseg."""
import pytest
import torch
from mmengine.registry import MODELS as ROOT_MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from conftest import randomize_norms
from mmsplitattn.models import ResNeSt


@pytest.mark.parametrize('depth,blocks', [(14, (1, 1, 1, 1)), (26, (2, 2, 2, 2)),
                                          (50, (3, 4, 6, 3)), (101, (3, 4, 23, 3))])
def test_stage_shapes(depth, blocks):
    model = ResNeSt(depth, stem_channels=64 if depth < 101 else 128).eval()
    assert tuple(len(getattr(model, f'layer{i + 1}')) for i in range(4)) == blocks
    outs = model(torch.randn(2, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(2, 256, 8, 8), (2, 512, 4, 4),
                                              (2, 1024, 2, 2), (2, 2048, 1, 1)]


@pytest.mark.parametrize('depth', [200, 269])
def test_deep_variants_build(depth):
    model = ResNeSt(depth, stem_channels=128, num_stages=4)
    n = sum(p.numel() for p in model.parameters()) / 1e6
    expected = {200: 70.2 - 2.05, 269: 110.9 - 2.05}[depth]  # SPEC minus the fc
    assert abs(n - expected) / expected < 0.02


def test_params_resnest50_match_paper():
    n = sum(p.numel() for p in ResNeSt(50).parameters()) / 1e6
    # 27.5M with the 2048x1000 classifier (2.05M) in the paper
    assert abs(n + 2.049 - 27.5) < 0.15


def test_dilated_d8_shapes_and_odd_sizes():
    model = ResNeSt(26, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
                    contract_dilation=True, out_indices=(0, 1, 2, 3)).eval()
    outs = model(torch.randn(1, 3, 65, 47))
    assert [o.shape[-2:] for o in outs] == [(17, 12), (9, 6), (9, 6), (9, 6)]
    assert model.layer4[0].conv2.conv.dilation == (2, 2)  # contracted
    assert model.layer4[1].conv2.conv.dilation == (4, 4)


@pytest.mark.parametrize('avd_first', [False, True])
def test_avd_placement_and_groups(avd_first):
    model = ResNeSt(14, groups=2, base_width=32, radix=4, avd_first=avd_first).eval()
    block = model.layer2[0]
    assert block.conv2.conv.stride == (1, 1) and block.avd_layer.stride == 2
    assert not hasattr(model.layer1[0], 'avd_layer')
    assert block.width == 128 and block.conv2.conv.groups == 8
    outs = model(torch.randn(1, 3, 64, 64))
    assert outs[3].shape == (1, 2048, 2, 2)


def test_no_avg_down_stride_uses_strided_conv():
    model = ResNeSt(14, avg_down_stride=False)
    assert model.layer2[0].conv2.conv.stride == (2, 2)
    assert not hasattr(model.layer2[0], 'avd_layer')


def test_out_indices_frozen_stages_norm_eval():
    model = ResNeSt(14, out_indices=(1, 3), frozen_stages=2, norm_eval=True)
    model.init_weights()
    model.train()
    assert len(model(torch.randn(2, 3, 64, 64))) == 2
    for p in list(model.stem.parameters()) + list(model.layer1.parameters()) + \
            list(model.layer2.parameters()):
        assert not p.requires_grad
    assert all(p.requires_grad for p in model.layer3.parameters())
    assert all(not m.training for m in model.modules() if isinstance(m, _BatchNorm))


def test_zero_init_residual_and_with_cp():
    model = ResNeSt(14, with_cp=True)
    model.init_weights()
    assert model.layer1[0].norm3.weight.abs().sum() == 0
    model.train()
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    sum(o.sum() for o in model(x)).backward()
    assert x.grad is not None
    assert all(p.grad is not None for p in model.parameters())


def test_plugins_are_built_with_block_width():
    plugins = [dict(cfg=dict(type='ContextBlock', ratio=1. / 4), position='after_conv3',
                    stages=(False, True, False, False))]
    model = ResNeSt(14, plugins=plugins).eval()
    assert hasattr(model.layer2[0], 'context_block')
    assert not hasattr(model.layer1[0], 'context_block')
    assert model(torch.randn(1, 3, 32, 32))[1].shape == (1, 512, 4, 4)


@pytest.mark.parametrize('kwargs,match', [
    (dict(depth=18), r'depth must be one of \[14, 26, 50, 101, 152, 200, 269\], got 18'),
    (dict(depth=50, style='tensorflow'), r"style must be one of \['pytorch'\], got 'tensorflow'"),
    (dict(depth=50, style='caffe'), "style must be one of"),
    (dict(depth=50, radix=0), 'radix must be an integer >= 1, got 0'),
    (dict(depth=50, groups=0), 'groups must be an integer >= 1, got 0'),
    (dict(depth=50, strides=(1, 2, 2)), 'strides must have num_stages=4 entries'),
    (dict(depth=50, out_indices=(4, )), r'out_indices must be in \[0, 3\]'),
    (dict(depth=50, frozen_stages=5), r'frozen_stages must be in \[-1, 4\]'),
    (dict(depth=50, groups=64, base_width=1),
     r'in_channels \(64\) must be divisible by groups \* radix \(128\)'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResNeSt(**kwargs)


def test_builds_from_registry_in_both_scopes():
    from mmengine.registry import DefaultScope
    for scope in ('mmdet', 'mmseg'):
        with DefaultScope.overwrite_default_scope(scope):
            import mmdet.registry  # noqa: F401  (the scopes must exist)
            import mmseg.registry  # noqa: F401
            registry = {'mmdet': mmdet.registry.MODELS, 'mmseg': mmseg.registry.MODELS}[scope]
            m = registry.build(dict(type='mmsplitattn.ResNeSt', depth=14))
            assert type(m) is ResNeSt
    # unscoped names stay the upstream class: that is what the scope is for
    assert ROOT_MODELS.get('mmsplitattn.ResNeSt') is ResNeSt


PEER_CASES = [
    dict(depth=50),
    dict(depth=101, stem_channels=128, out_indices=(0, 1, 2, 3)),
    dict(depth=50, groups=2, base_width=32, radix=4, avg_down_stride=False),
    dict(depth=50, stem_channels=128, radix=1),
]
D8 = dict(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), contract_dilation=True)


def _compare_with_peer(peer_cls, kwargs, size):
    torch.manual_seed(0)
    peer = peer_cls(**kwargs)
    randomize_norms(peer)
    ours = ResNeSt(**kwargs)
    missing = ours.load_state_dict(peer.state_dict(), strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys
    peer.eval()
    ours.eval()
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        for a, b in zip(ours(x), peer(x)):
            assert a.shape == b.shape
            assert (a - b).abs().max() <= 1e-5 * max(1.0, b.abs().max().item())


@pytest.mark.parametrize('kwargs', PEER_CASES)
def test_drop_in_for_mmdet_resnest(kwargs):
    from mmdet.models.backbones import ResNeSt as MMDetResNeSt
    _compare_with_peer(MMDetResNeSt, kwargs, (64, 64))


@pytest.mark.parametrize('kwargs', [dict(depth=50, **D8), dict(depth=101, stem_channels=128, **D8)])
def test_drop_in_for_mmseg_resnest_d8(kwargs):
    from mmseg.models.backbones import ResNeSt as MMSegResNeSt
    _compare_with_peer(MMSegResNeSt, kwargs, (65, 47))


def test_channels_last_input_gives_the_same_outputs():
    torch.manual_seed(0)
    model = ResNeSt(14).eval()
    randomize_norms(model)
    x = torch.randn(2, 3, 48, 40)
    with torch.no_grad():
        for a, b in zip(model(x.contiguous(memory_format=torch.channels_last)), model(x)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_compiled_resnest_matches_eager():
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = ResNeSt(14).eval()
    randomize_norms(model)
    x = torch.randn(1, 3, 32, 32)
    compiled = torch.compile(model)
    with torch.no_grad():
        for a, b in zip(compiled(x), model(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def _training_step(model, x):
    """Outputs, input gradient and parameter gradients of one step in train mode."""
    model.train()
    x = x.clone().requires_grad_()
    outs = model(x)
    weights = [torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o) for o in outs]
    sum((o * w).sum() for o, w in zip(outs, weights)).backward()
    return outs, x.grad, {n: p.grad for n, p in model.named_parameters()}


def _assert_same_training_step(ours, peer, size, running_stats=True):
    """Same outputs, gradients and running statistics after one step.

    In float64, so that what remains is a difference of computation: in
    float32 the batch statistics of a deep net amplify rounding to ~1e-4.
    Errors are relative to each tensor's scale, with a floor at 1e-3 of the
    largest gradient for those that are zero up to rounding (bias before BN).
    """
    ours.double()
    peer.double()
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    outs, gx, grads = _training_step(ours, x)
    peer_outs, peer_gx, peer_grads = _training_step(peer, x)
    pairs = [('outputs', a, b) for a, b in zip(outs, peer_outs)] + [('input', gx, peer_gx)]
    pairs += [(name, g, peer_grads[name]) for name, g in grads.items()]
    floor = 1e-3 * max(g.abs().max().item() for g in peer_grads.values())
    for name, a, b in pairs:
        err = ((a - b).abs().max() / b.abs().max().clamp(min=floor)).item()
        assert err <= 1e-7, f'{name}: {err:.2e}'
    for (name, a), b in zip(ours.state_dict().items(), peer.state_dict().values()):
        if running_stats or not name.endswith(('running_mean', 'running_var', 'num_batches_tracked')):
            torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-7, msg=name)


@pytest.mark.parametrize('kwargs', [dict(depth=50), dict(depth=50, groups=2, base_width=32, radix=4),
                                    dict(depth=50, radix=1, stem_channels=32)])
def test_training_step_matches_mmdet(kwargs):
    """Batch statistics, outputs, gradients: the same step as mmdet's."""
    from mmdet.models.backbones import ResNeSt as MMDetResNeSt
    torch.manual_seed(0)
    peer = MMDetResNeSt(norm_eval=False, **kwargs)
    randomize_norms(peer)
    ours = ResNeSt(**kwargs)
    ours.load_state_dict(peer.state_dict())
    _assert_same_training_step(ours, peer, (64, 48))


def test_with_cp_gives_the_same_training_step():
    torch.manual_seed(0)
    plain = ResNeSt(14)
    randomize_norms(plain)
    checkpointed = ResNeSt(14, with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    # checkpointing re-runs the forward, so BN running statistics move twice
    # (as in mmdet/mmseg); the gradients are the same
    _assert_same_training_step(checkpointed, plain, (32, 32), running_stats=False)
