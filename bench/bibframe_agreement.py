"""Per-field agreement of our BIBFRAME->MARC mapping with the records LoC's converter started from.

Maps the corpus regression fixture (tests/fixtures/bibframe/corpus-regression-*) back to MARC
and prints, per field, on how many records our MARC and the source agree, as the Markdown
table docs/bibframe-mapping.md carries. `--diff FIELD` lists the records that disagree.

    .venv/bin/python bench/bibframe_agreement.py [--diff "260/264"]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.bibframe_agreement import agreement, disagreements, load_source, map_back


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--diff", help="list the records that disagree on this field")
    args = parser.parse_args()
    source = load_source()
    with tempfile.TemporaryDirectory() as workdir:
        ours, reasons = map_back(Path(workdir))
    print(f"{len(source)} source records, {len(ours)} mapped back, rejected: {reasons or 0}")
    print("| field | agree | of | % |\n|---|---|---|---|")
    for name, result in agreement(source, ours).items():
        print(f"| {name} | {result.agreed} | {result.compared} | {100 * result.rate:.1f} |")
    if args.diff:
        for key, expected, got in disagreements(source, ours, args.diff):
            print(f"{key}\n  source: {expected}\n  ours:   {got}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
