"""A small asyncio client in the shape of KafkaJS, built on confluent-kafka (librdkafka).

::

    from tomyum.client import Kafka

    kafka = Kafka(client_id="my-app", brokers=["localhost:9092"])

    producer = kafka.producer()
    await producer.connect()
    await producer.send("greetings", messages=[{"key": "k1", "value": "hello"}])
    await producer.disconnect()

    consumer = kafka.consumer(group_id="my-group")
    consumer.on("consumer.crash", lambda event: print(event.payload["error"]))
    await consumer.connect()
    await consumer.subscribe("greetings", from_beginning=True)
    await consumer.run(each_message=handle)     # returns once consuming has started
    ...
    await consumer.disconnect()

Blocking librdkafka calls run in worker threads, never on the event loop. It is a facade,
not a new client: anything librdkafka can be configured to do, ``config={...}`` passes on, and
it works against Apache Kafka as well as tomyum. A secured cluster's Kafka client properties
file (the one ``kafka-topics.sh --command-config`` and ``tomyum --command-config`` read) gives
the same settings: ``Kafka(brokers=[...], config=client_properties("client.properties"))``.
"""

from tomyum.client._admin import Admin, TopicSpec
from tomyum.client._consumer import Consumer, EachBatch, EachMessage
from tomyum.client._errors import ClientError
from tomyum.client._events import ConsumerEvent, ConsumerEvents
from tomyum.client._kafka import Kafka
from tomyum.client._message import Batch, Message, RecordMetadata
from tomyum.client._producer import OutgoingMessage, Producer
from tomyum.client._properties import PropertiesError, client_properties

__all__ = [
    "Admin",
    "Batch",
    "ClientError",
    "Consumer",
    "ConsumerEvent",
    "ConsumerEvents",
    "EachBatch",
    "EachMessage",
    "Kafka",
    "Message",
    "OutgoingMessage",
    "Producer",
    "PropertiesError",
    "RecordMetadata",
    "TopicSpec",
    "client_properties",
]
