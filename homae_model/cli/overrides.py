"""Dotted ``KEY=VALUE`` config overrides on the command line, shared by the homae-* commands.

``homae-train --config config/model/small.yaml model.masking.enabled=false train.lr=1e-4``: the
positional ``KEY=VALUE`` items after the options are applied, in order, after the config file
(`homae_model.config.load_config`). Values are YAML (``false``, ``1e-4``, ``null``, ``[a, b]``);
an unknown key is refused with the nearest valid ones.
"""

from __future__ import annotations

import argparse
import textwrap

OVERRIDES_DEST = "overrides"
"""`argparse.Namespace` attribute holding the override items (a list of str)."""


def add_overrides_argument(
    parser: argparse.ArgumentParser,
    applied_to: str,
    example: str,
    note: str = "",
    keys: str = "homae_model/config/schema.py (sections model, loss, train, data, mano)",
) -> None:
    """Add the positional ``KEY=VALUE ...`` argument and an example to `parser`'s help.

    Args:
        parser: the command's parser (parse with `parse_intermixed_args`, so that overrides
            may stand before or after options).
        applied_to: what the overrides are applied after, e.g. "--config".
        example: a full example command line.
        note: a further sentence for the help (e.g. where the resolved config is saved).
        keys: where the valid keys are listed.
    """
    parser.add_argument(
        OVERRIDES_DEST,
        nargs="*",
        metavar="KEY=VALUE",
        help=f"dotted config overrides applied after {applied_to}, in order (see below)",
    )
    prose = (
        f"KEY=VALUE items change single config values after {applied_to}; values are YAML "
        "(true/false, 1e-4, null, [a, b]). " + (f"{note} " if note else "") + f"Valid keys: "
        f"{keys}; an unknown key is an error naming the nearest valid ones."
    )
    lines = textwrap.wrap(prose, 78, initial_indent="  ", subsequent_indent="  ")
    text = "config overrides (KEY=VALUE):\n" + "\n".join(lines) + f"\n  example:\n    {example}"
    parser.epilog = f"{parser.epilog}\n\n{text}" if parser.epilog else text
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
