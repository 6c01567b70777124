# notes-sync: every entry point a user needs. `make help` lists them.
#
# Tools come from pinned versions: Python venvs in .venv/ (scripts/venvs.sh) for the
# emulators, SAM CLI, cfn-lint, checkov, cargo-lambda and zig; crates from Cargo.lock.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
CARGO ?= cargo
export SAM_CLI_TELEMETRY := 0
# The targets below install the emulators first, so a missing venv is a failure there, never
# a skip (a plain `cargo test` on a fresh clone skips the emulator-backed tests and says so).
export NOTES_SYNC_REQUIRE_EMULATORS := 1
ORDERS := crates/sqs-partial-batch/examples

.PHONY: help demo build test example unit-test integration-test invoke lint fmt bench sam-build sam-build-x86 \
        sam-local-invoke emulators-up emulators-down clean fuzz soak

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

demo: ## The whole system locally: workload, retries, DLQ, alarm, SNS, redrive, the notes client offline and through the sync API (no AWS, no Docker)
	scripts/venvs.sh localstack moto scripts tools
	$(CARGO) build --locked --workspace --bins
	.venv/scripts/bin/python scripts/demo.py

build: ## Build the consumer and the notes CLI (debug): target/debug/consumer, target/debug/notes
	$(CARGO) build --locked --workspace --bins

test: ## Every test: unit, integration (LocalStack + moto), template relations, sample events, the engine crate's docs and example
	scripts/venvs.sh localstack moto scripts tools
	$(CARGO) test --locked --workspace --all-targets
	$(CARGO) test --locked --doc -p sqs-partial-batch
	$(MAKE) example
	scripts/invoke.sh

example: ## The engine crate's example: order events (not notes) through sqs-partial-batch, response checked
	$(CARGO) run --locked -q -p sqs-partial-batch --example orders -- $(ORDERS)/orders-event.json 2>/dev/null \
	  | tail -n 1 | diff - $(ORDERS)/orders-event.expected.json
	@echo "example orders: the response is the expected one"

unit-test: ## Unit tests only (no emulators)
	$(CARGO) test --locked --workspace --lib

integration-test: ## Integration tests against LocalStack and moto
	scripts/venvs.sh localstack moto scripts
	$(CARGO) test --locked --test consumer --test client --test client_system

invoke: ## Each events/*.json through `cargo lambda watch`, responses compared with *.expected.json
	scripts/invoke.sh

lint: ## rustfmt, clippy, the engine crate's docs and package, the template linters (sam validate --lint, cfn-lint, checkov), cargo deny
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	$(CARGO) clippy --locked -p sqs-partial-batch --no-default-features --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --locked --no-deps -p sqs-partial-batch
	$(CARGO) package --locked --list --allow-dirty -p sqs-partial-batch >/dev/null
	scripts/lint.sh
	scripts/deny.sh

# -close_fd_mask=1: the engine prints an EMF metrics line per batch to stdout.
# The venvs' directory, as scripts/venvs.sh reads it.
VENV_DIR ?= $(CURDIR)/.venv
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := message engine
fuzz: ## Fuzz smoke: each cargo-fuzz target for FUZZ_SECONDS (default 30) from its seeds (regressions run in make test)
	VENV_DIR=$(VENV_DIR) scripts/venvs.sh fuzz
	cd fuzz && for target in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$target; \
	  RUSTC_BOOTSTRAP=1 $(VENV_DIR)/fuzz/bin/cargo-fuzz run --release $$target corpus/$$target seeds/$$target \
	    -- -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -print_final_stats=1 -close_fd_mask=1 || exit 1; \
	done

SOAK_ARGS ?=
soak: ## Soak: 3 competing consumers, thousands of notes out of order and twice, malformed ones, store outages, SIGKILLs; a ledger, lost = 0 (SOAK_ARGS="--notes 20000 --seconds 900" for longer)
	scripts/venvs.sh localstack moto scripts
	$(CARGO) build --locked --workspace --bins
	.venv/scripts/bin/python scripts/soak.py $(SOAK_ARGS)

fmt: ## Format the code
	$(CARGO) fmt

bench: ## Release benches: consumer vs a naive floor (time and instructions), the sync API's push (criterion), the outbox at scale, cold init, peak RSS, sizes, the API end to end; ARM64=1 adds the arm64 zip
	$(if $(filter 1,$(ARM64)),scripts/sam-build.sh arm64)
	$(CARGO) bench --locked --bench consumer
	# The same consumers in instructions per invocation (callgrind): repeatable where time is not.
	scripts/bench-instructions.sh
	$(CARGO) bench --locked --bench api
	$(CARGO) bench --locked -p notes-client --bench outbox
	# After the benches: they build target/release/{consumer,api} too, with the bench profile (symbols kept).
	$(CARGO) build --locked --release --bin consumer --bin api
	python3 scripts/bench-runtime.py
	scripts/venvs.sh localstack moto scripts tools
	.venv/scripts/bin/python scripts/bench-api.py

sam-build: ## sam build for arm64 (the deployed architecture), offline with cargo-lambda + zig
	scripts/sam-build.sh arm64

sam-build-x86: ## sam build for x86_64 (what sam local invoke runs here)
	scripts/sam-build.sh x86_64

sam-local-invoke: ## sam local invoke with every event in events/ (Docker; stand-in base image offline)
	scripts/sam-local-invoke.sh

emulators-up: ## Start LocalStack (127.0.0.1:4566) and moto (127.0.0.1:5000), and provision them
	scripts/emulators.sh up
	scripts/emulators.sh provision

emulators-down: ## Stop the emulators started by emulators-up
	scripts/emulators.sh down

clean: ## Remove build outputs and local state (keeps the venvs)
	$(CARGO) clean
	rm -rf .aws-sam .local
