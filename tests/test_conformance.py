"""Every backbone on every path users take with a model: ONNX (the legacy
exporter at opsets 11, 13 and 17 and the dynamo exporter, under no_grad and
with grad, checked with onnxruntime at two sizes), torch.jit.trace
(checked at another size) and save, torch.fx, half precision, autocast,
inference_mode, forward hooks, mmcv's fuse_conv_bn, weights edited through
``.data``, norm_cfg, num_stages and dcn."""
import io

import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from conftest import randomize_norms
from mmsplitattn.models import ACmixResNet, ResNeSt, SEMResNet, SPANetResNet

BACKBONES = {
    'resnest': lambda **kw: ResNeSt(14, **kw),
    'resnest-grouped': lambda **kw: ResNeSt(14, groups=2, base_width=32, radix=4, **kw),
    'sem': lambda **kw: SEMResNet(14, **kw),
    'spanet': lambda **kw: SPANetResNet(14, **kw),
    # a 3x3 attention window: the same graph as 7x7's, with 9 offsets instead of 49
    'acmix': lambda **kw: ACmixResNet(26, attention_cfg=dict(kernel_att=3), **kw),
}
NAMES = list(BACKBONES)


def build(name, **kwargs):
    """The backbone with non-trivial weights and BN statistics, in eval mode."""
    torch.manual_seed(0)
    model = BACKBONES[name](**kwargs)
    randomize_norms(model)
    for m in model.modules():  # zero_init_residual would hide the blocks
        if isinstance(m, _BatchNorm):
            m.weight.data.uniform_(0.5, 1.5)
    return model.eval()


def assert_close_rel(actual, expected, rel, what=''):
    """max |a - e| <= rel * max |e|, for each output."""
    for i, (a, e) in enumerate(zip(actual, expected)):
        a = torch.as_tensor(a, dtype=torch.float32)
        e = torch.as_tensor(e, dtype=torch.float32)
        assert a.shape == e.shape, (what, i, a.shape, e.shape)
        err = ((a - e).abs().max() / e.abs().max().clamp(min=1e-6)).item()
        assert err <= rel, f'{what} output {i}: relative error {err:.2e} > {rel:.0e}'


def _outputs(out):
    return out if isinstance(out, (tuple, list)) else [out]


