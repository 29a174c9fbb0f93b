# udocker (Swift) — build, install and test entry points.
#
#   make build      debug build (.build/debug/udocker)
#   make release    release build for glibc >= 2.28: static Swift runtime, linked by zig
#                   (scripts/zig-link; docs/portable-binary.md) -> $(RELEASE_SCRATCH)/release/udocker
#   make dist       the release tarball: dist/udocker-$(VERSION)-linux-x86_64.tar.gz + dist/SHA256SUMS
#                   (stripped binary, man page, completions, INSTALL, licences; same commit, same bytes)
#   make install    release build installed as $(PREFIX)/bin/udocker (PREFIX=$(HOME)/.local),
#                   with the man page and bash/zsh/fish completions under $(PREFIX)/share
#   make test       deps (apt as root; else a check) + debug build + dist + fixtures + swift test +
#                   fuzz-ci + format-check; the end-to-end suites drive the dist tarball's binary; the
#                   registries are stopped afterwards even on failure; exit status = swift test's, else
#                   1 when a fuzz target crashed or format-check failed
#   make fixtures   start the registries and push the test images (stop: make fixtures-stop)
#   make clean      remove build products (and stop fixtures)
#
# E2E environment: $(E2E_WORK)/env (see scripts/test-fixtures.sh). To run the E2E suites by hand
# after `make fixtures`:  make e2e   (or: set -a; . /tmp/udocker-e2e/env; set +a; swift test)

SHELL := /bin/bash
SWIFT ?= swift
PREFIX ?= $(HOME)/.local
E2E_WORK ?= /tmp/udocker-e2e
SWIFT_TEST_FLAGS ?=
# Build information for `udocker version` in release builds (a debug build shows "unknown":
# the flags would make every debug build after `make test` recompile the modules).
BUILD_COMMIT := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
BUILD_DATE := $(shell git log -1 --format=%cs 2>/dev/null || date -u +%F)
BUILD_TOOLCHAIN := $(shell $(SWIFT) --version 2>/dev/null | head -1 | tr -d '"')
# Read by Package.swift for the CLinux target only (not -Xcc, which changed every target's flags).
BUILD_ENV = UDOCKER_BUILD_COMMIT='$(BUILD_COMMIT)' UDOCKER_BUILD_DATE='$(BUILD_DATE)' UDOCKER_BUILD_TOOLCHAIN='$(BUILD_TOOLCHAIN)'
export UDOCKER_E2E_WORK := $(E2E_WORK)

FORMAT ?= $(dir $(shell command -v $(SWIFT) 2>/dev/null))swift-format
FORMAT_CHECK = "$(FORMAT)" lint -r --parallel --strict Sources Tests Fuzz Package.swift

# The portable release (issue 22, docs/portable-binary.md): zig (PyPI `ziglang`, installed by
# scripts/test-deps.sh into $(ZIG_VENV)) links the final executable for glibc 2.28, through the link
# driver scripts/zig-link/clang that the Swift driver runs (-tools-directory).
VERSION := $(shell sed -n 's/.*swiftVersion = "\(.*\)"/\1/p' Sources/Commands/UDocker.swift)
ZIG_VENV ?= /opt/udocker-zig
ZIG_PYTHON ?= $(shell [ -x $(ZIG_VENV)/bin/python3 ] && echo $(ZIG_VENV)/bin/python3 || echo python3)
RELEASE_SCRATCH ?= .build-dist
# The source paths that dependencies embed (Swift 5 `#file`, C `__FILE__`) are made relative to the
# checkout, so a build in another directory gives the same bytes.
RELEASE_FLAGS = -c release --static-swift-stdlib --disable-local-rpath --scratch-path $(RELEASE_SCRATCH) \
  -Xswiftc -tools-directory -Xswiftc $(CURDIR)/scripts/zig-link \
  -Xswiftc -file-prefix-map -Xswiftc $(CURDIR)=. -Xcc -ffile-prefix-map=$(CURDIR)=.
RELEASE_BIN = $(RELEASE_SCRATCH)/release/udocker
DIST_DIR ?= dist
DIST_TARBALL = $(DIST_DIR)/udocker-$(VERSION)-linux-x86_64.tar.gz
export SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)


