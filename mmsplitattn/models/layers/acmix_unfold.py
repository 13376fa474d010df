"""The official ACmix formulation written the straightforward way, with
``nn.functional.unfold`` materialising every K x K window of k, v and the
positional encoding. It is the reference :class:`ACmix` is tested against
and the baseline of ``tools/analysis_tools/benchmark_acmix.py``. With
dilation 1, kernel_conv 3 and H, W divisible by the stride it is the official
computation; it also takes what the official code mishandles, as ACmix
defines it: dilation, any kernel_conv, any H and W (``ceil(H / stride)``
outputs) and maps smaller than the window (the reflection repeats)."""
import torch
import torch.nn.functional as F


def reflect_pad(t, pad):
    """``F.pad(t, [pad] * 4, mode='reflect')``, repeated where ``pad`` reaches
    past the map (as ``numpy.pad(mode='reflect')``; a 1-pixel axis repeats)."""
    for dim in (-2, -1):
        if t.size(dim) == 1:
            t = torch.cat([t] * (2 * pad + 1), dim)
            continue
        left = pad
        while left > 0:
            step = min(left, t.size(dim) - 1)
            t = F.pad(t, [step, step, 0, 0] if dim == -1 else [0, 0, step, step],
                      mode='reflect')
            left -= step
    return t


def acmix_unfold_forward(m, x):
    """:class:`ACmix` ``m``'s output for x (B, C_in, H, W), by unfolding."""
    b, _, h, w = x.shape
    s, ka, kc, n, d = m.stride, m.kernel_att, m.kernel_conv, m.head, m.head_dim
    dil = m.dilation
    q, k, v = m.conv1(x), m.conv2(x), m.conv3(x)
    ho, wo = -(-h // s), -(-w // s)
    loc_w = torch.linspace(-1.0, 1.0, w).expand(h, w)
    loc_h = torch.linspace(-1.0, 1.0, h)[:, None].expand(h, w)
    pe = m.conv_p(torch.stack([loc_w, loc_h])[None].to(x))
    q_att = q.view(b * n, d, h, w) * d ** -0.5
    q_pe = pe
    if s > 1:
        q_att, q_pe = q_att[:, :, ::s, ::s], pe[:, :, ::s, ::s]
    pad = dil * (ka - 1) // 2

    def unfold(t):  # (N, d, H, W) -> (N, d, K*K, H', W')
        t = reflect_pad(t, pad)
        return F.unfold(t, ka, dilation=dil, stride=s).view(t.size(0), d, ka * ka, ho, wo)

    unfold_k, unfold_v, unfold_pe = (unfold(k.view(b * n, d, h, w)),
                                     unfold(v.view(b * n, d, h, w)), unfold(pe))
    att = (q_att.unsqueeze(2) * (unfold_k + q_pe.unsqueeze(2) - unfold_pe)).sum(1)
    att = att.softmax(1)
    out_att = (att.unsqueeze(1) * unfold_v).sum(2).view(b, n * d, ho, wo)

    f = F.conv2d(torch.cat([t.view(b, n, d, h * w) for t in (q, k, v)], 1), m.fc.weight)
    f = f.permute(0, 2, 1, 3).reshape(b, -1, h, w)
    out_conv = F.conv2d(f, m.dep_conv.weight, None, s, dil * (kc - 1) // 2, dil, d)
    return m.rate1 * out_att + m.rate2 * out_conv
