"""The reference a council data team would write instead of Channelshift's
ingest: confluent-kafka (librdkafka) consuming both topics, json.loads,
a light check of the required fields, a keyed hash of the customer
reference, and JSONEachRow inserts over ClickHouse's HTTP interface in
batches of 10,000, committing offsets after each insert.

    python3 reference_consumer.py --brokers … --group … --contact-topic … \
        --satisfaction-topic … --expected N --clickhouse http://… --user … \
        --password … --database …

Prints one JSON line: {"consumed", "inserted", "skipped", "seconds"}.
With --consume-only it reads and discards (fetch settings for throughput):
a consume-only ceiling independent of the Rust client.
"""

import argparse
import base64
import hashlib
import hmac
import json
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime

from confluent_kafka import Consumer

BATCH = 10_000
CONTACT_REQUIRED = ("event_id", "council", "occurred_at", "channel", "service", "outcome")
RESPONSE_REQUIRED = ("response_id", "council", "responded_at", "channel", "service", "instrument", "score")


def epoch(text):
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def contact_row(event, message, key, now):
    ref = event.get("customer_ref")
    return {
        "council": event["council"],
        "event_id": event["event_id"],
        "occurred_at": epoch(event["occurred_at"]),
        "channel": event["channel"],
        "assisted": 1 if event.get("assisted") else 0,
        "service": event["service"],
        "interaction": event.get("interaction", "transaction"),
        "outcome": event["outcome"],
        "customer_type": event.get("customer_type", "unknown"),
        "customer_hash": hmac.new(
            hmac.new(key, b"channelshift council key\0" + event["council"].encode(), hashlib.sha256).digest(),
            ref.encode(),
            hashlib.sha256,
        ).hexdigest()[:32] if ref else "",
        "journey_id": event.get("journey_id") or "",
        "avoidable": None if event.get("avoidable") is None else int(event["avoidable"]),
        "first_contact_resolved": None
        if event.get("first_contact_resolved") is None
        else int(event["first_contact_resolved"]),
        "ward": event.get("ward") or "",
        "lsoa": event.get("lsoa") or "",
        "wait_seconds": event.get("wait_seconds"),
        "handling_seconds": event.get("handling_seconds"),
        "source": event.get("source") or "",
        "kafka_partition": message.partition(),
        "kafka_offset": message.offset(),
        "ingested_at": now,
    }


def response_row(response, message, now):
    return {
        "council": response["council"],
        "response_id": response["response_id"],
        "responded_at": epoch(response["responded_at"]),
        "contact_event_id": response.get("contact_event_id") or "",
        "channel": response["channel"],
        "service": response["service"],
        "customer_type": response.get("customer_type", "unknown"),
        "instrument": response["instrument"],
        "score": int(response["score"]),
        "survey_mode": response.get("survey_mode") or "",
        # Free text is not stored by the reference either.
        "comment": "",
        "ward": response.get("ward") or "",
        "lsoa": response.get("lsoa") or "",
        "kafka_partition": message.partition(),
        "kafka_offset": message.offset(),
        "ingested_at": now,
    }


def insert(args, table, rows):
    if not rows:
        return
    body = "\n".join(json.dumps(row) for row in rows).encode()
    query = f"INSERT INTO {args.database}.{table} FORMAT JSONEachRow"
    url = f"{args.clickhouse}/?query={urllib.parse.quote(query)}"
    request = urllib.request.Request(url, data=body, method="POST")
    token = base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()


def main():
    parser = argparse.ArgumentParser()
    for name in ("brokers", "group", "contact-topic", "satisfaction-topic", "clickhouse", "user", "password", "database"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--expected", type=int, required=True)
    parser.add_argument("--key", default="reference-pseudonym-key")
    parser.add_argument("--consume-only", action="store_true",
                        help="read and discard: the broker's consume-only ceiling, with fetch settings for throughput")
    args = parser.parse_args()
    key = args.key.encode()
    settings = {
        "bootstrap.servers": args.brokers,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    if args.consume_only:
        settings.update({
            "fetch.min.bytes": 1000000,
            "fetch.wait.max.ms": 100,
            "queued.min.messages": 200000,
            "queued.max.messages.kbytes": 65536,
            "max.partition.fetch.bytes": 10485760,
        })
    consumer = Consumer(settings)
    consumer.subscribe([args.contact_topic, args.satisfaction_topic])
    if args.consume_only:
        started = time.monotonic()
        consumed = 0
        size = 0
        while consumed < args.expected:
            for message in consumer.consume(num_messages=BATCH, timeout=1.0):
                if message.error():
                    continue
                consumed += 1
                size += len(message.value() or b"")
        consumer.close()
        print(json.dumps({"consumed": consumed, "bytes": size,
                          "seconds": time.monotonic() - started}))
        return 0
    started = time.monotonic()
    consumed = inserted = skipped = 0
    contacts, responses = [], []
    while consumed < args.expected:
        messages = consumer.consume(num_messages=BATCH, timeout=1.0)
        now = int(time.time())
        for message in messages:
            if message.error():
                continue
            consumed += 1
            try:
                value = json.loads(message.value())
                if message.topic() == args.contact_topic:
                    if not all(field in value for field in CONTACT_REQUIRED):
                        raise ValueError("missing field")
                    contacts.append(contact_row(value, message, key, now))
                else:
                    if not all(field in value for field in RESPONSE_REQUIRED):
                        raise ValueError("missing field")
                    responses.append(response_row(value, message, now))
            except (ValueError, KeyError, TypeError):
                skipped += 1
        if len(contacts) >= BATCH or len(responses) >= BATCH or consumed >= args.expected or not messages:
            insert(args, "contact_events", contacts)
            insert(args, "satisfaction_responses", responses)
            inserted += len(contacts) + len(responses)
            contacts, responses = [], []
            if messages:
                consumer.commit(asynchronous=False)
    consumer.close()
    print(json.dumps({"consumed": consumed, "inserted": inserted, "skipped": skipped,
                      "seconds": time.monotonic() - started}))


if __name__ == "__main__":
    sys.exit(main())
