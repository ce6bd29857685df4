# Hiscore — the two set-up commands are `make run` and `make test` (see README.md).
SWIFT ?= swift
DATA_DIR ?= ./hiscore-data

.PHONY: run test deps test-deps build release proto test-swift test-clients bench fuzz fuzz-replay clean

run: deps release
	./.build/release/hiscored --data-dir $(DATA_DIR)

# Builds everything, runs the Python and C client suites against a real hiscored, then the Swift
# suites (last, so the run ends with Swift Testing's summary line). The release hiscored is built
# too: the steady-state allocation test runs it (unoptimized code allocates where optimized code
# does not).
test: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) build -c release --product hiscored
	$(MAKE) test-clients
	$(SWIFT) test --skip-build

deps:
	@./scripts/install-deps.sh

test-deps:
	@./scripts/install-deps.sh --test

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

proto: deps
	./scripts/gen-proto.sh

# Client test suites (Python, C) run against a real hiscored; added with the clients.
test-clients:
	@if [ -x clients/run-tests.sh ]; then ./clients/run-tests.sh; fi

# Hiscore and Redis side by side (release builds, 1M players), with the default two shards and
# then one (the like-for-like with single-threaded Redis on a 2-core machine shared with the load
# generator); writes both sections of docs/benchmarks.md.
bench: test-deps
	./scripts/bench.sh
	SHARDS=1 MARK=:one-shard BUILD=0 ./scripts/bench.sh

FUZZ_SECONDS ?= 60

# libFuzzer + ASan over preface, framing and envelope decoding (scratch path .build-fuzz);
# exits 1 on a crash (saved in fuzz/crashes/). FuzzRegressionTests replays fuzz/ in `make test`.
fuzz: deps
	./fuzz/run.sh $(FUZZ_SECONDS)

fuzz-replay: deps
	./fuzz/run.sh --replay

clean:
	rm -rf .build .build-fuzz
