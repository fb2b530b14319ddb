"""A member of a faust worker's consumer group that subscribes only to one table's changelog.

faust's assignor keeps a worker's input partitions and its tables' partitions of the same
number together only while every member subscribes the same topics (and the leader's
metadata lists them all). A member like this one, a real faust app in the same group with
a narrower subscription (as during a deploy that adds a table), makes the assignor spread
that changelog on its own: the worker then gets input partitions without their table
partitions, the split that let a MAASP worker judge annuli without their runtime state.

    python -m tests.support.partial_member <app id> <bootstrap> <table> <partitions> <datadir>

It serves nothing and processes nothing; SIGTERM stops it (faust's worker).
"""

import sys

import faust


def main() -> None:
    app_id, bootstrap, table, partitions, datadir = sys.argv[1:]
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        topic_partitions=int(partitions),
        topic_replication_factor=1,
        key_serializer="raw",
        value_serializer="raw",
        datadir=datadir,
    )
    app.Table(table, default=None, partitions=int(partitions), key_type=bytes)
    faust.Worker(app, loglevel="info", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
