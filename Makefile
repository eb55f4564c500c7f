# slipway — plain Makefile (see docs/development.md).
#   make          build ./slipway (optimised)
#   make test     sanitizer build, unit + end-to-end tests, "N passed, N failed"
#   make demo     the example site delivered through its pipelines, in ./demo
#   make fuzz     build libFuzzer targets (clang)
#   make bench    benchmarks against their peers
#   make lint     clang-format check + cppcheck; bash -n and shellcheck of scripts/demo.sh

# Two passes. The make you type only runs scripts/install-deps and then make
# again with the same goals and flags (-j included); the rules below are read by
# that second make alone. So nothing compiles while apt-get is still installing,
# and the pkg-config flags are computed once the packages exist.
ifndef SLIPWAY_DEPS_DONE
GOALS := $(or $(MAKECMDGOALS),all)
.PHONY: $(GOALS) deps-then-make
$(GOALS): deps-then-make
	@:
deps-then-make:
	@$(if $(filter-out clean lint,$(GOALS)),scripts/install-deps)
	@$(MAKE) --no-print-directory SLIPWAY_DEPS_DONE=1 $(GOALS)
else

CC      ?= cc
# The libraries the code calls: libyaml (environment files), jansson
# (manifests, state, events), zlib and libbrotli (the precompressed variants
# release create makes and checks). Add one here with its first caller.
# libcurl (the S3 store, alerts to Alertmanager and webhooks) and libcrypto
# (SHA-256, SigV4's HMAC) are not linked: src/base/curl.c and crypto.c load
# them when first needed, so a command that makes no request does not pay for
# loading libcurl's 25 libraries, nor one that hashes nothing for libcrypto's
# relocations (2.5 ms of every start here); their headers are needed to build.
PKGS    := yaml-0.1 jansson zlib libbrotlienc libbrotlidec
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -pthread -Isrc -MMD -MP
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) libcurl libcrypto)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
CFLAGS  += $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS)

SRC      := $(sort $(wildcard src/*/*.c))
MAIN     := src/main.c
OBJ      := $(SRC:%.c=build/rel/%.o)
TOBJ     := $(SRC:%.c=build/test/%.o)
UNIT     := $(patsubst tests/unit/%.c,build/test/unit/%,$(wildcard tests/unit/test_*.c))
FUZZ     := $(patsubst fuzz/%.c,build/fuzz/%,$(filter-out fuzz/%_main.c,$(wildcard fuzz/*.c)))
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

.PHONY: all test test-build unit e2e demo fuzz bench lint clean deps

all: slipway

# The first pass has installed the packages.
deps:
	@:

slipway: $(OBJ) build/rel/src/main.o
	$(CC) $(CFLAGS) -o $@ $(filter %.o,$^) $(LDLIBS)

build/rel/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# The test build: same sources, ASan + UBSan, no optimisation surprises.
build/test/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 $(SAN) -c -o $@ $<

build/test/slipway: $(TOBJ) build/test/src/main.o
	$(CC) $(CFLAGS) $(SAN) -o $@ $(filter %.o,$^) $(LDLIBS)

# The tests may call OpenSSL themselves (test_http decodes base64 with it).
build/test/unit/%: tests/unit/%.c $(TOBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 $(SAN) -o $@ $(filter %.c %.o,$^) $(LDLIBS) -lcmocka \
	    $(shell pkg-config --libs libcrypto)

test: build/test/slipway $(UNIT)
	@tests/run.sh

# What `make test` runs, built and not run (.ci/run builds it first, then the rest beside the tests).
test-build: build/test/slipway $(UNIT)

unit: $(UNIT)
	@tests/run.sh --unit

e2e: build/test/slipway
	@tests/run.sh --e2e

demo: slipway
	@scripts/demo.sh

# libFuzzer targets: every fuzz/<name>.c linked against the sources, which are
# compiled once with clang for all targets (coverage instrumentation without
# libFuzzer's main: -fsanitize=fuzzer-no-link), not once per target.
FCFLAGS  = $(CFLAGS) -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
FOBJ     := $(SRC:%.c=build/fuzz/obj/%.o)

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FCFLAGS) -c -o $@ $<

build/fuzz/%: fuzz/%.c fuzz/fuzz.h $(FOBJ)
	@mkdir -p $(dir $@)
	clang $(CFLAGS) -O1 -fsanitize=fuzzer,address,undefined -o $@ $< $(FOBJ) $(LDLIBS)

fuzz: $(FUZZ)

bench: slipway
	@for b in bench/*.sh; do echo "== $$b"; bash $$b || exit 1; done

# scripts/demo.sh has no test of its own (make demo is a person's first
# minute with slipway, too slow for make test): bash -n, and shellcheck where
# installed, so at least a broken script is caught here.
lint:
	clang-format --dry-run --Werror src/*.c src/*/*.c src/*/*.h tests/unit/*.c fuzz/*.c
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	    -Isrc --suppress=missingIncludeSystem src
	bash -n scripts/demo.sh
	if command -v shellcheck >/dev/null; then shellcheck scripts/demo.sh; fi

clean:
	rm -rf build slipway

-include $(shell find build -name '*.d' 2>/dev/null)

endif
