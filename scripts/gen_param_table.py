#!/usr/bin/env python3
"""Keep the README parameter table and config/homae.yaml in step with homae_ros/node/params.py.

    python scripts/gen_param_table.py           # rewrite the table in README.md
    python scripts/gen_param_table.py --check   # exit 1 if the table or the YAML drifted

The table goes between the lines `<!-- params:begin -->` and `<!-- params:end -->` of the
README (a "## Parameters" section with both markers is appended when they are missing). The
YAML (`homae_node: ros__parameters:`) must list exactly the declared parameters, each with the
declared default and type.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from homae_ros.node.params import PARAMETERS, ParamSpec, markdown_table  # noqa: E402

BEGIN = "<!-- params:begin -->"
END = "<!-- params:end -->"
NODE_NAME = "homae_node"


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested YAML mappings -> {"a.b": value} (ROS accepts both spellings)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def load_yaml_parameters(path: Path, node_name: str = NODE_NAME) -> dict[str, Any]:
    """{parameter: value} from a ROS parameter YAML file (`<node>: ros__parameters: ...`)."""
    data = yaml.safe_load(path.read_text()) or {}
    try:
        params = data[node_name]["ros__parameters"]
    except (KeyError, TypeError):
        raise ValueError(f"{path}: no '{node_name}: ros__parameters:' section") from None
    return flatten(params or {})


def _same(spec: ParamSpec, value: Any) -> bool:
    """YAML value equals the declared default, with the type rclpy would infer."""
    default = spec.default
    if spec.type == "double":
        return isinstance(value, float) and value == default
    if spec.type == "integer":
        return isinstance(value, int) and not isinstance(value, bool) and value == default
    if spec.type == "double_array":
        return (
            isinstance(value, list)
            and all(isinstance(v, float) for v in value)
            and value == default
        )
    return type(value) is type(default) and value == default


def yaml_problems(path: Path) -> list[str]:
    """Differences between the YAML file and PARAMETERS (empty list = consistent)."""
    if not path.is_file():
        return [f"{path}: file not found"]
    try:
        values = load_yaml_parameters(path)
    except (ValueError, yaml.YAMLError) as e:
        return [str(e)]
    declared = {p.name: p for p in PARAMETERS}
    problems = [
        f"{path}: '{n}' is not a declared parameter" for n in sorted(set(values) - set(declared))
    ]
    problems += [
        f"{path}: declared parameter '{n}' is missing" for n in sorted(set(declared) - set(values))
    ]
    for name in sorted(set(values) & set(declared)):
        spec = declared[name]
        if not _same(spec, values[name]):
            problems.append(
                f"{path}: '{name}' is {values[name]!r}, declared default is {spec.default!r} "
                f"({spec.type})"
            )
    return problems


def render_readme(text: str) -> str:
    """README text with the table between the markers replaced (section appended if absent)."""
    block = f"{BEGIN}\n{markdown_table()}{END}"
    if BEGIN in text and END in text and text.index(BEGIN) < text.index(END):
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        return head + block + tail
    sep = "" if text.endswith("\n") or not text else "\n"
    return f"{text}{sep}\n## Parameters\n\n{block}\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 drift, 2 usage error)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check; exit 1 on drift")
    ap.add_argument("--readme", type=Path, default=REPO / "README.md")
    ap.add_argument("--yaml", type=Path, default=REPO / "config" / "homae.yaml")
    args = ap.parse_args(argv)

    problems = yaml_problems(args.yaml)
    text = args.readme.read_text() if args.readme.is_file() else ""
    wanted = render_readme(text)
    if args.check:
        if not args.readme.is_file():
            problems.append(f"{args.readme}: file not found")
        elif BEGIN not in text or END not in text:
            problems.append(f"{args.readme}: no {BEGIN} / {END} markers")
        elif wanted != text:
            problems.append(
                f"{args.readme}: parameter table is out of date (run {Path(__file__).name})"
            )
    elif wanted != text:
        args.readme.write_text(wanted)
        print(f"updated the parameter table in {args.readme}")
    for p in problems:
        print(f"drift: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
