# EfficientBioAI — `make demo` and `make test` work on a fresh machine (Python 3.10+).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-isa test-nni test-all bench lint clean docker docker-base docker-demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"          # CPU wheel first: a later range never pulls CUDA
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python efficientbioai/compress.py --config configs/monai_unet_denoise3d.yaml --exp_path out/demo_den3d --overwrite
	$(BIN)/python efficientbioai/inference.py --config out/demo_den3d/deploy.yaml
	$(BIN)/python efficientbioai/compress.py --config configs/dilatedloc_astig3d.yaml --exp_path out/demo_smlm --overwrite
	$(BIN)/python efficientbioai/inference.py --config out/demo_smlm/deploy.yaml

test: $(STAMP)
	$(BIN)/python -m pytest

# The suite again with oneDNN (torch, OpenVINO) and ATen capped at AVX2, the lowest ISA this
# project's machines have: a pass on an AVX-512 or AMX machine then predicts a pass on an
# AVX2-only one. ONNX Runtime's MLAS has no such switch; its comparisons use derived tolerances.
ISA_CAP ?= ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
test-isa: $(STAMP)
	$(ISA_CAP) $(BIN)/python -m pytest

# NNI pins filelock<3.12, so its pruning plugin is tested in an environment of its own.
NNI_VENV ?= .venv-nni
test-nni:
	@if $(PYTHON) -m venv $(NNI_VENV) && $(NNI_VENV)/bin/pip install --quiet "$(TORCH)" \
	    && $(NNI_VENV)/bin/pip install --quiet -e ".[monai,nni]" pytest; then \
	  $(NNI_VENV)/bin/python -m pytest -p no:cacheprovider tests/pruning/test_nni.py; \
	else \
	  echo "SKIPPED: NNI plugin tests (could not install nni into $(NNI_VENV))"; \
	fi

test-all: $(STAMP)
	$(BIN)/python -m pytest -m ""

bench: $(STAMP)
	$(BIN)/python bench/bench_denoise.py
	$(BIN)/python bench/bench_smlm.py
	$(BIN)/python bench/bench_prune.py
	$(BIN)/python bench/bench_cellpose.py
	$(BIN)/python bench/bench_stream.py

# The CPU image (docker/Dockerfile). Where no base image can be pulled, docker-base builds one
# with debootstrap. The local torch CPU wheel and the host's certificate bundle go into the
# build context (both ignored by git).
DOCKER_BASE  ?= efficientbioai-base:bookworm
TORCH_WHEELS ?= /opt/wheels
docker:
	mkdir -p docker/wheels docker/certs
	-cp $(TORCH_WHEELS)/torch-2.13.0+cpu-*.whl docker/wheels/ 2>/dev/null
	-cp /etc/ssl/certs/ca-certificates.crt docker/certs/ 2>/dev/null
	@docker image inspect $(DOCKER_BASE) >/dev/null 2>&1 || docker pull $(DOCKER_BASE) 2>/dev/null || $(MAKE) docker-base
	docker build --network host -f docker/Dockerfile --build-arg BASE=$(DOCKER_BASE) -t efficientbioai:cpu .

docker-base:
	rm -rf /tmp/efficientbioai-rootfs
	debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm \
	  /tmp/efficientbioai-rootfs http://deb.debian.org/debian
	tar -C /tmp/efficientbioai-rootfs -c . | docker import - $(DOCKER_BASE)

# The demo's 3D denoiser inside the image, experiment written to out/ on the host.
docker-demo: docker
	mkdir -p out
	docker run --rm --network host -v $(CURDIR)/out:/work/out efficientbioai:cpu compress \
	  --config /opt/efficientbioai/configs/monai_unet_denoise3d.yaml --exp_path /work/out/docker_den3d --overwrite
	docker run --rm --network host -v $(CURDIR)/out:/work/out efficientbioai:cpu infer \
	  --config /work/out/docker_den3d/deploy.yaml

lint: $(STAMP)
	$(BIN)/ruff check efficientbioai tests bench tutorial

clean:
	rm -rf out .pytest_cache
