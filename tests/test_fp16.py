"""Every attention block and backbone under CPU float16 and bfloat16 autocast,
forward and backward, on large activations (inputs scaled x100, where an fp16
``tk^T tk`` overflowed): outputs and gradients finite, and the dtypes mmdet's
own blocks give under the same autocast."""
import pytest
import torch
from mmdet.models.backbones import ResNet as MMDetResNet
from mmdet.models.backbones import ResNeSt as MMDetResNeSt
from mmdet.models.backbones.resnest import SplitAttentionConv2d as MMDetSplitAttentionConv2d
from torch.nn.modules.batchnorm import _BatchNorm

from mmsplitattn.models import (SEM, ACmix, ACmixResNet, ResNeSt, SEMResNet, SPABlock,
                                SPANetResNet, SplitAttentionConv2d)

DTYPES = [torch.float16, torch.bfloat16]
SCALE = 100.0

MODULES = {
    'split_attention': lambda: SplitAttentionConv2d(64, 64, padding=1, radix=2),
    'sem': lambda: SEM(64),
    'spa': lambda: SPABlock(64),
    'acmix': lambda: ACmix(64, 64, kernel_att=3),
}
# The output dtype each block is held to: the input's for the residual and
# gating blocks (x + f(x), x * att), mmdet's module's for Split-Attention. ACmix
# has no mmdet counterpart; its bottleneck is held to mmdet's (test_backbone_...).
EXPECTED_DTYPE = {
    'split_attention': lambda x, dtype: output_dtypes(
        MMDetSplitAttentionConv2d(64, 64, 3, padding=1, radix=2), x, dtype)[0],
    'sem': lambda x, dtype: x.dtype,
    'spa': lambda x, dtype: x.dtype,
}
BACKBONES = {
    'resnest': lambda: ResNeSt(14),
    'sem': lambda: SEMResNet(14),
    'spanet': lambda: SPANetResNet(14),
    'acmix': lambda: ACmixResNet(26, attention_cfg=dict(kernel_att=3)),
}
MMDET_BACKBONES = {'resnest': lambda: MMDetResNeSt(depth=50)}  # the others: mmdet's ResNet-50


def large_input(*shape):
    torch.manual_seed(0)
    return (torch.randn(*shape) * SCALE).requires_grad_()


def autocast(dtype):
    return torch.autocast('cpu', dtype=dtype)


def output_dtypes(model, x, dtype):
    with autocast(dtype), torch.no_grad():
        out = model(x)
    return [o.dtype for o in (out if isinstance(out, (tuple, list)) else [out])]


def assert_finite_grads(model, x):
    assert x.grad is not None and torch.isfinite(x.grad).all(), 'input gradient'
    bad = [n for n, p in model.named_parameters()
           if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    assert not bad, f'non-finite or missing gradients: {bad}'


def test_fp16_affinity_logits_would_overflow_here():
    """The large activations of these tests do overflow an fp16 ``tk^T tk``."""
    torch.manual_seed(0)
    spa = SPABlock(64).eval()
    x = torch.randn(2, 64, 16, 16) * SCALE
    with torch.no_grad():
        theta = spa.theta(x).flatten(2).transpose(1, 2)
        tk = theta.gather(1, theta.pow(2).sum(2).topk(spa.k, dim=1).indices.unsqueeze(2)
                          .expand(-1, -1, spa.inter_channels))
        logits = tk.transpose(1, 2) @ tk
    assert logits.abs().max() > torch.finfo(torch.float16).max


@pytest.mark.parametrize('dtype', DTYPES, ids=str)
@pytest.mark.parametrize('train', [True, False], ids=['train', 'eval'])
@pytest.mark.parametrize('name', MODULES)
def test_attention_block_under_autocast(name, train, dtype):
    torch.manual_seed(0)
    block = MODULES[name]().train(train)
    x = large_input(2, 64, 16, 16)
    x_in = x.to(dtype)  # what the block gets inside an autocast network: a conv's output
    with autocast(dtype):
        out = block(x_in)
    assert torch.isfinite(out).all(), f'{name}: non-finite output under {dtype} autocast'
    if name in EXPECTED_DTYPE:
        expected = EXPECTED_DTYPE[name](x_in, dtype)
        assert out.dtype == expected, f'{name}: {out.dtype}, expected {expected}'
    out.float().mean().backward()
    assert_finite_grads(block, x)


def block_output_dtypes(model, x, dtype):
    """{name: dtype} of every residual block's output (and each stage's)."""
    dtypes = {}
    hooks = [m.register_forward_hook(
        lambda mod, inp, out, n=n: dtypes.__setitem__(n, out.dtype))
        for n, m in model.named_modules() if n.count('.') == 1 and n.startswith('layer')]
    try:
        output_dtypes(model, x, dtype)
    finally:
        for h in hooks:
            h.remove()
    return dtypes


def eval_large(model):
    """Eval mode with identity norm statistics: the x100 scale reaches every block."""
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.reset_running_stats()
    return model.eval()


@pytest.mark.slow
@pytest.mark.parametrize('dtype', DTYPES, ids=str)
@pytest.mark.parametrize('name', BACKBONES)
def test_backbone_under_autocast(name, dtype):
    torch.manual_seed(0)
    model = BACKBONES[name]()
    reference = MMDET_BACKBONES.get(name, lambda: MMDetResNet(50))()
    x = large_input(2, 3, 64, 64)

    # training: batch statistics, forward and backward
    model.train()
    with autocast(dtype):
        outs = model(x)
    assert all(torch.isfinite(o).all() for o in outs), f'{name}: non-finite train output'
    sum(o.float().mean() for o in outs).backward()
    assert_finite_grads(model, x)

    # inference on large activations, and the dtypes
    eval_large(model)
    with autocast(dtype), torch.no_grad():
        outs = model(x)
    assert all(torch.isfinite(o).all() for o in outs), f'{name}: non-finite eval output'
    reference.eval()
    expected = output_dtypes(reference, x, dtype)
    assert [o.dtype for o in outs] == expected, name
    expected_block = set(block_output_dtypes(reference, x, dtype).values())
    assert len(expected_block) == 1, expected_block
    blocks = block_output_dtypes(model, x, dtype)
    assert blocks and set(blocks.values()) == expected_block, (name, blocks)
