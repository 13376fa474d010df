# fcn with ResNeSt-101-D8 on Cityscapes (data/cityscapes/), 512x1024 crops,
# 4 GPUs x 2 images, 80k iterations, mIoU: mmseg's ResNeSt recipe with our
# backbone. Reference (mmseg, val, single scale): mIoU 77.56.
_base_ = ['mmseg::resnest/resnest_s101-d8_fcn_4xb2-80k_cityscapes-512x1024.py',
          '../_base_/mmsplitattn_runtime.py']

model = dict(backbone=dict(type='mmsplitattn.ResNeSt'))