def run_onnx(data, inputs):
    import onnxruntime as ort
    session = ort.InferenceSession(data, providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    return [session.run(None, {name: x.numpy()}) for x in inputs]


SIZES = [torch.randn(2, 3, 64, 64), torch.randn(1, 3, 96, 80)]


# (name, opset) for the TorchScript-based exporter's opsets users take: 11 is
# mmdeploy's (its deploy configs' onnx_config), 13 the first with Unflatten, 17
# torch's default. Opset 11 of the ~1 s models is in the quick loop; ACmix
# (3-7 s a case) and the other opsets (mmdeploy's matters most) are slow tests.
LEGACY_CASES = [
    pytest.param(name, opset, id=f'{name}-{opset}',
                 marks=[pytest.mark.slow] if name == 'acmix' or opset != 11 else [])
    for opset in (11, 13, 17) for name in NAMES]


@pytest.mark.parametrize('grad', [False, True], ids=['no_grad', 'grad'])
@pytest.mark.parametrize('name, opset', LEGACY_CASES)
def test_onnx_legacy_export_runs_in_onnxruntime_at_two_sizes(name, opset, grad):
    model = build(name)
    f = io.BytesIO()
    with torch.set_grad_enabled(grad):  # mmdeploy exports under no_grad
        torch.onnx.export(model, (SIZES[0], ), f, dynamo=False, opset_version=opset,
                          input_names=['input'],
                          dynamic_axes={'input': {0: 'batch', 2: 'height', 3: 'width'}})
    with torch.no_grad():
        expected = [model(x) for x in SIZES]
    for got, want, x in zip(run_onnx(f.getvalue(), SIZES), expected, SIZES):
        assert_close_rel(got, want, 1e-4, f'{name} opset {opset} at {tuple(x.shape)}')


def _dynamo_exportable(name):
    """One stage (the dynamo exporter's time grows with every block); for
    ACmix one module, whose graph is what ACmix-ResNet adds to a ResNet."""
    if name == 'acmix-module':
        from mmsplitattn.models import ACmix
        torch.manual_seed(0)
        return ACmix(3, 16, kernel_att=3, head=4, stride=2).eval()
    return build(name, num_stages=1)


@pytest.mark.slow  # 4-13 s a case
@pytest.mark.parametrize('grad', [False, True], ids=['no_grad', 'grad'])
@pytest.mark.parametrize('name', ['resnest', 'sem', 'spanet', 'acmix-module'])
def test_onnx_dynamo_export_runs_in_onnxruntime_at_two_sizes(name, grad, tmp_path):
    model = _dynamo_exportable(name)
    batch, height, width = torch.export.Dim('batch', max=64), torch.export.Dim.AUTO, \
        torch.export.Dim.AUTO
    with torch.set_grad_enabled(grad):
        program = torch.onnx.export(model, (SIZES[0], ), dynamo=True,
                                    dynamic_shapes=({0: batch, 2: height, 3: width}, ))
    path = tmp_path / f'{name}.onnx'
    program.save(str(path))
    with torch.no_grad():
        expected = [model(x) for x in SIZES]
    for got, want, x in zip(run_onnx(str(path), SIZES), expected, SIZES):
        assert_close_rel(got, _outputs(want), 1e-4, f'{name} at {tuple(x.shape)}')


@pytest.mark.parametrize('name', NAMES)
def test_jit_trace_checks_runs_at_another_size_and_saves(name):
    model = build(name)
    x, other, third = (torch.randn(1, 3, 64, 64), torch.randn(2, 3, 48, 56),
                       torch.randn(1, 3, 80, 72))
    with torch.no_grad():
        traced = torch.jit.trace(model, x, check_inputs=[(other, )], check_trace=True)
        assert_close_rel(traced(third), model(third), 1e-5, name)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    with torch.no_grad():
        assert_close_rel(loaded(other), model(other), 1e-5, name)


@pytest.mark.parametrize('name', NAMES)
def test_fx_symbolic_trace(name):
    model = build(name)
    graph_module = torch.fx.symbolic_trace(model)
    for x in SIZES:
        with torch.no_grad():
            assert_close_rel(graph_module(x), model(x), 1e-6, name)


@pytest.mark.parametrize('name', NAMES)
def test_half_precision_inference(name):
    model = build(name)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        out = model.half()(x.half())
    assert all(torch.isfinite(o).all() for o in out)
    assert_close_rel(out, expected, 2e-2, name)


@pytest.mark.parametrize('name', NAMES)
def test_half_convolutions_with_float32_norms(name):
    """What fp16 training recipes do: norms kept in float32."""
    model = build(name)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        model.half()
        for m in model.modules():
            if isinstance(m, (_BatchNorm, nn.GroupNorm)):
                m.float()
        out = model(x.half())
    assert_close_rel(out, expected, 2e-2, name)


@pytest.mark.parametrize('name', NAMES)
def test_cpu_autocast_forward_and_backward(name):
    model = build(name).train()
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        outs = model(x)
    sum(o.float().mean() for o in outs).backward()
    assert torch.isfinite(x.grad).all()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize('name', NAMES)
def test_inference_mode(name):
    x = torch.randn(1, 3, 64, 64)
    model = build(name)
    with torch.no_grad():
        expected = model(x)
    with torch.inference_mode():
        assert_close_rel(model(x), expected, 1e-6, name)
        built_inside = build(name)
        assert_close_rel(built_inside(x), expected, 1e-6, name)


@pytest.mark.parametrize('name', NAMES)
def test_forward_hooks_fire_on_every_convolution_and_norm(name):
    model = build(name)
    layers = {n: m for n, m in model.named_modules()
              if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear, _BatchNorm, nn.GroupNorm))}
    fired = set()
    for n, m in layers.items():
        m.register_forward_hook(lambda mod, inp, out, n=n: fired.add(n))
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64))
    assert fired == set(layers), sorted(set(layers) - fired)
    fired.clear()
    model.train()
    sum(o.mean() for o in model(torch.randn(2, 3, 64, 64))).backward()
    assert fired == set(layers), sorted(set(layers) - fired)


@pytest.mark.parametrize('name', NAMES)
def test_mmcv_fuse_conv_bn_keeps_the_outputs(name):
    from mmcv.cnn import fuse_conv_bn
    model = build(name)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        norms = sum(isinstance(m, _BatchNorm) for m in model.modules())
        fused = fuse_conv_bn(model)
        assert sum(isinstance(m, _BatchNorm) for m in fused.modules()) < norms
        assert_close_rel(fused(x), expected, 1e-4, name)


@pytest.mark.parametrize('name', NAMES)
def test_weights_edited_through_data_take_effect_at_the_next_forward(name):
    """EMA / mean-teacher hooks write parameters and buffers through .data."""
    model = build(name)
    reference = build(name)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        model(x)  # any state a forward could keep is there now
        for p, q in zip(model.state_dict().values(), reference.state_dict().values()):
            if p.is_floating_point():
                q.data.mul_(0.9).add_(0.01)
                p.data.copy_(q.data)
        assert_close_rel(model(x), reference(x), 1e-6, name)


