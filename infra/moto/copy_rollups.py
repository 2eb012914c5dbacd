"""Copies the daily roll-ups of an embedded store into a DynamoDB table.

For measuring `leadflow report` on DynamoDB at a size that cannot be played
through moto: `leadflow simulate` on moto runs an SLA check an hour, and moto
answers an index query by scanning the whole table, so a year of 50,000 leads
would take days. A report reads only roll-up items, so the same items (in the
same layout the DynamoDB store writes: partition `ROLLUP#YYYY-MM`, sort key
`KIND#YYYY-MM-DD[#VALUE]#SHARD`, a number attribute `c:COUNTER` per counter) make the
same report workload (each roll-up as one shard, shard 0, where decisions
spread it over eight).

    AWS_ENDPOINT_URL=http://127.0.0.1:PORT python infra/moto/copy_rollups.py .leadflow/leads.db TABLE
"""

import sqlite3
import sys
from collections import defaultdict

import boto3


def main(db: str, table: str) -> None:
    rows = sqlite3.connect(db).execute("SELECT day, dim, counter, n FROM rollups")
    items: dict = defaultdict(dict)
    for day, dim, counter, n in rows:
        items[(day, dim)][f"c:{counter}"] = n
    dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
    with dynamodb.Table(table).batch_writer() as batch:
        for (day, dim), counters in items.items():
            kind, _, value = dim.partition("#")
            sk = f"all#{day}#0" if kind == "all" else f"{kind}#{day}#{value}#0"
            batch.put_item(Item={"pk": f"ROLLUP#{day[:7]}", "sk": sk, **counters})
    print(f"{len(items)} roll-ups copied")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
