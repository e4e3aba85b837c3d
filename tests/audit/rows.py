"""Prints every audit row the agent wrote under DIR as one JSON object per line, read with
real DuckDB (what an operator would use). Usage: rows.py DIR
"""

import json
import sys

import duckdb

rows = duckdb.sql(
    f"""
    select session, request_id, direction, kind, transport, server_name, server_addr,
           method, tool, payload, status, error_code, decision, rules, masked_count,
           mask_rules, sub, email, issuer, pid, uid, "user", comm, exe, cgroup,
           hex(hash) as hash
    from read_parquet('{sys.argv[1]}/**/*.parquet', hive_partitioning = true)
    order by time
    """
)
columns = rows.columns
for row in rows.fetchall():
    print(json.dumps(dict(zip(columns, row)), default=str))
