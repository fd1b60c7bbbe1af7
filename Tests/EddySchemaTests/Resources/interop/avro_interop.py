"""Avro interoperability between Eddy and fastavro (run by InteropTests.swift).

Usage:
  avro_interop.py roundtrip SCHEMA_FILE IN_FILE OUT_FILE
      IN_FILE holds records (4-byte big-endian length + Avro binary) written by Eddy.
      Each is read with fastavro (raw logical values) and written again with fastavro to OUT_FILE.
  avro_interop.py generate SCHEMA_FILE OUT_FILE JSON_FILE
      Writes fastavro-encoded records of fixed Python values to OUT_FILE (same framing) and
      their raw values as JSON lines (Eddy's JSON convention) to JSON_FILE.
  avro_interop.py canonical SCHEMAS_JSON_FILE
      Prints, per schema, the Parsing Canonical Form and the CRC-64-AVRO fingerprint.
"""
import datetime
import decimal
import io
import json
import struct
import sys
import uuid

import fastavro
import fastavro.read
import fastavro.schema


def read_frames(path):
    data = open(path, "rb").read()
    position = 0
    while position < len(data):
        (length,) = struct.unpack(">I", data[position:position + 4])
        position += 4
        yield data[position:position + length]
        position += length


def write_frames(path, frames):
    with open(path, "wb") as out:
        for frame in frames:
            out.write(struct.pack(">I", len(frame)))
            out.write(frame)


def raw_reader():
    # Read logical types as their underlying values, to compare with Eddy's generic values.
    fastavro.read.LOGICAL_READERS.clear()


def decode(schema, frame):
    buffer = io.BytesIO(frame)
    value = fastavro.schemaless_reader(buffer, schema, schema)
    if buffer.tell() != len(frame):
        raise SystemExit("fastavro left %d bytes unread" % (len(frame) - buffer.tell()))
    return value


def encode(schema, value):
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, value)
    return buffer.getvalue()


def to_json(value):
    """Eddy's JSON convention: bytes as latin-1 strings, everything else as is."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def python_values():
    """Hand-picked values covering every type, edge values and every union branch."""
    utc = datetime.timezone.utc
    subs = [{"x": 0, "tags": []}, {"x": -2147483648, "tags": ["", "é€😀"]}, {"x": 2147483647, "tags": ["a"] * 3}]
    values = []
    for i in range(12):
        values.append({
            "n": None,
            "b": i % 2 == 0,
            "i": [0, -1, 1, -64, 64, 2147483647, -2147483648, 12345][i % 8],
            "l": [0, -1, 9223372036854775807, -9223372036854775808, 1 << 40, -(1 << 35)][i % 6],
            "f": [0.0, -1.5, 3.25, 1e10, -2.5e-3][i % 5],
            "d": [0.0, -1.5, 3.141592653589793, 1e300, -2.2250738585072014e-308][i % 5],
            "by": bytes(range(i * 7 % 256, min(256, i * 7 % 256 + i))),
            "s": ["", "hello", "é€😀", "a\u0000b", "x" * 300][i % 5],
            "e": ["SPADES", "HEARTS", "DIAMONDS", "CLUBS"][i % 4],
            "a": [list(range(-i, i)), [], [9223372036854775807]][i % 3],
            "m": [{}, {"k": "v"}, {"": "", "é": "€"}][i % 3],
            "u": [None, "text", 42][i % 3],
            "fx": bytes([(i * 17 + j) % 256 for j in range(16)]),
            "sub": subs[i % 3],
            "subs": subs[: i % 4],
            "date": datetime.date(1970, 1, 1) + datetime.timedelta(days=i * 1000 - 3000),
            "tms": datetime.time(hour=i % 24, minute=i, second=i, microsecond=i * 1000),
            "tus": datetime.time(hour=23, minute=59, second=59, microsecond=i),
            "tsms": datetime.datetime(2024, 1, 1, 12, 0, i, i * 1000, tzinfo=utc),
            "tsus": datetime.datetime(1969, 12, 31, 23, 59, 59, i, tzinfo=utc),
            "dec": decimal.Decimal("%d.%02d" % (i * 1234567 - 5000000, i)),
            "uuid": uuid.UUID(int=i * 0x123456789ABCDEF),
            "optsub": None if i % 2 == 0 else subs[i % 3],
        })
    return values


def main():
    mode = sys.argv[1]
    if mode == "roundtrip":
        schema = fastavro.parse_schema(json.load(open(sys.argv[2])))
        raw_reader()
        frames = [encode(schema, decode(schema, frame)) for frame in read_frames(sys.argv[3])]
        write_frames(sys.argv[4], frames)
        print("fastavro re-encoded %d records" % len(frames))
    elif mode == "generate":
        schema = fastavro.parse_schema(json.load(open(sys.argv[2])))
        frames = [encode(schema, value) for value in python_values()]
        write_frames(sys.argv[3], frames)
        raw_reader()
        with open(sys.argv[4], "w") as out:
            for frame in frames:
                out.write(json.dumps(to_json(decode(schema, frame))) + "\n")
        print("fastavro wrote %d records" % len(frames))
    elif mode == "canonical":
        for text in json.load(open(sys.argv[2])):
            parsed = fastavro.parse_schema(json.loads(text))
            form = fastavro.schema.to_parsing_canonical_form(parsed)
            print(json.dumps({"form": form, "fingerprint": fastavro.schema.fingerprint(form, "CRC-64-AVRO")}))
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main()
