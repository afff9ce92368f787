"""Summarise an Autobahn report folder (index.json plus one JSON per case).

    summary.py ROLE REPORT_DIR KNOWN_ISSUES_MD

Prints, per section 1-13, the count of each outcome, then one line
`autobahn ROLE: N cases, F failed, S non-strict`. Exits 1 on any FAILED or
NON-STRICT case (a failing behaviorClose counts as FAILED), unless the case
is listed in KNOWN_ISSUES_MD as "- `CASE`" with its evidence. UNIMPLEMENTED
is reported, not failed: sections 12-13 need permessage-deflate.
"""

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

OUTCOMES = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
CLOSE_OK = {"OK", "INFORMATIONAL", "UNIMPLEMENTED"}


def case_key(case_id):
    return tuple(int(part) for part in case_id.split("."))


def main():
    role, report_dir, known_md = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    known = set(re.findall(r"^- `([0-9.]+)`", known_md.read_text(), re.M)) if known_md.exists() else set()
    index = json.loads((report_dir / "index.json").read_text())
    if len(index) != 1:
        sys.exit(f"expected one agent in {report_dir / 'index.json'}, found {list(index)}")
    (agent, cases), = index.items()
    table = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    failed, non_strict, excused = [], [], []
    for case_id in sorted(cases, key=case_key):
        result = cases[case_id]
        behavior = result["behavior"]
        if result.get("behaviorClose") not in CLOSE_OK and behavior != "UNIMPLEMENTED":
            behavior = "FAILED"
        behavior = behavior if behavior in OUTCOMES else "FAILED"
        table[case_id.split(".")[0]][behavior] += 1
        if behavior in ("FAILED", "NON-STRICT"):
            if case_id in known:
                excused.append(case_id)
            elif behavior == "FAILED":
                failed.append(f"{case_id} ({result['behavior']}/{result.get('behaviorClose')})")
            else:
                non_strict.append(case_id)
    print(f"Autobahn, {role} role (agent {agent})")
    print(f"{'section':>8} " + " ".join(f"{o:>13}" for o in OUTCOMES))
    for section in sorted(table, key=int):
        print(f"{section:>8} " + " ".join(f"{table[section][o]:>13}" for o in OUTCOMES))
    for label, ids in (("FAILED", failed), ("NON-STRICT", non_strict), ("known runner issue", excused)):
        if ids:
            print(f"{label}: {', '.join(ids)}")
    print(f"autobahn {role}: {len(cases)} cases, {len(failed)} failed, {len(non_strict)} non-strict")
    sys.exit(1 if failed or non_strict else 0)


if __name__ == "__main__":
    main()
