"""moto's server, answering one request at a time.

DynamoDB applies each write to an item atomically, and leadflow relies on it
(an `ADD` or an `if_not_exists` update racing another write to the same item
loses nothing). moto's own server runs requests on threads without a lock, so
under heavy concurrency two updates of one item can interleave and one is lost,
or a request fails with an internal error. This server keeps moto's threaded
connection handling and runs the requests themselves one after another, which
gives every write the atomicity DynamoDB gives it.

moto also makes each `TransactWriteItems` copy every table it touches, once
per item in the transaction, so that it can roll back; on a table of 10,000
leads that is seconds per transaction. Here a transaction keeps a copy of the
items it touches instead, and puts them back when it is cancelled: the same
all-or-nothing outcome at a cost that does not grow with the table.

And moto delivers a topic's messages to SQS, HTTP and Lambda subscriptions but
drops those for `sms` subscriptions. Here an `sms` subscription whose filter
policy matches receives the message's `sms` body (for `MessageStructure: json`)
as an SMS to its phone number, recorded where moto records SMS sent directly,
so that tests read it back from `/moto-api/data.json` as SNS would send it.

(The moto version is pinned in tests/run.sh; these changes rely on its
internals.)

    python serial_server.py [-H HOST] [-p PORT]
"""

import argparse
import copy
import os
import signal
import sys
import threading
import types

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.moto_api._internal import mock_random
from moto.sns.models import SMS, Subscription
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def _deepcopy_but_tables(value, memo=None):
    return value if isinstance(value, Table) else copy.deepcopy(value, memo)


_moto_transact_write_items = DynamoDBBackend.transact_write_items


def _transact_write_items(self, transact_items):
    saved = []
    for entry in transact_items:
        for op in entry.values():
            table = self.tables.get(op.get("TableName"))
            key = op.get("Key") or op.get("Item") or {}
            if table is None or table.hash_key_attr not in key:
                continue
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = None
            if table.range_key_attr is not None:
                if table.range_key_attr not in key:
                    continue
                range_value = DynamoType(key[table.range_key_attr])
            item = table.get_item(hash_value, range_value)
            saved.append((table, hash_value, range_value, copy.deepcopy(item)))
    try:
        return _moto_transact_write_items(self, transact_items)
    except Exception:
        for table, hash_value, range_value, item in reversed(saved):
            if range_value is None:
                holder, key = table.items, hash_value
            else:
                holder, key = table.items[hash_value], range_value
            if item is None:
                holder.pop(key, None)
            else:
                holder[key] = item
        raise


_moto_subscription_publish = Subscription.publish


def _subscription_publish(self, message, message_id, *args, **kwargs):
    if self.protocol != "sms":
        return _moto_subscription_publish(self, message, message_id, *args, **kwargs)
    attributes = kwargs.get("message_attributes")
    if self._filter_policy_matcher is not None and not self._filter_policy_matcher.matches(attributes, message):
        return None
    if kwargs.get("message_structure") == "json":
        message = self._parse_message_structure(message, "sms")
    backend = self.topic.sns_backend
    sms_id = str(mock_random.uuid4())
    backend.sms_messages[sms_id] = (self.endpoint, message)
    backend.sms_message_objects[sms_id] = SMS(sms_id, self.endpoint, message)
    return None


Subscription.publish = _subscription_publish

# moto's transaction copies tables through this module's `copy.deepcopy`.
dynamodb_models.copy = types.SimpleNamespace(deepcopy=_deepcopy_but_tables)
DynamoDBBackend.transact_write_items = _transact_write_items


class SerialApplication(DomainDispatcherApplication):
    def __init__(self) -> None:
        super().__init__(create_backend_app)
        self._one_at_a_time = threading.Lock()

    def __call__(self, environ, start_response):
        with self._one_at_a_time:
            response = super().__call__(environ, start_response)
            # Read the body inside the lock: a streamed body may still run moto code.
            try:
                return [b"".join(response)]
            finally:
                if hasattr(response, "close"):
                    response.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_simple(
        args.host,
        args.port,
        SerialApplication(),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
