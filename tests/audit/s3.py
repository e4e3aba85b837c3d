"""The bucket side of tests/audit_ship.rs, through boto3 (the AWS SDK) against the loopback
S3-compatible server, and DuckDB over the objects as a fleet's analyst would read them.

Usage: s3.py ENDPOINT BUCKET COMMAND [ARGS]
  create [lock]            make the bucket (with object lock: versioned, lockable)
  objects                  JSON {key: {"size", "versions", "sha256"}} of every object
  retention KEY            JSON {"mode", "until", "delete_refused"}: KEY's object-lock
                           retention, and whether deleting its version was refused
  query PREFIX             download PREFIX to a temp dir, then one DuckDB query over all
                           hosts (hive partitions host=, dt=): JSON [{"host", "rows", "days"}]
  sync PREFIX DEST         download PREFIX under DEST (keys as paths)
  delete KEY               delete KEY (every version, bypassing governance retention)
  replace KEY FILE         upload FILE's bytes under KEY
  readme PREFIX SQLFILE    download PREFIX, then run SQLFILE (README's fleet query: its
                           CREATE SECRET dropped, its s3:// bucket URL pointed at the copy):
                           JSON list of row objects
  iam-key                  (moto with IAM auth on) a user allowed s3:*, and its access key:
                           JSON {"access_key_id", "secret_access_key"}
"""

import json
import os
import sys
import tempfile

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

import boto3  # noqa: E402

endpoint, bucket, command, *args = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def keys(prefix=""):
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield obj["Key"]


def sync(prefix, dest):
    for key in keys(prefix):
        path = os.path.join(dest, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        s3.download_file(bucket, key, path)


if command == "create":
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=args[:1] == ["lock"])
elif command == "objects":
    out = {}
    versions = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            versions[v["Key"]] = versions.get(v["Key"], 0) + 1
    for key in keys():
        head = s3.head_object(Bucket=bucket, Key=key)
        out[key] = {
            "size": head["ContentLength"],
            "versions": versions.get(key, 1),
            "sha256": head.get("Metadata", {}).get("gateway-sha256"),
        }
    print(json.dumps(out))
elif command == "retention":
    head = s3.head_object(Bucket=bucket, Key=args[0])
    until = head.get("ObjectLockRetainUntilDate")
    # Deleting the locked version without the governance bypass must be refused.
    version = head.get("VersionId")
    try:
        s3.delete_object(Bucket=bucket, Key=args[0], VersionId=version)
        refused = False
    except s3.exceptions.ClientError:
        refused = True
    print(json.dumps({
        "mode": head.get("ObjectLockMode"),
        "until": until.isoformat() if until else None,
        "delete_refused": refused,
    }))
elif command == "query":
    import duckdb

    with tempfile.TemporaryDirectory() as tmp:
        sync(args[0], tmp)
        root = os.path.join(tmp, args[0])
        rows = duckdb.sql(
            f"""
            select host, count(*) as rows, list(distinct dt order by dt) as days
            from read_parquet('{root}/*/*/*.parquet', hive_partitioning = true,
                              union_by_name = true)
            group by host order by host
            """
        ).fetchall()
        print(json.dumps([{"host": h, "rows": n, "days": [str(d) for d in ds]} for h, n, ds in rows]))
elif command == "readme":
    import duckdb

    with tempfile.TemporaryDirectory() as tmp:
        sync(args[0], tmp)
        root = os.path.join(tmp, args[0])
        with open(args[1]) as f:
            sql = f.read()
        statements = [s.strip() for s in sql.split(";") if s.strip()]
        query = [s for s in statements if not s.upper().startswith("CREATE SECRET")]
        assert len(query) == 1, query
        query = query[0].replace("s3://corp-mcp-audit/gateway-audit/", root + "/")
        result = duckdb.sql(query)
        names = result.columns
        rows = [dict(zip(names, row)) for row in result.fetchall()]
        print(json.dumps(rows, default=str))
elif command == "sync":
    sync(args[0], args[1])
elif command == "delete":
    listed = s3.list_object_versions(Bucket=bucket, Prefix=args[0]).get("Versions", [])
    for v in listed:
        if v["Key"] == args[0]:
            s3.delete_object(
                Bucket=bucket, Key=args[0], VersionId=v["VersionId"], BypassGovernanceRetention=True
            )
elif command == "replace":
    with open(args[1], "rb") as f:
        s3.put_object(Bucket=bucket, Key=args[0], Body=f.read())
elif command == "iam-key":
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
    iam.create_user(UserName="shipper")
    key = iam.create_access_key(UserName="shipper")["AccessKey"]
    iam.put_user_policy(
        UserName="shipper",
        PolicyName="ship",
        PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }),
    )
    print(json.dumps({
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
    }))
else:
    sys.exit(f"unknown command {command}")
