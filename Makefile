# One-command set-up: `make serve` and `make test` work on a fresh machine with
# python3, make, node/npm and apt.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
KAFKAJS_DIR := tests/integration/kafkajs

.PHONY: system-tools install install-test serve test test-slow test-interop test-differential compatibility test-quick test-unit test-kafka kafka bench bench-curves bench-group-join bench-lifecycle bench-fetch-sessions bench-streams bench-streams-failover bench-security bench-connect clean

$(BIN)/tomyum: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

install: $(BIN)/tomyum

$(VENV)/.test-installed: $(BIN)/tomyum pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

# KafkaJS (npm) for the real-client tests.
$(VENV)/.clients-installed: $(KAFKAJS_DIR)/package-lock.json
	cd $(KAFKAJS_DIR) && npm ci --no-audit --no-fund --silent
	@touch $@

# Debian packages the tests drive: kcat (a real client), chromium (the console's browser
# tests; Playwright drives it, never a browser of its own), prometheus and promtool (the
# /metrics tests), PostgreSQL (tomyum connect's PostgreSQL tests: each starts its own server,
# initdb + postgres with wal_level=logical, on a free port in a temp dir); checked on every
# run, installed when one is missing
system-tools:
	@if ! command -v kcat >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1 \
		|| ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1 \
		|| ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq kcat chromium postgresql \
		&& $$SUDO apt-get install -y -qq --no-install-recommends prometheus; \
	fi

install-test: $(VENV)/.test-installed $(VENV)/.clients-installed system-tools

serve: install
	$(BIN)/tomyum serve --listen 127.0.0.1:9092 --data-dir ./data --set group.initial.rebalance.delay.ms=0 --set metrics.listener=127.0.0.1:9644 --set console.listener=127.0.0.1:9645

# each test target also leaves its results in build/junit/, which `make compatibility` reads
JUNIT := build/junit

# the suite but its long runs (kill -9 cycles, the 100,000-frame fuzz, the streams process
# tests: `make test-slow`, which CI runs too), so that it stays under 15 minutes; both run on
# both cores (pytest-xdist: most tests wait on brokers and clients, not on the CPU)
test: install-test
	$(BIN)/python -m pytest -q -n 2 -m "not slow" --ignore=tests/interop --junitxml=$(JUNIT)/test.xml tests

test-slow: install-test
	$(BIN)/python -m pytest -q -n 2 -m slow --ignore=tests/interop --junitxml=$(JUNIT)/test-slow.xml tests

# clients in other languages (Java kafka-clients, Kafka's tools and Streams; Go's franz-go,
# sarama, kafka-go) against tomyum; their jars and modules are fetched on first use
test-interop: install-test
	$(BIN)/python -m pytest -q --junitxml=$(JUNIT)/interop.xml tests/interop

# docs/compatibility.md's client × capability matrix from the results the test targets left
# (run `make test test-interop` first; test-slow's are used when there)
compatibility: $(VENV)/.test-installed
	$(BIN)/python -m tests.interop.matrix --write docs/compatibility.md $(wildcard $(JUNIT)/*.xml)

# the differential protocol harness alone (also part of test-interop): every API key tomyum serves,
# at its lowest and highest version, in scripted raw sessions sent to tomyum and to Apache Kafka
# side by side, answers compared field by field (tests/interop/differential). Needs java, mvn.
test-differential: install-test
	$(BIN)/python -m pytest -q tests/interop/differential

# Apache Kafka (the version tests/peers/kafka/pom.xml pins; jars fetched with Maven on first use)
# as the oracle: the client integration suite against it, tomyum-only tests skipped. Needs java, mvn.
# One broker serves the whole run (~11 min), so tests name their own topics and groups; the
# slowest tests are listed, to spot one much slower on Kafka than on tomyum.
KAFKA_PEER := $(BIN)/python -m tomyum.testing.kafka_peer

kafka: install
	$(KAFKA_PEER) serve

test-kafka: install-test
	$(KAFKA_PEER) run -- $(BIN)/python -m pytest -q --durations=25 tests/integration

test-unit: $(VENV)/.test-installed
	$(BIN)/python -m pytest -q tests/unit

# an alias of `make test`, kept for habits
test-quick: test

bench: $(VENV)/.test-installed
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.throughput --write docs/benchmarks.md
	$(BIN)/python -m benchmarks.service --write docs/benchmarks.md
	$(BIN)/python -m benchmarks.small_requests --write docs/benchmarks.md
	$(BIN)/python -m benchmarks.streams --write docs/benchmarks.md

# produce/consume over PLAINTEXT, SSL and SASL_SSL (~3 min; not part of `make bench`)
bench-security: $(VENV)/.test-installed
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.security --write docs/benchmarks.md

# broker RSS vs partitions and idle connections, Metadata time vs topics, start-up vs partitions
# and data (issue 22; ~5 min; not part of `make bench`): PNGs in docs/benchmarks/
bench-curves: $(VENV)/.test-installed
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.cost_curves --write docs/benchmarks.md

# group join time vs members (1 → 100; classic eager and cooperative, KIP-848) on tomyum and
# Apache Kafka 4.4 (issue 22; ~5 min; not part of `make bench`): a PNG in docs/benchmarks/
bench-group-join: $(VENV)/.test-installed
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.group_join --write docs/benchmarks.md

# what incremental fetch sessions (KIP-227) save the broker per Fetch, 100 → 10,000 partitions
# (issue 22; ~8 min; not part of `make bench`): the table goes in docs/benchmarks.md by hand
bench-fetch-sessions: $(VENV)/.test-installed
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.fetch_sessions

bench-lifecycle: $(VENV)/.test-installed
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.lifecycle --write docs/benchmarks.md

# tomyum.streams beside Quix Streams (also part of `make bench`, ~2.5 min); Quix gets its own
# venv (.venv-quix, made by the benchmark): it pins confluent-kafka<2.13, tomyum needs >=2.16
bench-streams: $(VENV)/.test-installed
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.streams --write docs/benchmarks.md

# restore after a kill -9 fail-over, with and without a standby replica, 10^6 keys (~5 min; not
# part of `make bench`)
bench-streams-failover: $(VENV)/.test-installed
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.streams_failover --keys 1000000 --write docs/benchmarks.md

# tomyum connect beside Kafka Connect's worker (FileStream source and sink, Debezium's PostgreSQL
# CDC) on one tomyum broker, 3 rounds (~6 min; not part of `make bench`). Needs java, mvn and PostgreSQL
# (make install-test); Kafka Connect's and Debezium's jars are fetched with Maven on first use
bench-connect: install-test
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.connect --write docs/benchmarks.md

clean:
	rm -rf $(VENV) .venv-quix $(KAFKAJS_DIR)/node_modules
