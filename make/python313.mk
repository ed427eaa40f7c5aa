# Included by every function's and the layer's Makefile (sam build, BuildMethod: makefile).
# /opt and /var/task are read-only on Lambda: modules without shipped bytecode are compiled again on
# every cold start (about +1 s for the layer). So every build compiles what it ships for the runtime's
# Python 3.13, and fails when no python3.13 is at hand (PATH or pyenv; or pass PY313=/path/to/python3.13).
PY313 ?= $(shell for py in python3.13 $(HOME)/.pyenv/versions/3.13*/bin/python3.13; do \
	"$$py" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { echo "$$py"; break; }; done)
# First line of every build target.
REQUIRE_PY313 = @test -n "$(PY313)" || { echo "python3.13 not found: cannot ship bytecode for the Lambda runtime (install it, e.g. pyenv install 3.13, or pass PY313=...)" >&2; exit 1; }
# Last line: $(call COMPILE_313,<directory>)
COMPILE_313 = "$(PY313)" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(1)" >/dev/null
