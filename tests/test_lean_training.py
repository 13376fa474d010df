"""The lean-training and fast-inference helpers: recomputed BN+ReLU, the lean
average pool, BN folding, 1x1 convolutions as matmuls."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import randomize_norms
from mmsplitattn.models.layers.conv_bn import conv2d, conv_bn
from mmsplitattn.models.layers.lean_avg_pool import LeanAvgPool2d
from mmsplitattn.models.layers.recompute import RecomputedBNReLU


class _OpNames(TorchDispatchMode):
    """The set of aten operations run inside the context."""

    def __enter__(self):
        self.names = set()
        super().__enter__()
        return self.names

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func.__name__.split('.')[0])
        return func(*args, **(kwargs or {}))


def _bn(train=True, momentum=0.1, affine=True):
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(6, momentum=momentum, affine=affine)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    if affine:
        bn.weight.data.uniform_(-1.5, 1.5)  # negative scales too
        bn.bias.data.uniform_(-0.5, 0.5)
    return bn.train(train)


def _step(norm, x, w, recompute):
    """relu(norm(x)) -> conv: output, saved conv input pointer, gradients."""
    x = x.clone().requires_grad_()
    w = w.clone().requires_grad_()
    with RecomputedBNReLU() if recompute else _Plain() as bn_relu:
        act = bn_relu(nn.Identity(), norm, x)
        act_ptr = act.data_ptr()
        out = F.conv2d(act, w, padding=1)
    saved_ptr = out.grad_fn._saved_input.data_ptr()
    out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
    grads = [x.grad, w.grad] + [p.grad for p in norm.parameters()]
    return out, saved_ptr == act_ptr, grads


class _Plain:
    def __enter__(self):
        return lambda conv, norm, x: F.relu(norm(conv(x)))

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize('train,momentum,affine', [(True, 0.1, True), (True, None, True),
                                                   (False, 0.1, True), (True, 0.1, False)])
def test_recomputed_bn_relu_matches_the_plain_chain(train, momentum, affine):
    x = torch.randn(4, 6, 5, 7)
    w = torch.randn(3, 6, 3, 3)
    bn_plain, bn_ours = _bn(train, momentum, affine), _bn(train, momentum, affine)
    out, kept, grads = _step(bn_plain, x, w, recompute=False)
    out_ours, kept_ours, grads_ours = _step(bn_ours, x, w, recompute=True)
    assert kept and not kept_ours  # the conv saved a recomputed copy
    torch.testing.assert_close(out_ours, out)
    for a, b in zip(grads_ours, grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for a, b in zip(bn_ours.state_dict().values(), bn_plain.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_recompute_is_shared_by_every_consumer():
    bn = _bn()
    x = torch.randn(2, 6, 4, 4, requires_grad=True)
    with RecomputedBNReLU() as bn_relu:
        act = bn_relu(nn.Identity(), bn, x)
        out = (act * 2).sum() + (act * act).sum()  # relu, two muls save act
    out.backward()
    ref = x.detach().clone().requires_grad_()
    bn_ref = _bn()
    a = F.relu(bn_ref(ref))
    ((a * 2).sum() + (a * a).sum()).backward()
    torch.testing.assert_close(x.grad, ref.grad)


@pytest.mark.parametrize('case', ['group_norm', 'other_hooks', 'no_grad'])
def test_ordinary_path_where_recompute_does_not_apply(case):
    norm = nn.GroupNorm(2, 6) if case == 'group_norm' else _bn()
    x = torch.randn(2, 6, 5, 5, requires_grad=case != 'no_grad')
    w = torch.randn(3, 6, 3, 3)
    if case == 'no_grad':
        with torch.no_grad(), RecomputedBNReLU() as bn_relu:
            torch.testing.assert_close(bn_relu(nn.Identity(), norm, x), F.relu(norm(x)))
        return
    outer = torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t)
    with (outer if case == 'other_hooks' else _Plain()), RecomputedBNReLU() as bn_relu:
        act = bn_relu(nn.Identity(), norm, x)
        out = F.conv2d(act, w)
    assert out.grad_fn._saved_input.data_ptr() == act.data_ptr()


@pytest.mark.parametrize('kwargs', [dict(kernel_size=3, stride=2, padding=1),
                                    dict(kernel_size=2, stride=2, ceil_mode=True,
                                         count_include_pad=False),
                                    dict(kernel_size=3, stride=1, padding=1, divisor_override=4)])
@pytest.mark.parametrize('channels_last', [False, True])
def test_lean_avg_pool_matches_nn_avg_pool(kwargs, channels_last):
    x = torch.randn(2, 4, 7, 9)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = LeanAvgPool2d(**kwargs)(x1)
    ref = nn.AvgPool2d(**kwargs)(x2)
    assert not hasattr(out.grad_fn, '_saved_self')  # the input is not kept
    g = torch.randn_like(ref)
    out.backward(g)
    ref.backward(g)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(x1.grad, x2.grad)
    assert x1.grad.is_contiguous(memory_format=torch.channels_last) == channels_last


@pytest.mark.parametrize('channels_last,sync', [(False, False), (True, False), (False, True)])
def test_conv_bn_folds_in_inference_and_tracks_weight_changes(channels_last, sync):
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 6, 3, padding=1, groups=2).eval()
    norm = _bn(train=False)
    if sync:  # SyncBN in eval: running statistics, no communication
        norm = nn.SyncBatchNorm.convert_sync_batchnorm(norm).eval()
    x = torch.randn(2, 6, 8, 8)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        out = conv_bn(conv, norm, x)
        torch.testing.assert_close(out, norm(conv(x)), rtol=1e-5, atol=1e-5)
        assert out.is_contiguous(memory_format=torch.channels_last if channels_last
                                 else torch.contiguous_format)
        assert conv._folded_bn is not None
        conv.weight.mul_(2)                       # an in-place update
        norm.running_var.fill_(4.0)
        torch.testing.assert_close(conv_bn(conv, norm, x), norm(conv(x)), rtol=1e-5, atol=1e-5)
        norm.load_state_dict(_bn(train=False).state_dict())
        torch.testing.assert_close(conv_bn(conv, norm, x), norm(conv(x)), rtol=1e-5, atol=1e-5)
        assert conv._folded_bn is not None


@pytest.mark.parametrize('size,gemm', [(7, True), (14, True), (15, False)])
def test_conv_bn_channels_last_pointwise_small_map_is_one_gemm(size, gemm):
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 10, 1, bias=True).eval()
    norm = nn.BatchNorm2d(10).eval()
    randomize_norms(norm)
    x = torch.randn(2, 6, size, size).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = norm(conv(x))
        with _OpNames() as ops:
            out = conv_bn(conv, norm, x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert ('addmm' in ops and 'convolution' not in ops) == gemm, ops


@pytest.mark.parametrize('case', ['grad', 'train_bn', 'group_norm'])
def test_conv_bn_does_not_fold_outside_inference(case):
    conv = nn.Conv2d(6, 6, 1)
    norm = nn.GroupNorm(2, 6) if case == 'group_norm' else _bn(train=case == 'train_bn')
    x = torch.randn(2, 6, 4, 4)
    with torch.set_grad_enabled(case == 'grad'):
        conv_bn(conv, norm, x)
    assert getattr(conv, '_folded_bn', None) is None


def _graph_names(t):
    names, todo = set(), [t.grad_fn]
    while todo:
        fn = todo.pop()
        if fn is not None and fn.name() not in names:
            names.add(fn.name())
            todo.extend(f for f, _ in fn.next_functions)
    return names


@pytest.mark.parametrize('bias', [False, True])
def test_small_map_1x1_conv_as_matmul_matches_conv(bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 24, 1, bias=bias)
    x = torch.randn(3, 16, 7, 9)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = conv2d(conv, x1)
    assert '_Conv1x1MatMulBackward' in _graph_names(out)
    g = torch.randn_like(out)
    out.backward(g)
    grads = [x1.grad] + [p.grad.clone() for p in conv.parameters()]
    conv.zero_grad()
    ref = conv(x2)
    ref.backward(g)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads, [x2.grad] + [p.grad for p in conv.parameters()]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('case', ['large_map', 'stride', 'kernel3', 'no_grad', 'autocast'])
def test_conv2d_keeps_the_convolution_elsewhere(case):
    conv = nn.Conv2d(8, 8, 3 if case == 'kernel3' else 1, stride=2 if case == 'stride' else 1)
    size = 20 if case == 'large_map' else 7  # 20x20 > 14x14
    x = torch.randn(2, 8, size, size, requires_grad=True)
    with torch.set_grad_enabled(case != 'no_grad'), \
            torch.autocast('cpu', torch.bfloat16, enabled=case == 'autocast'):
        out = conv2d(conv, x)
    if case == 'autocast':
        out.float().sum().backward()  # bfloat16 through the convolution's backward
    assert '_Conv1x1MatMulBackward' not in _graph_names(out)


@pytest.mark.parametrize('name,depth', [('SEMResNet', 14), ('SPANetResNet', 14),
                                        ('ACmixResNet', 26)])
def test_fast_inference_of_every_backbone_matches_the_plain_path(name, depth):
    """No grad + eval: folded BNs and channels_last inside, same outputs."""
    import mmsplitattn.models
    torch.manual_seed(0)
    model = getattr(mmsplitattn.models, name)(depth).eval()
    randomize_norms(model)
    x = torch.randn(1, 3, 64, 48)
    plain = model(x)
    with torch.no_grad():
        fast = model(x)
    for a, b in zip(fast, plain):
        assert a.is_contiguous()
        torch.testing.assert_close(a, b.detach(), rtol=1e-4, atol=1e-5)
