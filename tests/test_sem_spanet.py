"""SEM and SPABlock: official-semantics references, plugins, backbones, errors."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmsplitattn.models import SEM, SEMResNet, SPABlock, SPANetResNet
from mmsplitattn.models.layers.sem import eca_kernel_size


def official_sem_state_dict(C, seed=0):
    """A state dict with the official names and shapes, random values."""
    g = torch.Generator().manual_seed(seed)
    hidden = round(C / 16) or 1
    t = int(abs((math.log(C, 2) + 1) / 2))
    k = t if t % 2 else t + 1
    r = lambda *s: torch.randn(*s, generator=g) * 0.5  # noqa: E731
    return {'switch_fc.weight': r(3, C), 'switch_fc.bias': r(3), 'fc1.weight': r(hidden, C),
            'fc1.bias': r(hidden), 'fc2.weight': r(C, hidden), 'fc2.bias': r(C),
            'conv.weight': r(1, 1, k), 'w1': r(1, C, 1, 1), 'b1': r(1, C, 1, 1)}


def reference_sem(sd, x):
    """The official Bottleneck's attention, transcribed on the official names."""
    out = F.adaptive_avg_pool2d(x, 1)
    b = x.size(0)
    weight = torch.sigmoid(F.linear(out.view(b, -1), sd['switch_fc.weight'], sd['switch_fc.bias']))
    out1 = F.linear(F.relu(F.linear(out.view(b, -1), sd['fc1.weight'], sd['fc1.bias'])),
                    sd['fc2.weight'], sd['fc2.bias']).view(b, -1, 1, 1) * weight[:, 0].view(b, 1, 1, 1)
    k = sd['conv.weight'].shape[-1]
    out2 = F.conv1d(out.squeeze(-1).transpose(-1, -2), sd['conv.weight'], padding=k // 2)
    out2 = out2.view(b, -1, 1, 1) * weight[:, 1].view(b, 1, 1, 1)
    out3 = (out * sd['w1'] + sd['b1']) * weight[:, 2].view(b, 1, 1, 1)
    return torch.sigmoid(out1) * torch.sigmoid(out2) * torch.sigmoid(out3) * x


@pytest.mark.parametrize('C', [16, 64, 256, 1000, 2048])
def test_sem_matches_official_semantics(C):
    sd = official_sem_state_dict(C)
    m = SEM(C)
    m.load_state_dict(sd, strict=True)
    x = torch.randn(2, C, 5, 7)
    torch.testing.assert_close(m(x), reference_sem(sd, x), rtol=1e-5, atol=1e-5)


def test_sem_defaults():
    m = SEM(8)
    assert m.fc1.out_features == 1  # round(8 / 16) = 0 -> never 0
    assert m.fc1.out_features == 1 and SEM(256).fc1.out_features == 16
    assert eca_kernel_size(256) == 5 and eca_kernel_size(64) == 3
    assert torch.all(m.w1 == 0) and torch.all(m.b1 == -1)


def test_sem_return_attention_and_grads():
    m = SEM(32, return_attention=True)
    x = torch.randn(2, 32, 3, 3, requires_grad=True)
    y = m(x)
    assert m.last_decision.shape == (2, 3) and m.last_attention.shape == (2, 32)
    torch.testing.assert_close(y, x * m.last_attention[..., None, None])
    y.square().sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def official_spanet_state_dict(C, Ci, seed=0, sub_sample=False):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.3  # noqa: E731
    gk = 'g.0' if sub_sample else 'g'
    pk = 'phi.0' if sub_sample else 'phi'
    return {f'{gk}.weight': r(Ci, C, 1, 1), f'{gk}.bias': r(Ci),
            'W.0.weight': r(C, Ci, 1, 1), 'W.0.bias': r(C),
            'W.1.weight': r(C) + 1, 'W.1.bias': r(C), 'W.1.running_mean': r(C),
            'W.1.running_var': r(C).abs() + 0.5, 'W.1.num_batches_tracked': torch.tensor(0),
            'theta.weight': r(Ci, C, 1, 1), 'theta.bias': r(Ci),
            f'{pk}.weight': r(Ci, C, 1, 1), f'{pk}.bias': r(Ci)}


def reference_spanet(sd, x, k, sub_sample=False):
    """The official SPANet forward (eval BN), transcribed on the official names."""
    b, c, h, w = x.shape
    gk = 'g.0' if sub_sample else 'g'
    g_x = F.conv2d(x, sd[f'{gk}.weight'], sd[f'{gk}.bias'])
    if sub_sample:
        g_x = F.max_pool2d(g_x, (2, 2))
    Ci = g_x.size(1)
    theta = F.conv2d(x, sd['theta.weight'], sd['theta.bias']).view(b, Ci, -1).permute(0, 2, 1)
    _, idx = theta.pow(2).sum(2).topk(k=k, dim=-1, largest=True, sorted=True)
    tk = theta.gather(1, idx.unsqueeze(2).expand(b, k, Ci))
    att = F.softmax(torch.matmul(tk.permute(0, 2, 1), tk), dim=-1)
    y = torch.matmul(att, g_x.view(b, Ci, -1)).view(b, Ci, *g_x.shape[2:])
    y = F.conv2d(y, sd['W.0.weight'], sd['W.0.bias'])
    y = F.batch_norm(y, sd['W.1.running_mean'], sd['W.1.running_var'], sd['W.1.weight'],
                     sd['W.1.bias'], False)
    if sub_sample:
        y = F.interpolate(y, scale_factor=2, mode='bilinear', align_corners=True)
    return x + y


@pytest.mark.parametrize('sub_sample', [False, True])
@pytest.mark.parametrize('k,adaptive', [(8, False), (3, False), (8, True)])
def test_spablock_matches_official_semantics(sub_sample, k, adaptive):
    C, Ci = 32, 16
    sd = official_spanet_state_dict(C, Ci, sub_sample=sub_sample)
    m = SPABlock(C, k=k, adaptive=adaptive, sub_sample=sub_sample).eval()
    result = m.load_state_dict(dict(sd), strict=True)  # phi is dropped, g.0 renamed
    assert not result.missing_keys and not result.unexpected_keys
    assert not hasattr(m, 'phi')
    x = torch.randn(2, C, 12, 16)
    k_used = max(1, 12 * 16 // 16) if adaptive else k
    torch.testing.assert_close(m(x), reference_spanet(sd, x, k_used, sub_sample),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('size', [(1, 1), (2, 3), (5, 7), (9, 9)])
@pytest.mark.parametrize('sub_sample', [False, True])
def test_spablock_robust_where_official_breaks(size, sub_sample):
    m = SPABlock(8, k=8, sub_sample=sub_sample, return_attention=True)  # k may exceed H*W
    x = torch.randn(2, 8, *size, requires_grad=True)
    y = m(x)
    assert y.shape == x.shape
    assert m.last_indices.shape == (2, min(8, size[0] * size[1]))
    assert m.last_affinity.shape == (2, 4, 4)
    y.square().sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize('cls,kwargs,match', [
    (SEM, dict(in_channels=0), 'in_channels must be an integer >= 1, got 0'),
    (SEM, dict(in_channels=16, kernel_size=4), 'kernel_size must be odd, got 4'),
    (SPABlock, dict(in_channels=0), 'in_channels must be an integer >= 1, got 0'),
    (SPABlock, dict(in_channels=8, k=0), 'k must be an integer >= 1, got 0'),
    (SPABlock, dict(in_channels=8, inter_channels=-2), 'inter_channels must be an integer >= 1, got -2'),
    (SPANetResNet, dict(depth=50, position='after_conv4'),
     r"position must be one of \['after_conv1', 'after_conv2', 'after_conv3', 'after_stage'\], "
     "got 'after_conv4'"),
    (SPANetResNet, dict(depth=50, stages=(True, False)), 'stages must have num_stages=4 flags'),
    (SEMResNet, dict(depth=34), r'depth must be one of \[14, 26, 50, 101, 152\], got 34'),
])
def test_bad_arguments(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize('plugin', ['mmsplitattn.SEM', 'mmsplitattn.SPABlock'])
def test_plugins_in_mmdet_mmseg_and_our_resnest(plugin):
    from mmdet.models.backbones import ResNet as MMDetResNet
    from mmseg.models.backbones import ResNetV1c
    from mmsplitattn.models import ResNeSt
    plugins = [dict(cfg=dict(type=plugin), position='after_conv3')]
    name = 'sem' if plugin.endswith('SEM') else 'spa_block'
    for model in (MMDetResNet(50, plugins=plugins), ResNetV1c(depth=50, plugins=plugins),
                  ResNeSt(14, plugins=plugins)):
        model.eval()
        assert hasattr(model.layer1[0], name)
        outs = model(torch.randn(1, 3, 64, 64))
        assert outs[-1].shape == (1, 2048, 2, 2)


def test_sem_resnet_layout_loads_torchvision_weights():
    import torchvision
    tv = torchvision.models.resnet50().state_dict()
    model = SEMResNet(50)
    result = model.load_state_dict({k: v for k, v in tv.items() if not k.startswith('fc.')},
                                   strict=False)
    assert not result.unexpected_keys
    assert result.missing_keys and all('.sem.' in k for k in result.missing_keys)
    assert len([m for m in model.modules() if isinstance(m, SEM)]) == 16


@pytest.mark.parametrize('cls', [SEMResNet, SPANetResNet])
def test_attention_backbones_d8_shapes_and_all_params_used(cls):
    model = cls(50, deep_stem=True, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
                contract_dilation=True, norm_eval=False)
    model.init_weights()
    model.train()
    outs = model(torch.randn(2, 3, 33, 47))
    assert [o.shape[-2:] for o in outs] == [(9, 12), (5, 6), (5, 6), (5, 6)]
    assert [o.shape[1] for o in outs] == [256, 512, 1024, 2048]
    sum(o.mean() for o in outs).backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, unused  # DDP needs no find_unused_parameters


def test_spanet_default_placement_and_per_block_option():
    model = SPANetResNet(50)
    kinds = [[type(b).__name__ for b in getattr(model, f'layer{i}')] for i in range(1, 5)]
    assert kinds[0] == ['Bottleneck'] * 3 + ['SPABlock']  # after the stage's last block
    assert kinds[1] == ['Bottleneck'] * 4 + ['SPABlock']
    assert 'SPABlock' not in kinds[2] + kinds[3]
    assert model.layer2[4].in_channels == 512
    per_block = SPANetResNet(50, position='after_conv3', stages=(False, True, False, False))
    assert [hasattr(b, 'spa_block') for b in per_block.layer2] == [True] * 4
    assert not any(hasattr(b, 'spa_block') for b in per_block.layer1)
    out = model.eval()(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in out] == [256, 512, 1024, 2048]
    # ImageNet ResNet keys are untouched: only layer1.3.* / layer2.4.* are new
    import torchvision
    tv = {k: v for k, v in torchvision.models.resnet50().state_dict().items()
          if not k.startswith('fc.')}
    missing = model.load_state_dict(tv, strict=False).missing_keys
    assert missing and all(k.startswith(('layer1.3.', 'layer2.4.')) for k in missing)