@pytest.mark.parametrize('name', NAMES)
def test_norm_cfg_reaches_every_norm(name):
    gn = BACKBONES[name](norm_cfg=dict(type='GN', num_groups=1, requires_grad=True))
    assert not any(isinstance(m, _BatchNorm) for m in gn.modules())
    assert sum(isinstance(m, nn.GroupNorm) for m in gn.modules()) > 0
    out = gn.train()(torch.randn(1, 3, 64, 64))  # one image trains with GN
    assert len(out) == 4
    sync = BACKBONES[name](norm_cfg=dict(type='SyncBN', requires_grad=True))
    norms = [m for m in sync.modules() if isinstance(m, _BatchNorm)]
    assert norms and all(isinstance(m, nn.SyncBatchNorm) for m in norms)


@pytest.mark.parametrize('num_stages', [1, 2, 3, 4])
@pytest.mark.parametrize('name', ['resnest', 'sem', 'spanet', 'acmix'])
def test_every_number_of_stages(name, num_stages):
    model = BACKBONES[name](num_stages=num_stages).eval()
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [256 * 2**i for i in range(num_stages)]
    assert [o.shape[-1] for o in outs] == [16 // 2**i for i in range(num_stages)]


@pytest.mark.parametrize('name', ['resnest', 'sem', 'spanet', 'acmix'])
def test_training_with_one_image_per_batch(name):
    model = BACKBONES[name]().train()
    x = torch.randn(1, 3, 64, 64)
    if name.startswith('resnest'):  # the attention vector has one value per channel
        with pytest.raises(ValueError, match=r"'bn1' of SplitAttentionConv2d.*more than one "
                                             r'image per GPU'):
            model(x)
        model = BACKBONES[name](norm_eval=True).train()
    assert len(model(x)) == 4


def test_resnest_dcn_matches_mmdet():
    from mmcv.ops import DeformConv2dPack
    from mmdet.models.backbones import ResNeSt as MMDetResNeSt
    kwargs = dict(depth=50, dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
                  stage_with_dcn=(False, True, True, True), out_indices=(0, 1, 2, 3))
    torch.manual_seed(0)
    peer = MMDetResNeSt(**kwargs)
    peer.eval()  # mmdet's train() returns None
    randomize_norms(peer)
    ours = ResNeSt(**kwargs).eval()
    ours.load_state_dict(peer.state_dict(), strict=True)
    assert isinstance(ours.layer2[0].conv2.conv, DeformConv2dPack)
    assert not isinstance(ours.layer1[0].conv2.conv, DeformConv2dPack)
    for m in ours.modules():  # non-zero offsets, so deformation is exercised
        if isinstance(m, DeformConv2dPack):
            m.conv_offset.weight.data.normal_(0, 0.01)
    peer.load_state_dict(ours.state_dict())
    x = torch.randn(1, 3, 96, 96)  # mmcv's deformable conv wants maps >= its kernel
    with torch.no_grad():
        assert_close_rel(ours(x), peer(x), 1e-5, 'dcn')


def test_acmix_rejects_dcn_with_a_clear_error():
    with pytest.raises(ValueError, match='dcn must be None for ACmixResNet'):
        ACmixResNet(26, dcn=dict(type='DCN', deform_groups=1),
                    stage_with_dcn=(False, True, True, True))


def _peer_arguments():
    """{argument: default} over the arguments of mmdet's and mmseg's ResNet
    and ResNeSt (the same name with another default counts twice)."""
    import inspect

    from mmdet.models.backbones import ResNeSt as MMDetResNeSt
    from mmseg.models.backbones import ResNeSt as MMSegResNeSt
    cases = {}
    for peer in (MMDetResNeSt, MMSegResNeSt):
        for cls in peer.__mro__:
            if cls.__module__.startswith(('mmdet.', 'mmseg.')):
                for p in inspect.signature(cls.__init__).parameters.values():
                    if p.name not in ('self', 'depth', 'kwargs') and \
                            p.default is not inspect.Parameter.empty:
                        cases[f'{p.name}={p.default!r}'] = (p.name, p.default)
    return cases


PEER_ARGUMENTS = _peer_arguments()
RESNEST_ONLY = {'groups', 'base_width', 'radix', 'reduction_factor', 'avg_down_stride'}


@pytest.mark.parametrize('case', sorted(PEER_ARGUMENTS))
def test_every_argument_of_the_upstream_resnets_is_taken(case):
    """Each argument of mmdet's/mmseg's ResNet and ResNeSt (their
    superclasses included) works with the peer's default, for every backbone
    it applies to (the split-attention ones for ResNeSt only)."""
    argument, default = PEER_ARGUMENTS[case]
    names = ['resnest'] if argument in RESNEST_ONLY else ['resnest', 'sem', 'spanet', 'acmix']
    for name in names:
        model = BACKBONES[name](**{argument: default})
        assert len(model.res_layers) == 4
