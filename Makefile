# homae_ros: the README's commands. Every target sets itself up from nothing (make setup).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
# Every command below runs inside the venv with the colcon install space sourced.
ROSENV  := set +u; export VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH=$(CURDIR)/$(VENV)/bin:$$PATH \
           AMENT_PREFIX_PATH=$(CURDIR)/$(VENV)$${AMENT_PREFIX_PATH:+:$$AMENT_PREFIX_PATH}; \
           source install/setup.bash; set -u;
PYTEST_ARGS ?=

.PHONY: help setup test lint format demo demo-multicam bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 10

setup:  ## create .venv, install the pinned dependencies, colcon-build the ROS package (fast when done)
	@bash scripts/setup.sh

test: setup  ## run the whole test suite (pytest, incl. real rclpy nodes over loopback)
	@$(ROSENV) python -m pytest $(PYTEST_ARGS)

lint: setup  ## ruff check + format check
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: setup  ## apply ruff's formatting and safe fixes
	@$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

demo: setup  ## run the main job on the bundled default (see README)
	@$(ROSENV) python -m homae_ros.demo

demo-multicam: setup  ## two cameras, two nodes and homae_fusion; writes demo_out_multicam/
	@$(ROSENV) python -m homae_ros.demo.multicam

bench: setup  ## measure speed and memory, write benchmarks/results.json
	@$(ROSENV) python -m benchmarks.run

clean:  ## remove build outputs (keeps .venv)
	rm -rf build install log demo_out demo_out_multicam .pytest_cache
