"""tomyum connect's S3 sink (Confluent's ``io.confluent.connect.s3.S3SinkConnector``): partitioners
and object names (``partitioner``), formats (``formats``), when objects are committed
(``topic_partition_writer``) and the connector on boto3 (``sink``)."""

from tomyum.connect.s3.sink import S3SinkConnector, S3SinkTask, s3_sink_config

__all__ = ["S3SinkConnector", "S3SinkTask", "s3_sink_config"]
