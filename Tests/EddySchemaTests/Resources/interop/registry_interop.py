"""confluent-kafka's SchemaRegistryClient and Avro serdes against Eddy's registry server.

Usage: registry_interop.py URL EDDY_FRAME_HEX
  Registers, looks up and checks compatibility through SchemaRegistryClient, serializes a record
  with AvroSerializer, deserializes EDDY_FRAME_HEX (written by Eddy's AvroSerde) with
  AvroDeserializer, and prints one JSON object with what it saw.
"""
import json
import sys

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

V1 = json.dumps({"type": "record", "name": "Payment", "namespace": "interop",
                 "fields": [{"name": "id", "type": "string"}, {"name": "amount", "type": "double"}]})
V2 = json.dumps({"type": "record", "name": "Payment", "namespace": "interop",
                 "fields": [{"name": "id", "type": "string"}, {"name": "amount", "type": "double"},
                            {"name": "currency", "type": "string", "default": "EUR"},
                            {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
                            {"name": "note", "type": ["null", "string"], "default": None}]})
BAD = json.dumps({"type": "record", "name": "Payment", "namespace": "interop",
                  "fields": [{"name": "id", "type": "string"}, {"name": "amount", "type": "double"},
                             {"name": "currency", "type": "string", "default": "EUR"},
                             {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
                             {"name": "note", "type": ["null", "string"], "default": None},
                             {"name": "merchant", "type": "string"}]})


def main():
    url, eddy_hex = sys.argv[1], sys.argv[2]
    client = SchemaRegistryClient({"url": url})
    out = {}
    out["id1"] = client.register_schema("payments-value", Schema(V1, "AVRO"))
    out["id2"] = client.register_schema("payments-value", Schema(V2, "AVRO"))
    out["id1_again"] = client.register_schema("audit-value", Schema(V1, "AVRO"))
    out["fetched"] = client.get_schema(out["id2"]).schema_str
    looked = client.lookup_schema("payments-value", Schema(V1, "AVRO"))
    out["lookup_version"] = looked.version
    out["latest_version"] = client.get_latest_version("payments-value").version
    out["versions"] = client.get_versions("payments-value")
    out["subjects"] = sorted(client.get_subjects())
    out["compatible_good"] = client.test_compatibility("payments-value", Schema(V2, "AVRO"))
    out["compatible_bad"] = client.test_compatibility("payments-value", Schema(BAD, "AVRO"))
    try:
        client.register_schema("payments-value", Schema(BAD, "AVRO"))
        out["bad_error"] = None
    except SchemaRegistryError as error:
        out["bad_error"] = [error.http_status_code, error.error_code, error.error_message]
    try:
        client.get_schema(999)
        out["missing_error"] = None
    except SchemaRegistryError as error:
        out["missing_error"] = [error.http_status_code, error.error_code]
    out["set_level"] = client.set_compatibility("audit-value", "FULL")
    out["level"] = client.get_compatibility("audit-value")

    serializer = AvroSerializer(client, V2, conf={"auto.register.schemas": False, "use.latest.version": False})
    value = {"id": "p-1", "amount": 12.5, "currency": "CHF", "tags": ["a", "é"], "note": "hi"}
    frame = serializer(value, SerializationContext("payments", MessageField.VALUE))
    out["serialized_hex"] = frame.hex()
    out["serialized_value"] = value

    deserializer = AvroDeserializer(client, V2)
    out["eddy_value"] = deserializer(bytes.fromhex(eddy_hex), SerializationContext("payments", MessageField.VALUE))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
