"""Write docs/api.md from the docstrings of every public name in ``contract.__all__``.

Run: ``python tools/gen_api_docs.py``. tests/test_docs.py checks that every
public name has a docstring and appears in docs/api.md.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import contract

OUT = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def entry(name: str) -> str:
    """The Markdown section for one public name."""
    obj = getattr(contract, name)
    doc = inspect.getdoc(obj) or ""
    try:
        sig = f"{name}{inspect.signature(obj)}" if callable(obj) else name
    except (TypeError, ValueError):
        sig = name
    kind = "class" if inspect.isclass(obj) else "function" if callable(obj) else "value"
    if kind == "value":
        doc = doc if not isinstance(obj, dict) else f"Registry with keys: {', '.join(sorted(obj))}."
    return f"## `contract.{name}`\n\n*{kind}* `{sig}`\n\n{doc}\n"


def main() -> None:
    head = ("# API reference\n\nGenerated from the docstrings by `python tools/gen_api_docs.py`; "
            "every name in `contract.__all__`.\n\n")
    OUT.write_text(head + "\n".join(entry(n) for n in sorted(contract.__all__)))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