.PHONY: format format-check all build release dist install install-docs test e2e deps fixtures fixtures-stop clean clean-fixtures bench bench-hpc fuzz fuzz-ci

all: build

build:
	$(SWIFT) build

release:
	@$(ZIG_PYTHON) -c 'import ziglang' 2>/dev/null || { echo "make release: needs zig as the link driver: pip install ziglang (scripts/test-deps.sh does, as root), or set ZIG_PYTHON" >&2; exit 1; }
	$(BUILD_ENV) ZIG='$(ZIG_PYTHON) -m ziglang' $(SWIFT) build $(RELEASE_FLAGS)

# The tarball users download (scripts/make-dist.sh): reproducible from one commit.
dist: release
	ZIG_PYTHON='$(ZIG_PYTHON)' scripts/make-dist.sh "$(RELEASE_BIN)" "$(VERSION)" "$(RELEASE_SCRATCH)" "$(DIST_DIR)"

install: release
	install -d "$(DESTDIR)$(PREFIX)/bin"
	install -m 755 -s "$(RELEASE_BIN)" "$(DESTDIR)$(PREFIX)/bin/udocker"
	$(MAKE) install-docs UDOCKER_BIN_FOR_DOCS="$(DESTDIR)$(PREFIX)/bin/udocker"

# Man page and bash/zsh/fish completions, generated from the command definitions by the binary.
UDOCKER_BIN_FOR_DOCS ?= $$($(SWIFT) build --show-bin-path)/udocker
install-docs:
	install -d "$(DESTDIR)$(PREFIX)/share/man/man1" "$(DESTDIR)$(PREFIX)/share/bash-completion/completions" \
	  "$(DESTDIR)$(PREFIX)/share/zsh/site-functions" "$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d"
	"$(UDOCKER_BIN_FOR_DOCS)" _manpage >"$(DESTDIR)$(PREFIX)/share/man/man1/udocker.1"
	"$(UDOCKER_BIN_FOR_DOCS)" _completion bash >"$(DESTDIR)$(PREFIX)/share/bash-completion/completions/udocker"
	"$(UDOCKER_BIN_FOR_DOCS)" _completion zsh >"$(DESTDIR)$(PREFIX)/share/zsh/site-functions/_udocker"
	"$(UDOCKER_BIN_FOR_DOCS)" _completion fish >"$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/udocker.fish"

deps:
	scripts/test-deps.sh

fixtures:
	scripts/test-fixtures.sh start

fixtures-stop:
	scripts/test-fixtures.sh stop

# The whole recipe is one shell so that the EXIT trap stops the registries whatever happens. No
# $(MAKE) in it: make runs such a line even under `make -n`, which would start (and wipe) the fixtures.
# The release tarball is built while the fixtures start (both take minutes); the end-to-end suites
# then drive the binary unpacked from it, as users get it (UDOCKER_DIST_* for DistBinaryTests).
test: deps
	$(SWIFT) build
	@trap 'scripts/test-fixtures.sh stop' EXIT; \
	{ $(BUILD_ENV) ZIG='$(ZIG_PYTHON) -m ziglang' $(SWIFT) build $(RELEASE_FLAGS) && \
	  ZIG_PYTHON='$(ZIG_PYTHON)' scripts/make-dist.sh "$(RELEASE_BIN)" "$(VERSION)" "$(RELEASE_SCRATCH)" "$(DIST_DIR)"; } \
	  >"$(DIST_DIR).log" 2>&1 & dist_pid=$$!; \
	scripts/test-fixtures.sh start || exit 1; \
	wait $$dist_pid || { tail -n 60 "$(DIST_DIR).log"; echo "make test: make dist failed (log: $(DIST_DIR).log)"; exit 1; }; \
	tail -n 3 "$(DIST_DIR).log"; \
	rm -rf "$(E2E_WORK)/dist" && mkdir -p "$(E2E_WORK)/dist" && tar -C "$(E2E_WORK)/dist" -xzf "$(DIST_TARBALL)" || exit 1; \
	chmod -R a+rX "$(E2E_WORK)/dist"; \
	install -m 755 "$(E2E_WORK)/dist/udocker-$(VERSION)/bin/udocker" "$(E2E_WORK)/bin/udocker" || exit 1; \
	export UDOCKER_DIST_BIN="$(E2E_WORK)/dist/udocker-$(VERSION)/bin/udocker" UDOCKER_DIST_TARBALL="$(CURDIR)/$(DIST_TARBALL)" \
	  UDOCKER_RELEASE_BIN="$(CURDIR)/$(RELEASE_BIN)" UDOCKER_RELEASE_SCRATCH="$(CURDIR)/$(RELEASE_SCRATCH)" ZIG_PYTHON='$(ZIG_PYTHON)'; \
	set -a; . "$(E2E_WORK)/env"; set +a; \
	echo "make test: swift test $(SWIFT_TEST_FLAGS) (E2E as $$UDOCKER_E2E_USER, binary $$UDOCKER_E2E_BIN)"; \
	$(SWIFT) test $(SWIFT_TEST_FLAGS); status=$$?; \
	echo "make test: swift test exited with $$status"; \
	FUZZ_SECONDS=$(FUZZ_CI_SECONDS) scripts/fuzz.sh || { echo "make test: fuzzing failed (crash input above)"; [ $$status -ne 0 ] || status=1; }; \
	$(FORMAT_CHECK) || { echo "make test: format-check failed (make format fixes the layout; the rules are in .swift-format)"; [ $$status -ne 0 ] || status=1; }; \
	exit $$status

