"""Runs the DuckDB queries of the README's "Audit trail" section against an audit directory.

Usage: queries.py AUDIT_DIR README_PATH

Every ```sql block in that section is run with AUDIT_DIR substituted; each prints one JSON
line {"query": <the line describing it>, "rows": [...]} with rows as objects by column.
Exits non-zero if the section has no queries or any query fails, so the README's examples
cannot rot.
"""

import datetime
import decimal
import json
import re
import sys

import duckdb


def audit_section(readme: str) -> str:
    start = readme.find("\n## Audit trail")
    if start < 0:
        sys.exit("README has no '## Audit trail' section")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end >= 0 else len(readme)]


def queries(section: str):
    """(description, sql): the description is the paragraph just before the block."""
    for match in re.finditer(r"```sql\n(.*?)```", section, re.DOTALL):
        paragraph = []
        for line in reversed(section[: match.start()].rstrip().splitlines()):
            if not line.strip():
                break
            paragraph.insert(0, line.strip())
        description = " ".join(paragraph) or match.group(1).splitlines()[0]
        yield description, match.group(1)


def plain(value):
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def main() -> int:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    audit_dir, readme_path = sys.argv[1], sys.argv[2]
    with open(readme_path, encoding="utf-8") as f:
        found = list(queries(audit_section(f.read())))
    if not found:
        sys.exit("no ```sql blocks in the README's Audit trail section")
    failed = 0
    con = duckdb.connect()
    for description, sql in found:
        try:
            cursor = con.execute(sql.replace("AUDIT_DIR", audit_dir))
            columns = [d[0] for d in cursor.description]
            rows = [dict(zip(columns, map(plain, row))) for row in cursor.fetchall()]
            print(json.dumps({"query": description, "rows": rows}))
        except duckdb.Error as e:
            failed += 1
            print(json.dumps({"query": description, "error": str(e)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
