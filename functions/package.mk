# Included by the functions' Makefiles. `$(call ship,<package>)` copies the modules of
# functions/<package> (not its app.py) into the artifact under the path they have in the
# repository, so a handler imports them as `functions.<package>.<module>` in Lambda, in the tests
# and in the local stack alike. An artifact holds its handler, its own package and the shared
# packages it imports, nothing else. SAM runs make with the source Makefile (--makefile), so the
# included file's own location finds the sources even when the build runs in a scratch copy.
FUNCTIONS_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))

ship = mkdir -p "$(ARTIFACTS_DIR)/functions/$(1)" && touch "$(ARTIFACTS_DIR)/functions/__init__.py" && \
	for module in "$(FUNCTIONS_DIR)/$(1)"/*.py; do \
		[ "$$(basename "$$module")" = app.py ] || cp "$$module" "$(ARTIFACTS_DIR)/functions/$(1)/"; \
	done

PIP ?= python3 -m pip

# A function's own dependencies (its requirements.txt) as wheels for the Lambda target
# (python3.13, arm64); the build target compiles the whole artifact for 3.13 last
# (make/python313.mk, which fails the build when no python3.13 is at hand).
define install_requirements
$(PIP) install --quiet --no-compile --only-binary=:all: --implementation cp \
	--platform manylinux2014_aarch64 --python-version 3.13 \
	--target "$(ARTIFACTS_DIR)" -r requirements.txt
endef
