"""tools/model_converters against timm models built without weights."""
import pytest
import timm
import torch

from conftest import run_tool
from mmsplitattn.converters import convert_resnest
from mmsplitattn.models import ResNeSt
from test_resnest import randomize_norms


@pytest.mark.parametrize('name,depth,stem', [('resnest14d', 14, 64), ('resnest26d', 26, 64),
                                             ('resnest50d', 50, 64)])
@pytest.mark.slow
def test_timm_converter_gives_identical_stage_outputs(tmp_path, name, depth, stem):
    torch.manual_seed(0)
    src_model = timm.create_model(name, pretrained=False)
    randomize_norms(src_model)
    src_model.eval()
    src = tmp_path / f'{name}.pth'
    torch.save(src_model.state_dict(), src)
    dst = tmp_path / f'{name}_mmsplitattn.pth'
    proc = run_tool(['tools/model_converters/timm_resnest.py', str(src), str(dst)], cwd=tmp_path)
    assert 'dropped the classifier head: fc.weight, fc.bias' in proc.stdout

    ours = ResNeSt(depth, stem_channels=stem,
                   init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    ours.init_weights()
    ours.eval()
    ckpt = torch.load(dst, map_location='cpu', weights_only=False)['state_dict']
    assert set(ckpt) == set(ours.state_dict())  # nothing missing, nothing extra

    feats = timm.create_model(name, pretrained=False, features_only=True, out_indices=(1, 2, 3, 4))
    feats.load_state_dict({k: v for k, v in src_model.state_dict().items()
                           if not k.startswith('fc.')})
    feats.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(ours(x), feats(x)):
            assert (a - b).abs().max() <= 1e-4 * max(1.0, b.abs().max().item())


@pytest.mark.slow
def test_timm_resnest101e_layout_converts():
    sd = timm.create_model('resnest101e', pretrained=False).state_dict()
    ours = ResNeSt(101, stem_channels=128)
    converted = convert_resnest(sd, log=lambda msg: None)
    assert set(converted) == set(ours.state_dict())
    for k, v in converted.items():
        assert v.shape == ours.state_dict()[k].shape, k


@pytest.mark.slow
def test_official_layout_converts(tmp_path):
    """The official layout: 'module.'-prefixed keys inside a checkpoint dict."""
    sd = timm.create_model('resnest50d', pretrained=False).state_dict()
    src = tmp_path / 'official.pth.tar'
    torch.save({'epoch': 270, 'state_dict': {'module.' + k: v for k, v in sd.items()}}, src)
    dst = tmp_path / 'resnest50.pth'
    run_tool(['tools/model_converters/official_resnest.py', str(src), str(dst)], cwd=tmp_path)
    converted = torch.load(dst, map_location='cpu', weights_only=False)
    assert converted['meta']['converted_from'] == 'official'
    ours = ResNeSt(50)
    ours.load_state_dict(converted['state_dict'], strict=True)


@pytest.mark.slow
def test_converter_errors(tmp_path):
    with pytest.raises(ValueError, match='keys outside the timm/official ResNeSt layout: head.w'):
        convert_resnest({'head.w': torch.zeros(1)})
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'not a checkpoint')
    proc = run_tool(['tools/model_converters/timm_resnest.py', str(bad), str(tmp_path / 'o.pth')],
                    cwd=tmp_path, check=False)
    assert proc.returncode != 0 and f"cannot read '{bad}' as a checkpoint" in proc.stderr
    assert not (tmp_path / 'o.pth').exists()
