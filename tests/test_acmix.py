"""ACmix against the unfold formulation of the official code, and ACmix-ResNet."""
import pytest
import torch

from mmsplitattn.models import ACmix, ACmixResNet
from mmsplitattn.models.layers.acmix_unfold import acmix_unfold_forward

OFFICIAL_KEYS = {'rate1', 'rate2', 'conv1.weight', 'conv1.bias', 'conv2.weight', 'conv2.bias',
                 'conv3.weight', 'conv3.bias', 'conv_p.weight', 'conv_p.bias', 'fc.weight',
                 'dep_conv.weight'}


def randomized(m, seed=0):
    """Random values under the official names (an 'official state dict')."""
    g = torch.Generator().manual_seed(seed)
    sd = {k: torch.randn(v.shape, generator=g) * 0.3 for k, v in m.state_dict().items()}
    assert set(sd) == OFFICIAL_KEYS
    m.load_state_dict(sd, strict=True)
    return m


@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('size', [(8, 8), (12, 16), (16, 10)])
def test_matches_official_formulation_on_even_sizes(stride, size):
    m = randomized(ACmix(16, 32, kernel_att=7, head=4, kernel_conv=3, stride=stride))
    x = torch.randn(2, 16, *size)
    out = m(x)
    assert out.shape == (2, 32, size[0] // stride, size[1] // stride)
    torch.testing.assert_close(out, acmix_unfold_forward(m, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('dilation,kernel_conv', [(2, 3), (3, 5), (1, 5), (2, 1)])
def test_dilation_and_kernel_conv_agree_with_dilated_reference(dilation, kernel_conv):
    m = randomized(ACmix(8, 16, kernel_att=3, head=2, kernel_conv=kernel_conv, dilation=dilation))
    x = torch.randn(1, 8, 14, 12)
    out = m(x)
    assert out.shape == (1, 16, 14, 12)
    torch.testing.assert_close(out, acmix_unfold_forward(m, x), rtol=1e-4, atol=1e-4)


def assert_close_rel(actual, expected, rel, what='', atol=0.0):
    """max |a - e| <= rel * max |e| + atol."""
    err, scale = (actual - expected).abs().max().item(), expected.abs().max().item()
    assert err <= rel * scale + atol, f'{what}: error {err:.2e}, max |expected| {scale:.2e}'


@pytest.mark.parametrize('size', [(7, 7), (9, 4), (1, 1), (2, 3), (5, 1), (13, 11)])
@pytest.mark.parametrize('stride,dilation', [(2, 1), (1, 1), (1, 4), (2, 2)])
def test_any_size_agrees_with_unfold_in_value_and_gradient(size, stride, dilation):
    """Odd sizes, stride 2, dilation and maps smaller than the window (where
    the reflection repeats), the gradients of input and parameters included."""
    m = randomized(ACmix(8, 8, stride=stride, dilation=dilation))
    x = torch.randn(2, 8, *size, requires_grad=True)
    out = m(x)
    assert out.shape == (2, 8, -(-size[0] // stride), -(-size[1] // stride))
    ref = acmix_unfold_forward(m, x)
    assert_close_rel(out, ref, 1e-5, 'output')
    weight = torch.randn_like(out)
    params = [x, *m.parameters()]
    grads = torch.autograd.grad((out * weight).sum(), params)
    ref_grads = torch.autograd.grad((ref * weight).sum(), params)
    for (name, _), g, r in zip([('x', x), *m.named_parameters()], grads, ref_grads):
        # atol for conv_p.bias, whose gradient is 0 (a constant logit shift) up to rounding
        assert_close_rel(g, r, 1e-5, name, atol=1e-5)


@pytest.mark.parametrize('size,stride,dilation,kernel_att', [
    ((5, 3), 1, 1, 3), ((2, 1), 1, 1, 5), ((5, 4), 2, 1, 3), ((6, 5), 1, 2, 3),
    ((7, 6), 1, 1, 7)])
def test_gradcheck_float64(size, stride, dilation, kernel_att):
    """Through the recomputed attention (x, conv_p, rate1) and the composed
    kernel (fc); every gradient is also checked against unfold above."""
    m = randomized(ACmix(2, 4, kernel_att=kernel_att, head=2, stride=stride,
                         dilation=dilation)).double()
    x = torch.randn(1, 2, *size, dtype=torch.float64, requires_grad=True)
    # the parameters as inputs: gradcheck perturbs them in place
    params = (m.conv_p.weight, m.rate1, m.fc.weight)
    assert torch.autograd.gradcheck(lambda x, *params: m(x), (x, *params))


def test_keeps_for_backward_q_k_v_once():
    """All an ACmix keeps for backward (its input and parameters aside) is
    q, k and v once, so the window weights are recomputed in backward."""
    from mmsplitattn.profiling import saved_bytes
    m = ACmix(16, 32, head=4)
    x = torch.randn(2, 16, 20, 24)
    saved = saved_bytes(lambda: m(x), exclude=[x, *m.parameters()])
    qkv = 3 * x.new_empty(2, 32, 20, 24).nbytes
    kernel = m.dep_conv.weight.new_empty(32, 12, 3, 3).nbytes  # the composed one
    assert saved == qkv + 2 * kernel  # its product with rate2 too


def test_torch_compile_captures_one_graph():
    """fullgraph=True: no graph break (the eager backend: dynamo's capture only)."""
    m = randomized(ACmix(8, 16, kernel_att=3, head=4, stride=2))
    x = torch.randn(2, 8, 13, 9, requires_grad=True)
    compiled = torch.compile(m, backend='eager', fullgraph=True)
    out = compiled(x)
    torch.testing.assert_close(out, m(x))
    grad, = torch.autograd.grad(out.square().sum(), x)
    torch.testing.assert_close(grad, torch.autograd.grad(m(x).square().sum(), x)[0])


def test_with_cp_gives_the_same_training_step():
    torch.manual_seed(0)
    plain = ACmixResNet(26, attention_cfg=dict(kernel_att=3)).train()
    checkpointed = ACmixResNet(26, attention_cfg=dict(kernel_att=3), with_cp=True).train()
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 48, 40)
    losses = [sum(o.square().mean() for o in model(x)) for model in (plain, checkpointed)]
    torch.testing.assert_close(losses[1], losses[0])
    for loss in losses:
        loss.backward()
    for (name, p), q in zip(plain.named_parameters(), checkpointed.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_gradients_reach_every_parameter():
    m = ACmix(8, 16, head=4)
    m(torch.randn(2, 8, 9, 9)).square().sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_shift_kernel_init_survives_backbone_init_weights():
    model = ACmixResNet(26)
    model.init_weights()  # Kaiming on every Conv2d first, then ACmix restores its kernels
    dep = model.layer2[0].conv2.dep_conv.weight
    kc = 3
    expected = torch.zeros(kc * kc, kc, kc)
    for i in range(kc * kc):
        expected[i, i // kc, i % kc] = 1
    torch.testing.assert_close(dep, expected.expand_as(dep))
    assert 'layer2.0.conv2.dep_conv.bias' not in model.state_dict()
    assert model.layer2[0].conv2.rate1.item() == 0.5


def test_return_attention():
    m = ACmix(8, 8, kernel_att=3, head=2, return_attention=True)
    m(torch.randn(1, 8, 5, 6))
    att = m.last_attention
    assert att.shape == (1, 2, 9, 5, 6)
    torch.testing.assert_close(att.sum(2), torch.ones(1, 2, 5, 6))


@pytest.mark.parametrize('kwargs,match', [
    (dict(head=3), r'out_channels \(16\) must be divisible by head \(3\)'),
    (dict(kernel_att=6), 'kernel_att must be odd, got 6'),
    (dict(kernel_conv=4), 'kernel_conv must be odd, got 4'),
    (dict(stride=0), 'stride must be an integer >= 1, got 0'),
    (dict(dilation=0), 'dilation must be an integer >= 1, got 0'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ACmix(8, 16, **kwargs)


@pytest.mark.parametrize('depth,expected', [(26, 10.6), (38, 14.6), (50, 18.6)])
def test_param_counts_match_readme(depth, expected):
    n = sum(p.numel() for p in ACmixResNet(depth).parameters()) + 2048 * 1000 + 1000
    assert abs(n / 1e6 - expected) / expected < 0.02, n


def test_official_layout_and_d8():
    model = ACmixResNet(26, deep_stem=True, avg_down=True, strides=(1, 2, 1, 1),
                        dilations=(1, 1, 2, 4), contract_dilation=True)
    model.train()
    outs = model(torch.randn(2, 3, 35, 45))
    assert [o.shape[-2:] for o in outs] == [(9, 12), (5, 6), (5, 6), (5, 6)]
    sum(o.mean() for o in outs).backward()
    assert all(p.grad is not None for p in model.parameters())
    plain = ACmixResNet(50).state_dict()
    assert 'conv1.weight' in plain and 'bn1.weight' in plain
    assert 'layer2.0.conv2.dep_conv.weight' in plain and 'layer2.0.bn2.weight' in plain
    assert 'layer2.0.downsample.0.weight' in plain


def test_in_mask_rcnn_and_segmentor():
    from mmdet.testing import demo_mm_inputs
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from conftest import ROOT

    from mmsplitattn.engine import build_model
    cfg = Config.fromfile(f'{ROOT}/configs/demo/maskrcnn_acmix_demo.py')
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = build_model(cfg)
        packed = demo_mm_inputs(2, [[3, 64, 64], [3, 64, 48]], with_mask=True, num_classes=3)
        data = model.data_preprocessor(packed, True)
        losses = model(**data, mode='loss')
        assert losses['loss_mask'].item() > 0
        model.eval()
        with torch.no_grad():
            preds = model(**model.data_preprocessor(packed, False), mode='predict')
        assert len(preds) == 2 and 'masks' in preds[0].pred_instances

    cfg = Config.fromfile(f'{ROOT}/configs/demo/fcn_resnest_demo.py')
    cfg.model.backbone = dict(type='mmsplitattn.ACmixResNet', depth=26, deep_stem=True,
                              strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
                              contract_dilation=True, norm_cfg=dict(type='BN'))
    with DefaultScope.overwrite_default_scope('mmseg'):
        from mmseg.structures import SegDataSample
        from mmengine.structures import PixelData
        seg = build_model(cfg)
        samples = []
        for _ in range(2):
            s = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                            pad_shape=(64, 64)))
            s.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, 64, 64)))
            samples.append(s)
        inputs = torch.randn(2, 3, 64, 64)
        losses = seg(inputs, samples, mode='loss')
        assert losses['decode.loss_ce'].item() > 0
        seg.eval()
        with torch.no_grad():
            preds = seg(inputs, samples, mode='predict')
        assert preds[0].pred_sem_seg.data.shape == (1, 64, 64)
