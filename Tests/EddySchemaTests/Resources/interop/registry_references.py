"""confluent-kafka's SchemaRegistryClient and Avro serdes with schema references against Eddy.

Usage: registry_references.py URL EDDY_FRAME_HEX
  Registers an Avro record type under one subject and a schema that uses it by name (a schema
  reference) under another, reads back the references, looks the schema up, asks who refers to
  the first subject, tries to delete it, serializes a record with AvroSerializer (which resolves
  the references through the registry), deserializes EDDY_FRAME_HEX (written by Eddy with the
  referring schema's id) with AvroDeserializer, and prints one JSON object with what it saw.
"""
import json
import sys

from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

ADDRESS = json.dumps({"type": "record", "name": "Address", "namespace": "interop",
                      "fields": [{"name": "street", "type": "string"}, {"name": "zip", "type": "int"}]})
CUSTOMER = json.dumps({"type": "record", "name": "Customer", "namespace": "interop",
                       "fields": [{"name": "id", "type": "long"}, {"name": "home", "type": "Address"},
                                  {"name": "work", "type": ["null", "interop.Address"], "default": None}]})


def main():
    url, eddy_hex = sys.argv[1], sys.argv[2]
    client = SchemaRegistryClient({"url": url})
    out = {}
    out["address_id"] = client.register_schema("address", Schema(ADDRESS, "AVRO"))
    references = [SchemaReference("interop.Address", "address", 1)]
    customer = Schema(CUSTOMER, "AVRO", references)
    out["customer_id"] = client.register_schema("customers-value", customer)
    fetched = client.get_schema(out["customer_id"])
    out["fetched_references"] = [[r.name, r.subject, r.version] for r in fetched.references]
    latest = client.get_latest_version("customers-value")
    out["latest_references"] = [[r.name, r.subject, r.version] for r in latest.schema.references]
    out["lookup_version"] = client.lookup_schema("customers-value", customer).version
    out["referenced_by"] = client.get_referenced_by("address", 1)
    try:
        client.delete_version("address", 1)
        out["delete_error"] = None
    except SchemaRegistryError as error:
        out["delete_error"] = [error.http_status_code, error.error_code]

    serializer = AvroSerializer(client, customer, conf={"auto.register.schemas": False, "use.latest.version": True})
    value = {"id": 42, "home": {"street": "Main", "zip": 8000}, "work": {"street": "Quai", "zip": 8001}}
    frame = serializer(value, SerializationContext("customers", MessageField.VALUE))
    out["serialized_hex"] = frame.hex()

    deserializer = AvroDeserializer(client)
    out["eddy_value"] = deserializer(bytes.fromhex(eddy_hex), SerializationContext("customers", MessageField.VALUE))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