# E2E suites only, against already running fixtures (make fixtures) and a fresh debug build.
e2e:
	$(SWIFT) build
	install -m 755 "$$($(SWIFT) build --show-bin-path)/udocker" "$(E2E_WORK)/bin/udocker"
	set -a; . "$(E2E_WORK)/env"; set +a; $(SWIFT) test --filter EndToEndTests $(SWIFT_TEST_FLAGS)

clean:
	-scripts/test-fixtures.sh stop
	$(SWIFT) package clean
	rm -rf .build-e2e .build-fuzz $(RELEASE_SCRATCH) $(DIST_DIR) $(DIST_DIR).log

# Removes the fixture work dir but keeps the cached Debian tarball.
clean-fixtures:
	-scripts/test-fixtures.sh stop
	find "$(E2E_WORK)" -mindepth 1 -maxdepth 1 ! -name cache -exec rm -rf {} +

# Benchmark against the Python udocker, GNU tar, umoci and the bare host (not part of the tests):
# own registry on 127.0.0.1:5010, results in bench/results/. Options: BENCH_LARGE=1 (adds the ~1 GB
# image), BENCH_BUILD=release|debug, BENCH_REPS=3, ... (see bench/run.sh).
bench:
	bench/run.sh

# The seeds' table (MPI/CPU workloads bare and under N1 P1 F3 R1; bench/hpc.sh): matmul, the ring with 1/2/4
# ranks, a two-rank ping-pong 8 B-4 MiB (table row + bench/results/hpc-pingpong.svg, gnuplot) and the host load.
# Needs the HPC image in the fixtures' registry (built by scripts/fixtures/hpc-images.sh when missing).
# BENCH_BIN / BENCH_BUILD label the binary.
bench-hpc:
	bench/hpc.sh

# libFuzzer runs (issue 10; docs/trust-boundaries.md): the tar reader + extractor, the ELF reader + patch
# planner, the manifest/index/config/digest decoders and the image reference parser, FUZZ_SECONDS each
# (default 60), seeded by Fuzz/seeds.py. Own build path (.build-fuzz, only the fuzzed modules); a crash
# exits 1 and prints the input's path (.build-fuzz/crashes/<target>/). `make test` runs fuzz-ci:
# FUZZ_CI_SECONDS (default 30) per target after swift test.
FUZZ_CI_SECONDS ?= 30
fuzz:
	scripts/fuzz.sh

fuzz-ci:
	FUZZ_SECONDS=$(FUZZ_CI_SECONDS) scripts/fuzz.sh

# The tree's formatter config is .swift-format (4-space indent, 140 columns, and the rules the tree
# keeps: each of swift-format's rules is listed, on or off); CI does not reformat. `make test` runs
# format-check after the tests (a failure makes its status 1).
format:
	"$(FORMAT)" format -i -r --parallel Sources Tests Fuzz Package.swift

format-check:
	$(FORMAT_CHECK)
