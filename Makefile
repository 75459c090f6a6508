# sandnet: thin wrapper over CMake. Every target first installs the Debian packages of
# deps/debian.txt that are missing (scripts/deps.sh), so a fresh Debian 12 machine needs nothing else.
#
#   make            build (build/)
#   make test       build and run every test (SANITIZE=1: under ASan+UBSan, in build-asan/)
#   make run        build and start sandnetd with its state in ./var
#   make fuzz       build the libFuzzer targets with clang (build-fuzz/) and run each FUZZ_RUNS times
#                   (FUZZ_TARGETS: which; all by default)
#   make bench      build in release mode and run the benchmarks
#   make format     clang-format the sources

SANITIZE ?= 0
WERROR ?= 0
JOBS ?= $(shell nproc)
FUZZ_RUNS ?= 1000000

ifeq ($(SANITIZE),1)
BUILD ?= build-asan
CMAKE_FLAGS += -DSN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
else
BUILD ?= build
endif
ifeq ($(WERROR),1)
CMAKE_FLAGS += -DSN_WERROR=ON
endif

.PHONY: all deps build test run fuzz bench format clean

all: build

deps:
	@sh scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

run: build
	@sh scripts/run.sh $(BUILD)

FUZZ_TARGETS ?= policy_json policy_yaml policy_e2b policy_sandbox0 sniff_tls sniff_http dns decide_name \
	http body

fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -DSN_FUZZ=ON -DSN_SANITIZE=ON -DSN_TESTS=OFF \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p build-fuzz/corpus-$$t && \
		if ! build-fuzz/fuzz/fuzz_$$t -runs=$(FUZZ_RUNS) -max_len=65536 -timeout=10 \
			-print_final_stats=1 -artifact_prefix=build-fuzz/ build-fuzz/corpus-$$t \
			fuzz/corpus/$$t >build-fuzz/fuzz-$$t.log 2>&1; then \
			tail -40 build-fuzz/fuzz-$$t.log; echo "fuzz_$$t: FAILED"; exit 1; \
		fi; \
		echo "fuzz_$$t: $$(grep -o 'number_of_executed_units: [0-9]*' build-fuzz/fuzz-$$t.log)"; \
	done

bench: deps
	@cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DSN_TESTS=OFF \
		-DSN_FAULT_INJECTION=OFF >/dev/null
	@cmake --build build-release -j $(JOBS)
	@build-release/bench/bench_decide
	@sh bench/update.sh build-release/sandnetd 5
	@sh bench/create.sh build-release/sandnetd 1000
	@sh bench/fastpath.sh build-release/sandnetd 15 3
	@sh bench/proxy.sh build-release/sandnetd build-release/bench/tcpbench 5 3 32
	@sh bench/dns.sh build-release/sandnetd build-release/bench/dnslat 5 2000
	@sh bench/ingress.sh build-release/sandnetd 5 5

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz build-release
