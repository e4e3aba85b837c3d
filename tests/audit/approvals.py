"""The README's question, asked of the audit trail with real DuckDB: which approvals did
USER grant in the last week, for which tools. Usage: approvals.py DIR USER
Prints one JSON object per grant.
"""

import json
import sys

import duckdb

rows = duckdb.execute(
    f"""
    select payload->>'$.approval' as approval, tool, server_name,
           "user" as requester, time
    from read_parquet('{sys.argv[1]}/**/*.parquet', hive_partitioning = true)
    where decision = 'approval_granted'
      and payload->>'$.approver.user' = ?
      and time >= now() - interval 7 days
    order by time
    """,
    [sys.argv[2]],
)
columns = [d[0] for d in rows.description]
for row in rows.fetchall():
    print(json.dumps(dict(zip(columns, row)), default=str))
