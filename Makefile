# cnnlab: `make train` and `make test` are all a new user needs; `make` lists the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
STAMP := $(VENV)/.installed

.PHONY: help install train embed eval lr-find lecture mlflow sweep summary zoo shards corpus augment-preview predict export explain demo playground notebooks bench bench-scaling report tensorboard test test-fast lint docs docs-serve format clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo '  Pass Hydra overrides with ARGS, e.g. make train ARGS="model=mlp trainer.max_epochs=3"'

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e '.[all,test,docs,notebooks]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install cnnlab (editable) with every extra, the docs and the test tools

train: $(STAMP) ## Train the default experiment (ConvNet on 5,000 real MNIST digits, offline)
	$(PY) -m cnnlab.commands.train $(ARGS)

embed: $(STAMP) ## Frozen features of every split, kept and reused: make embed ARGS="model=resnet50 model.weights=DEFAULT"
	$(PY) -m cnnlab.commands.embed $(ARGS)

eval: $(STAMP) ## Evaluate a checkpoint: make eval ARGS="ckpt_path=outputs/.../best.ckpt"
	$(PY) -m cnnlab.commands.eval $(ARGS)

lr-find: $(STAMP) ## Learning-rate range test: make lr-find ARGS="model=resnet_cifar" (plot + suggestion)
	$(PY) -m cnnlab.commands.lr_find $(ARGS)

lecture: $(STAMP) ## The lecture's claims measured, with verdicts (15 min here): make lecture [ONLY=residual,batchnorm]
	$(PY) -m cnnlab.commands.lecture $(if $(ONLY),--only $(ONLY)) $(ARGS)

sweep: $(STAMP) ## Multirun sweep: make sweep ARGS="optimizer=sgd,adam"
	$(PY) -m cnnlab.commands.train --multirun $(ARGS)

shards: $(STAMP) ## Image folder → LitData shards: make shards ARGS="src=/data/photos out=/data/photos_shards"
	$(PY) -m cnnlab.commands.shards $(ARGS)

corpus: $(STAMP) ## Photo-like JPEG folder from scikit-learn's photos (offline): make corpus ARGS="--out outputs/corpus"
	$(PY) -m cnnlab.commands.corpus $(ARGS)

mlflow: $(STAMP) ## Serve the MLflow store of logger=mlflow runs (outputs/mlflow.db) on http://localhost:5000
	@echo "cnnlab's runs: http://localhost:5000/#/experiments?workflowType=machine_learning (MLflow 3 opens in GenAI mode)"
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/outputs/mlflow.db --port 5000

tensorboard: $(STAMP) ## Serve outputs/ on http://localhost:6006
	$(VENV)/bin/tensorboard --logdir outputs --port 6006

# Test workers: one per core, at most 4 (each holds torch and Lightning, ~1 GB).
TEST_JOBS ?= -n auto --maxprocesses 4

# The 15 slowest tests are printed after every run, so a slow one is seen when it lands.
test: lint docs ## Check style and layers, build the docs site, then run the whole test suite (what CI runs)
	$(PY) -m pytest tests $(TEST_JOBS) --durations=15 $(ARGS)

test-fast: $(STAMP) ## Run the tests not marked slow
	$(PY) -m pytest tests -m "not slow" $(TEST_JOBS) --durations=15 $(ARGS)

lint: $(STAMP) ## Style (ruff check + format) and the import layers (import-linter, pyproject.toml)
	$(VENV)/bin/ruff check src tests benchmarks notebooks docs/hooks
	$(VENV)/bin/ruff format --check src tests benchmarks notebooks docs/hooks
	$(VENV)/bin/lint-imports --no-cache

# MkDocs + Material; --strict: a broken link, anchor or included file fails the build.
# NO_MKDOCS_2_WARNING: Material's banner about MkDocs 2 (not a problem with this site).
notebooks: $(STAMP) ## Run notebooks/ top to bottom (offline; each notebook states its time) into docs/notebooks/ for the site
	$(PY) notebooks/execute.py $(ARGS)

docs: $(STAMP) ## Build the documentation site (docs/ → site/) with --strict
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

docs-serve: $(STAMP) ## Serve the documentation site on http://localhost:8000, rebuilt on every edit
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --strict

format: $(STAMP) ## Format and fix with ruff
	$(VENV)/bin/ruff format src tests benchmarks notebooks docs/hooks
	$(VENV)/bin/ruff check --fix src tests benchmarks notebooks docs/hooks

clean: ## Remove run outputs and caches (keeps .venv and data/)
	rm -rf outputs multirun lightning_logs site .pytest_cache .ruff_cache
	find . -name __pycache__ -prune -not -path './$(VENV)/*' -exec rm -rf {} +

summary: $(STAMP) ## Layer table: shapes, params, memory, FLOPs: make summary ARGS="model=vgg16 data=imagenet"
	$(PY) -m cnnlab.commands.summary $(ARGS)

zoo: $(STAMP) ## Every torchvision weight's published figures: make zoo ARGS="--sort top1 --models resnet50,vit_b_16"
	$(PY) -m cnnlab.commands.zoo_table $(ARGS)

augment-preview: $(STAMP) ## Augmented training images to a PNG: make augment-preview ARGS="augment=mnist"
	$(PY) -m cnnlab.commands.augment_preview hydra.job.name=preview $(ARGS)

predict: $(STAMP) ## Label images: make predict ARGS="ckpt_path=.../best.ckpt images=dir|file|glob"
	$(PY) -m cnnlab.commands.predict $(ARGS)

export: $(STAMP) ## Export for deployment: make export ARGS="ckpt_path=.../best.ckpt format=onnx"
	$(PY) -m cnnlab.commands.export $(ARGS)

explain: $(STAMP) ## Grad-CAM overlays: make explain ARGS="ckpt_path=.../best.ckpt images=dir method=gradcam target=pred"
	$(PY) -m cnnlab.commands.explain $(ARGS)

playground: $(STAMP) ## Serve the lecture's demos (kernels, conv arithmetic, receptive fields) on http://127.0.0.1:7861 [ARGS="ckpt_path=…"]
	$(PY) -m cnnlab.commands.playground $(ARGS)

demo: $(STAMP) ## Serve a demo page (top-5, Grad-CAM, model card): make demo ARGS="ckpt_path=outputs/.../best.ckpt"
	$(PY) -m cnnlab.commands.demo $(ARGS)

bench: $(STAMP) ## cnnlab vs a plain PyTorch loop, same run, with ratios (SAVE=1 writes benchmarks/results/)
	SAVE=$(SAVE) $(PY) benchmarks/bench.py

bench-scaling: $(STAMP) ## Training cost vs dataset size (1k-4k images) and model (mlp … vgg11) at 32×32
	SAVE=$(SAVE) $(PY) benchmarks/scaling.py

report: $(STAMP) ## Sweep table + plot: make report DIR=outputs/train/multirun/<date>/<time>_<id> [GROUP=transfer]
	$(PY) -m cnnlab.commands.report $(DIR) $(if $(GROUP),--group-by $(GROUP))
