"""bench/run --quick --smoke: the benchmark still runs and prints a well-formed table.

Nothing about speed is asserted (tests do not time anything); this only keeps bench/ from
rotting: every row has every column, every number parses, every target has a verdict.
"""
import os
import re
import subprocess

import pytest

from harness.daemon import tandem_binary
from harness.interop import have_postfix_tools

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NUMBER = re.compile(r"^(n/a|-?\d+(\.\d+)?|)$")

pytestmark = [pytest.mark.needs_tandem,
              pytest.mark.skipif(not have_postfix_tools(), reason="Postfix tools not extracted")]


def md_tables(text):
    """Every Markdown table in text, as lists of rows of cells."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif current:
            tables.append(current)
            current = []
    return tables


def check_table(rows, first_columns):
    header, rule, body = rows[0], rows[1], rows[2:]
    assert header[:len(first_columns)] == first_columns
    assert all(set(c) <= set("-:") and c for c in rule) and len(rule) == len(header)
    assert body, "the table has no rows"
    for row in body:
        assert len(row) == len(header), row
    return header, body


def test_bench_smoke_run_prints_a_well_formed_table(tmp_path):
    out = tmp_path / "smoke.md"
    p = subprocess.run([os.path.join(REPO, "bench", "run"), "--quick", "--smoke", "--no-deps",
                        "--haproxy", "--tandem-bin", tandem_binary(), "--out", str(out)],
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    assert p.returncode == 0, p.stderr[-4000:]

    printed = md_tables(p.stdout)
    written = md_tables(out.read_text())
    assert printed and printed[0] == written[0], "stdout and the results file disagree"

    header, body = check_table(written[0], ["scenario", "server", "msg/s", "p50 ms", "p99 ms"])
    numeric = [i for i, h in enumerate(header) if h not in ("scenario", "server", "noise", "notes")]
    for row in body:
        for i in numeric:
            assert NUMBER.match(row[i]), f"{header[i]} = {row[i]!r} in {row}"
    servers = {row[1] for row in body}
    assert {"smtp-sink (direct)", "tandem cutthrough", "tandem store-and-forward"} <= servers
    assert all(row[2] != "n/a" for row in body if row[1] == "smtp-sink (direct)")
    behind = [row for row in body if row[1].startswith("HAProxy + ")]   # issue 15: the proxy hop
    assert {row[1] for row in behind} == {"HAProxy + 1 tandem node (cutthrough)",
                                          "HAProxy + 2 tandem nodes (cutthrough)"}
    assert all(row[2] != "n/a" and "per node" in row[-1] for row in behind), behind

    _, targets = check_table(written[1], ["target", "measured", "result"])
    assert len(targets) == 6
    assert all(row[2] in ("PASS", "FAIL", "n.a.") for row in targets)

    text = out.read_text()
    for section in ("## Machine", "## Idle sessions", "## Concurrent cutthrough sessions",
                    "## Method"):
        assert section in text
    assert os.path.exists(out.with_suffix(".json"))
