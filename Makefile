# Hiscore — the two set-up commands are `make run` and `make test` (see README.md).
SWIFT ?= swift
PYTHON ?= python3
DATA_DIR ?= ./hiscore-data

.PHONY: run test deps test-deps build release proto test-swift test-clients bench clean

run: deps release
	./.build/release/hiscored --data-dir $(DATA_DIR)

test: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	$(MAKE) test-clients

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

clean:
	rm -rf .build
