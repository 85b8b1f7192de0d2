# kubetune: `make quickstart` runs the main job end to end on a local cluster (CPU);
# `make test` runs the test suite. Both set up the virtualenv first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first, pinned: a plain `torch` requirement would pull a multi-GB CUDA build.
TORCH_VERSION ?= 2.13.0
PYTEST_ARGS ?=

.PHONY: venv test test-fast lint crds docs bench quickstart images clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/pip install --quiet -e '.[trainer,dev,examples]'
	touch $@

test: venv
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

# Everything but the tests that train or evaluate real models.
test-fast: venv
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow and not e2e" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports

crds: venv
	$(BIN)/kubetune crds --output-dir crds
	$(BIN)/python helm/sync-crds.py
	$(BIN)/python helm/sync-admission-policy.py

docs: venv
	$(BIN)/kubetune reference --update README.md

bench: venv
	@for script in benchmarks/*.py; do echo "== $$script"; HF_HUB_OFFLINE=1 $(BIN)/python $$script || exit 1; done

quickstart: venv
	HF_HUB_OFFLINE=1 $(BIN)/kubetune quickstart

# Container images: needs a Docker engine (not used by `make test`).
IMAGE_REGISTRY ?= ghcr.io/kubetune
IMAGE_TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
DOCKER ?= docker

images:
	@command -v $(DOCKER) >/dev/null 2>&1 && $(DOCKER) info >/dev/null 2>&1 \
	  || { echo "make images needs a running Docker engine ($(DOCKER))"; exit 1; }
	$(DOCKER) build -f operator/Dockerfile -t $(IMAGE_REGISTRY)/operator:$(IMAGE_TAG) .
	$(DOCKER) build -f trainer-image/Dockerfile -t $(IMAGE_REGISTRY)/trainer:$(IMAGE_TAG) .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .kubetune
