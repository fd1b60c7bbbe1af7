import EddyCore
import EddySchema
import EddySchemaProtobuf
import SwiftProtobuf
import Testing

/// Uses the well-known types compiled into SwiftProtobuf as the messages (no protoc plugin build).
@Suite struct ProtobufSerdeTests {
    static let timestampProto = """
    syntax = "proto3";
    package google.protobuf;
    message Timestamp { int64 seconds = 1; int32 nanos = 2; }
    message Duration { int64 seconds = 1; int32 nanos = 2; }
    """

    @Test func messagesRoundTripWithTheirMessageIndexes() throws {
        let registry = try SchemaRegistry(storage: InMemorySchemaStorage())
        let timestamps = try ProtobufSerde<Google_Protobuf_Timestamp>(schema: Self.timestampProto, client: registry, topic: "t")
        let durations = try ProtobufSerde<Google_Protobuf_Duration>(schema: Self.timestampProto, client: registry, topic: "d")
        #expect(timestamps.messageIndexes == [0])
        #expect(durations.messageIndexes == [1])
        var t = Google_Protobuf_Timestamp()
        t.seconds = 1_700_000_000
        t.nanos = 5
        let bytes = try timestamps.serialize(t)
        // magic, id 1, the short form of [0], then the payload.
        #expect(Array(bytes[0..<6]) == [0, 0, 0, 0, 1, 0])
        #expect(Array(bytes[6...]) == (try t.serializedBytes() as [UInt8]))
        #expect(try timestamps.deserialize(bytes) == t)
        var d = Google_Protobuf_Duration()
        d.seconds = 3
        let dBytes = try durations.serialize(d)
        #expect(Array(dBytes[0..<7]) == [0, 0, 0, 0, 1, 2, 2])
        #expect(try durations.deserialize(dBytes) == d)
        // Both serdes share the schema (same text, same id) under their own subjects.
        #expect(registry.subjectNames() == ["d-value", "t-value"])
        // A Duration record read as a Timestamp is refused, not misread.
        #expect(throws: EddyError.self) { try timestamps.deserialize(dBytes) }
        #expect(throws: EddyError.self) { try timestamps.deserialize([0, 0, 0, 0, 9, 0]) }
    }

    @Test func aSchemaWithoutTheMessageIsRefused() throws {
        let registry = try SchemaRegistry(storage: InMemorySchemaStorage())
        #expect(throws: EddyError.self) {
            try ProtobufSerde<Google_Protobuf_Timestamp>(schema: "syntax = \"proto3\"; message Other { int32 a = 1; }", client: registry, topic: "t")
        }
        let byName = try ProtobufSerde<Google_Protobuf_Duration>(schema: Self.timestampProto, client: registry, topic: "t",
                                                                 configuration: SchemaSerdeConfiguration(subjectNameStrategy: .recordName))
        #expect(byName.subject == "google.protobuf.Duration")
    }

    @Test func anIncompatibleProtoChangeIsRefusedByTheRegistry() throws {
        let registry = try SchemaRegistry(storage: InMemorySchemaStorage())
        _ = try ProtobufSerde<Google_Protobuf_Timestamp>(schema: Self.timestampProto, client: registry, topic: "t").serialize(Google_Protobuf_Timestamp())
        let changed = Self.timestampProto.replacingOccurrences(of: "message Timestamp { int64 seconds", with: "message Timestamp { string seconds")
        #expect(changed != Self.timestampProto)
        let serde = try ProtobufSerde<Google_Protobuf_Timestamp>(schema: changed, client: registry, topic: "t")
        do {
            _ = try serde.serialize(Google_Protobuf_Timestamp())
            Issue.record("registered an incompatible change")
        } catch let error as EddyError {
            #expect(error.message.contains("FIELD_SCALAR_KIND_CHANGED"))
        }
    }
}
