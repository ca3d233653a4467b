# rrqctl: `make demo` and `make check` install what is missing, then run.
SHELL := /bin/sh
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo check test lint sanitize bench deb man clean

demo:
	@sh tools/bootstrap.sh demo
	$(VENV)/bin/rrqctl demo

check:
	@sh tools/bootstrap.sh check
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory sanitize

# The C datapath built again with AddressSanitizer and UBSan, and the tests of the engine
# that run it (its differential and fuzz tests in this process; the engines the namespace
# tests start, on the C datapath), with the sanitizers' runtimes loaded first. They are
# loaded into every program the tests start: string interceptors are off (iproute2's `ip
# route` trips one), and the tests of other programs (vde_plug, dpipe) and of memory use
# (ASan's shadow memory counts as resident) are left out, as are those that run an engine
# under faketime (whose own preload ASan will not follow).
ASAN_BUILD := build/asan
SANITIZERS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
ASAN_STR_OFF := replace_str=0:intercept_strlen=0:intercept_strchr=0:intercept_strndup=0
SANITIZE_SKIP := not python-datapath and not vde and not dpipe and not metrics and not flood \
  and not faketime
sanitize:
	@sh tools/bootstrap.sh check
	rm -rf $(ASAN_BUILD)
	CFLAGS="-O1 -g $(SANITIZERS)" LDFLAGS="$(SANITIZERS)" RRQCTL_FASTPATH=required \
	  $(PY) setup.py -q build_ext --build-lib $(ASAN_BUILD) --build-temp $(ASAN_BUILD)/tmp \
	  2>&1 | grep -v -e _BetaConfiguration -e 'warnings.warn(msg' || true
	RRQCTL_FASTPATH_MODULE="$$(ls $(ASAN_BUILD)/rrqctl/engine/_fastpath.*.so)" \
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:$(ASAN_STR_OFF) \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PY) -m pytest -p no:cacheprovider -k "$(SANITIZE_SKIP)" tests/unit/test_datapath_diff.py \
	  tests/unit/test_fastpath_fuzz.py tests/netns/test_datapath.py tests/netns/test_cable.py \
	  tests/netns/test_engine.py tests/netns/test_integrity.py tests/netns/test_peers.py \
	  tests/netns/test_topologies.py tests/netns/test_mtu.py tests/netns/test_sealed_channel.py \
	  tests/netns/test_sealed_attacks.py

# the fast subset while developing (no slow tests)
test:
	@sh tools/bootstrap.sh check
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint:
	$(VENV)/bin/ruff check rrqctl tests bench
	$(VENV)/bin/ruff format --check rrqctl tests bench
	$(VENV)/bin/mypy

bench:
	@sh tools/bootstrap.sh bench
	$(PY) -m bench

deb:
	@sh tools/bootstrap.sh check
	$(PY) -m tests.packaging.trixie build

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

man:
	$(PY) -m rrqctl.manpages man
