"""The body of the ~PY sigil: run a block in __main__, return its last value."""

import ast

import __main__


def run(source):
    tree = ast.parse(source, "<~PY>", "exec")
    namespace = vars(__main__)
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr):
        head = ast.Module(body=tree.body[:-1], type_ignores=[])
        exec(compile(head, "<~PY>", "exec"), namespace)
        return eval(compile(ast.Expression(last.value), "<~PY>", "eval"), namespace)
    exec(compile(tree, "<~PY>", "exec"), namespace)
    return None
