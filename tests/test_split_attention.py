"""SplitAttentionConv2d against an independent reference written from SPEC §1."""
import pytest
import torch
import torch.nn.functional as F

from mmsplitattn.models import SplitAttentionConv2d


def reference_split_attention(m, x):
    """Straight transcription of the paper's formulas with m's parameters."""
    R, C, K = m.radix, m.channels, m.groups
    u = F.conv2d(x, m.conv.weight, None, m.conv.stride, m.conv.padding,
                 m.conv.dilation, m.conv.groups)
    u = F.relu(m.norm0(u))
    b, _, h, w = u.shape
    splits = u.view(b, R, C, h, w)
    gap = splits.sum(1).mean((2, 3))[..., None, None]
    z = F.relu(m.norm1(F.conv2d(gap, m.fc1.weight, m.fc1.bias, groups=K)))
    a = F.conv2d(z, m.fc2.weight, m.fc2.bias, groups=K).view(b, K, R, C // K)
    if R > 1:
        a = torch.softmax(a, dim=2)
    else:
        a = torch.sigmoid(a)
    a = a.permute(0, 2, 1, 3).reshape(b, R, C, 1, 1)
    return (a * splits).sum(1)


@pytest.mark.parametrize('groups,radix', [(1, 1), (1, 2), (2, 2), (4, 4), (2, 1), (1, 4)])
@pytest.mark.parametrize('stride,dilation', [(1, 1), (2, 1), (1, 2)])
def test_matches_reference(groups, radix, stride, dilation):
    torch.manual_seed(0)
    m = SplitAttentionConv2d(16, 32, 3, stride=stride, dilation=dilation,
                             groups=groups, radix=radix)
    for bn in (m.norm0, m.norm1):  # non-trivial statistics
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.data.uniform_(0.5, 1.5)
    m.eval()
    x = torch.randn(2, 16, 9, 11)
    out = m(x)
    h = (9 - 1) // stride + 1
    w = (11 - 1) // stride + 1
    assert out.shape == (2, 32, h, w)
    torch.testing.assert_close(out, reference_split_attention(m, x), rtol=1e-5, atol=1e-5)


def test_gradients_reach_every_parameter():
    m = SplitAttentionConv2d(8, 16, 3, groups=2, radix=2)
    x = torch.randn(2, 8, 7, 7, requires_grad=True)
    m(x).sum().backward()
    assert x.grad is not None
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_return_attention_keeps_weights():
    m = SplitAttentionConv2d(8, 16, groups=2, radix=4, return_attention=True).eval()
    m(torch.randn(1, 8, 5, 5))
    att = m.last_attention
    assert att.shape == (1, 4, 16)
    torch.testing.assert_close(att.sum(1), torch.ones(1, 16))


@pytest.mark.parametrize('kwargs,match', [
    (dict(radix=0), 'radix must be an integer >= 1, got 0'),
    (dict(groups=2, radix=3), r'in_channels \(8\) must be divisible by groups \* radix \(6\)'),
    (dict(groups=8, radix=1, channels=12), r'channels \(12\) must be divisible by groups \(8\)'),
    (dict(groups=0), 'groups must be an integer >= 1'),
    (dict(reduction_factor=1.5), 'reduction_factor must be an integer'),
])
def test_bad_arguments(kwargs, match):
    kwargs.setdefault('channels', 16)
    with pytest.raises(ValueError, match=match):
        SplitAttentionConv2d(8, **kwargs)


def test_gradcheck_in_float64():
    m = SplitAttentionConv2d(6, 4, groups=1, radix=3).double().eval()
    x = torch.randn(2, 6, 3, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(m, (x, ))


def test_batch_of_one_in_training_names_the_attention_norm():
    m = SplitAttentionConv2d(8, 16).train()
    with pytest.raises(ValueError, match=r"BatchNorm2d 'bn1' of SplitAttentionConv2d .* "
                                         r'2\+ images per GPU, SyncBN .*GroupNorm.*norm_eval'):
        m(torch.randn(1, 8, 5, 5))
    m.eval()(torch.randn(1, 8, 5, 5))  # inference with one image is fine
    gn = SplitAttentionConv2d(8, 16, norm_cfg=dict(type='GN', num_groups=4)).train()
    assert gn(torch.randn(1, 8, 5, 5)).shape == (1, 16, 5, 5)


@pytest.mark.slow
def test_half_precision_on_a_large_map_stays_finite():
    """A stage-1 sized map (256x256, 64 channels) of large activations: the
    pooled sum exceeds fp16's range unless accumulated in float32."""
    torch.manual_seed(0)
    m = SplitAttentionConv2d(64, 64).eval()
    x = torch.rand(1, 64, 256, 256) * 4
    ref = m(x)
    out = m.half()(x.half())
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize('stride,fallback', [(1, False), (2, False), (2, True)])
def test_dcn_builds_a_deformable_grouped_convolution(stride, fallback):
    from mmcv.ops import DeformConv2dPack
    dcn = dict(type='DCN', deform_groups=1, fallback_on_stride=fallback)
    m = SplitAttentionConv2d(16, 32, stride=stride, groups=2, radix=2, dcn=dcn)
    deformable = not (fallback and stride > 1)
    assert isinstance(m.conv, DeformConv2dPack) == deformable
    assert m.conv.groups == 4
    assert 'fallback_on_stride' in dcn  # the caller's dict is left alone
    with pytest.raises(ValueError, match='conv_cfg must be None when dcn is given'):
        SplitAttentionConv2d(16, 32, conv_cfg=dict(type='Conv2d'), dcn=dict(type='DCN'))


@pytest.mark.slow
def test_compiles_without_graph_breaks_and_matches_eager():
    torch._dynamo.reset()
    torch.manual_seed(0)
    m = SplitAttentionConv2d(8, 16, groups=2, radix=2).eval()
    x = torch.randn(2, 8, 9, 9)
    compiled = torch.compile(m, fullgraph=True)  # fullgraph: a graph break raises
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), m(x), rtol=1e-4, atol=1e-5)
    m.train()
    xg = x.clone().requires_grad_()
    compiled(xg).sum().backward()
    xe = x.clone().requires_grad_()
    m(xe).sum().backward()
    # In training mode BN makes the gradient of a sum nearly cancel: compare at
    # the gradient's own scale (inductor reorders the float reductions).
    torch.testing.assert_close(xg.grad, xe.grad, rtol=1e-4, atol=1e-4 * xe.grad.abs().max())
