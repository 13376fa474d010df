# The two commands of the README:
#   make demo [BACKBONE=resnest]   set up, make the demo data, train + evaluate the demo Mask R-CNN
#   make test                      set up, run the test suite
#   make demo-pretrain             pre-train SEM-ResNet-14 on the demo classification set, then
#                                  train the demo Mask R-CNN from it and from scratch; compare
# MMSPLITATTN_VENV moves the environment (default .venv/).
VENV ?= $(if $(MMSPLITATTN_VENV),$(MMSPLITATTN_VENV),.venv)
PY := $(VENV)/bin/python
BACKBONE ?= resnest
DEMO_CFG := configs/demo/maskrcnn_$(BACKBONE)_demo.py
DEMO_DIR := work_dirs/demo_maskrcnn_$(BACKBONE)
PYTEST_ARGS ?=
# pytest-xdist workers for make test (each runs torch on one thread); 0 runs in one process.
TEST_WORKERS ?= 2

.PHONY: setup test demo demo-config demo-data demo-seg demo-pretrain

setup:
	@MMSPLITATTN_VENV=$(VENV) bash tools/setup_env.sh

test: setup
	$(PY) -m pytest tests -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

demo-data: setup
	$(PY) tools/misc/make_demo_data.py --out data/demo

demo-config:
	@test -f $(DEMO_CFG) || { echo "no demo config $(DEMO_CFG); BACKBONE is one of: $$(ls configs/demo | sed -n 's/^maskrcnn_\(.*\)_demo.py/\1/p' | tr '\n' ' ')"; exit 2; }

demo: demo-config demo-data
	rm -rf $(DEMO_DIR)
	$(PY) tools/train.py $(DEMO_CFG) --work-dir $(DEMO_DIR)
	$(PY) tools/test.py $(DEMO_CFG) "$$(cat $(DEMO_DIR)/last_checkpoint)" \
		--work-dir $(DEMO_DIR)/test --show-dir $(DEMO_DIR)/predictions
	@echo "demo: COCO bbox/segm mAP above; prediction pictures in $(DEMO_DIR)/predictions/"

demo-seg: demo-data
	rm -rf work_dirs/demo_fcn_resnest
	$(PY) tools/train.py configs/demo/fcn_resnest_demo.py --work-dir work_dirs/demo_fcn_resnest

# docs/pretraining.md: the recipe's checkpoint is the path the detection config names
PRETRAIN_DIR := work_dirs/demo_pretrain
PRETRAIN_DET_CFG := configs/demo/maskrcnn_sem_demo_in1k-pretrained.py

demo-pretrain: demo-data
	rm -rf $(PRETRAIN_DIR)
	$(PY) tools/train.py configs/demo/sem-resnet14_demo_in1k.py \
		--work-dir $(PRETRAIN_DIR)/sem-resnet14_demo_in1k
	$(PY) tools/train.py $(PRETRAIN_DET_CFG) --work-dir $(PRETRAIN_DIR)/maskrcnn_pretrained
	$(PY) tools/train.py $(PRETRAIN_DET_CFG) --work-dir $(PRETRAIN_DIR)/maskrcnn_scratch \
		--cfg-options model.backbone.init_cfg=None
	@echo "demo-pretrain: pre-training top-1 on the demo val images"
	@$(PY) tools/misc/compare_runs.py SEM-ResNet-14=$(PRETRAIN_DIR)/sem-resnet14_demo_in1k \
		--keys accuracy/top1
	@echo "demo-pretrain: COCO mAP@[.5:.95] on the demo val images, same 4-epoch schedule"
	@$(PY) tools/misc/compare_runs.py pre-trained=$(PRETRAIN_DIR)/maskrcnn_pretrained \
		from-scratch=$(PRETRAIN_DIR)/maskrcnn_scratch
