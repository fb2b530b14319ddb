# The few verbs people expect. Everything runs from the project's own virtualenv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup up down status demo test test-unit test-fault test-scale soak bench measure-alarms lint format clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

up: setup          ## start Kafka, PostgreSQL and the five services; wait until all are ready
	$(BIN)/wims up

demo: setup        ## the stack, a seeded 20-well field and the SCADA simulator with incidents
	$(BIN)/wims demo

down:              ## stop everything `make up` started
	@test -x $(BIN)/wims && $(BIN)/wims down || true

status:
	$(BIN)/wims status

# Each integration module gets a Kafka broker and a PostgreSQL of its own (a fresh stack per
# pytest session), so no module's leftover traffic on the topics decides another's outcome;
# two lanes of modules run at once on ports apart (tests/support/integration_lanes.sh).
test: setup        ## the whole suite against a real Kafka and a real PostgreSQL
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)
	bash tests/support/integration_lanes.sh $(BIN)/python $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m "not fault" tests/e2e $(PYTEST_ARGS)
	$(BIN)/python -m pytest tests/browser $(PYTEST_ARGS)

test-unit: setup
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-fault: setup  ## fault-injection end-to-end tests alone
	$(BIN)/python -m pytest -m fault $(PYTEST_ARGS)

# Not part of `make test` (minutes): two processes of each stream worker and of ingest under
# load, through a SIGKILL, a start and a graceful stop; prints the pause of each event.
test-scale: setup  ## scale-out test (tests/scale): nothing lost or doubled as processes come and go
	$(BIN)/python -m pytest -m scale tests/scale -s $(PYTEST_ARGS)

# Not part of `make test` (and not of CI): minutes of steady load with worker kills and a
# broker restart; SOAK_ARGS="--minutes 3" shortens it (tests/soak/__main__.py).
soak: setup        ## bounded soak: steady push, config edits, kills, broker restart; exit 1 on loss
	$(BIN)/python -m tests.soak $(SOAK_ARGS)

bench: setup
	$(BIN)/python -m bench

# Minutes of `wims demo` from a clean start; prints the alerts per kind and well.
measure-alarms: setup  ## alarm load of the demo (ALARMS_ARGS="--minutes 6")
	$(BIN)/python -m bench.alarms $(ALARMS_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: down
	rm -rf "$${WIMS_RUN_DIR:-.run}"
