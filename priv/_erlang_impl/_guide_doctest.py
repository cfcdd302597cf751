"""Runs a ``>>>`` session from a guide with doctest (used by the test suite).

Lives in the package so the examples run exactly where users' code runs:
inside the Erlang VM, under the sandbox.
"""

import doctest
import io


def run(text, name):
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {"__name__": "__guide__"}, name, name, 0)
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test, out=out.write)
    result = runner.summarize(verbose=False)
    return (result.attempted, result.failed, out.getvalue())
