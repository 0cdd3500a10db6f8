# The README's two commands: `make demo` and `make test`. Everything they need is installed here.

UV_VERSION := 0.13.9
BOOTSTRAP  := .cache/bootstrap
UV         := $(BOOTSTRAP)/bin/uv
VENV       := .venv
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test setup system-packages kafka-jars clean

demo: setup kafka-jars
	$(VENV)/bin/spm-demo

test: setup kafka-jars
	$(VENV)/bin/python -m pytest

setup: system-packages $(VENV)/.synced

system-packages:
	@scripts/install-system-packages.sh

kafka-jars: $(VENV)/.synced
	$(VENV)/bin/spm-kafka --fetch-only

$(UV):
	python3 -m venv $(BOOTSTRAP)
	$(BOOTSTRAP)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml events/pyproject.toml services/*/pyproject.toml deploy/local/pyproject.toml
	$(UV) sync --frozen --python python3
	touch $@

clean:
	rm -rf $(VENV) var
