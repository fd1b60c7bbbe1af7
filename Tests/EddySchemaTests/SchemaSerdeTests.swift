import EddyCore
import EddySchema
import Foundation
import Testing

@Suite struct SchemaSerdeTests {
    struct UserV1: Codable, Equatable { var id: Int64 }
    struct UserV2: Codable, Equatable { var id: Int64; var name: String }

    @Test func theWireFormatIsMagicZeroThenABigEndianId() throws {
        #expect(SchemaWireFormat.frame(schemaID: 0x01020304, payload: [9]) == [0, 1, 2, 3, 4, 9])
        let header = try SchemaWireFormat.parseHeader([0, 0, 0, 1, 0, 7])
        #expect(header.schemaID == 256)
        #expect(header.payloadOffset == 5)
        #expect(throws: EddyError.self) { try SchemaWireFormat.parseHeader([1, 0, 0, 0, 1]) }
        #expect(throws: EddyError.self) { try SchemaWireFormat.parseHeader([0, 0, 0]) }
    }

    @Test func protobufMessageIndexesUseZigZagVarintsAndAShortFormForTheFirstMessage() throws {
        #expect(SchemaWireFormat.frame(schemaID: 1, messageIndexes: [0], payload: []) == [0, 0, 0, 0, 1, 0])
        let framed = SchemaWireFormat.frame(schemaID: 1, messageIndexes: [1, 2], payload: [0xaa])
        #expect(framed == [0, 0, 0, 0, 1, 4, 2, 4, 0xaa])
        let header = try SchemaWireFormat.parseHeader(framed, hasMessageIndexes: true)
        #expect(header.messageIndexes == [1, 2])
        #expect(framed[header.payloadOffset] == 0xaa)
        #expect(try SchemaWireFormat.parseHeader([0, 0, 0, 0, 1, 0], hasMessageIndexes: true).messageIndexes == [0])
        #expect(throws: EddyError.self) { try SchemaWireFormat.parseHeader([0, 0, 0, 0, 1, 4, 2], hasMessageIndexes: true) }
        #expect(throws: EddyError.self) { try SchemaWireFormat.parseHeader([0, 0, 0, 0, 1, 3], hasMessageIndexes: true) }
    }

    @Test func anAvroSerdeRegistersOnceAndReadsDataFromOlderSchemas() throws {
        let registry = try SchemaRegistry(storage: InMemorySchemaStorage())
        let v1 = try AvroSchema(parsing: #"{"type":"record","name":"User","fields":[{"name":"id","type":"long"}]}"#)
        let v2 = try AvroSchema(parsing: #"{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"name","type":"string","default":"?"}]}"#)
        let old = try AvroSerde<UserV1>(schema: v1, client: registry, topic: "users")
        let new = try AvroSerde<UserV2>(schema: v2, client: registry, topic: "users")
        let oldBytes = try old.serialize(UserV1(id: 7))
        #expect(Array(oldBytes[0..<5]) == [0, 0, 0, 0, 1])
        #expect(try registry.versions(subject: "users-value") == [1])
        let newBytes = try new.serialize(UserV2(id: 8, name: "Ada"))
        #expect(try registry.versions(subject: "users-value") == [1, 2])
        #expect(try new.deserialize(oldBytes) == UserV2(id: 7, name: "?"))
        #expect(try new.deserialize(newBytes) == UserV2(id: 8, name: "Ada"))
        #expect(try old.deserialize(newBytes) == UserV1(id: 8))
        // Generic values, same framing.
        let generic = try GenericAvroSerde(schema: v2, client: registry, topic: "users")
        #expect(try generic.deserialize(oldBytes) == .record([.long(7), .string("?")]))
        #expect(throws: EddyError.self) { try generic.serialize(.record([.string("wrong"), .string("x")])) }
    }

    @Test func withoutAutoRegisterAnUnknownSchemaIsRefused() throws {
        let registry = try SchemaRegistry(storage: InMemorySchemaStorage())
        let v1 = try AvroSchema(parsing: #"{"type":"record","name":"User","fields":[{"name":"id","type":"long"}]}"#)
        let serde = try AvroSerde<UserV1>(schema: v1, client: registry, topic: "users", configuration: SchemaSerdeConfiguration(autoRegister: false))
        #expect(throws: EddyError.self) { try serde.serialize(UserV1(id: 1)) }
        try registry.register(subject: "users-value", type: .avro, schema: v1.normalizedForm)
        #expect(try serde.deserialize(serde.serialize(UserV1(id: 1))) == UserV1(id: 1))
        // The record-name strategy names the subject after the record.
        let byName = try AvroSerde<UserV1>(schema: v1, client: registry, topic: "users", configuration: SchemaSerdeConfiguration(subjectNameStrategy: .recordName))
        #expect(byName.subject == "User")
    }

    @Test func unknownIdsAndForeignBytesAreRefused() throws {
        let registry = try SchemaRegistry(storage: InMemorySchemaStorage())
        let v1 = try AvroSchema(parsing: #"{"type":"record","name":"User","fields":[{"name":"id","type":"long"}]}"#)
        let serde = try AvroSerde<UserV1>(schema: v1, client: registry, topic: "users")
        #expect(throws: EddyError.self) { try serde.deserialize([0, 0, 0, 0, 42, 2]) }
        #expect(throws: EddyError.self) { try serde.deserialize(Array("{\"id\":1}".utf8)) }
        let bytes = try serde.serialize(UserV1(id: 1))
        #expect(throws: EddyError.self) { try serde.deserialize(Array(bytes.dropLast())) }
    }

    struct Order: Codable, Equatable { var id: String; var total: Double }

    @Test func aJSONSchemaSerdeRefusesValuesThatBreakTheSchema() throws {
        let registry = try SchemaRegistry(storage: InMemorySchemaStorage())
        let schema = try JSONSchema(parsing: #"{"type":"object","properties":{"id":{"type":"string","format":"uuid"},"total":{"type":"number","minimum":0}},"required":["id","total"]}"#)
        let serde = try JSONSchemaSerde<Order>(schema: schema, client: registry, topic: "orders", configuration: SchemaSerdeConfiguration(validateOnRead: true))
        let good = Order(id: "0b7f0d0e-3c64-4c2a-9d3b-6b0f2b1c9e51", total: 3)
        #expect(try serde.deserialize(serde.serialize(good)) == good)
        #expect(try registry.schema(subject: "orders-value", version: .latest).type == .json)
        do {
            _ = try serde.serialize(Order(id: "nope", total: -1))
            Issue.record("accepted a bad order")
        } catch let error as EddyError {
            #expect(error.code == .serialization)
            #expect(error.message.contains("minimum"))
            #expect(error.message.contains("format"))
        }
        let forged = SchemaWireFormat.frame(schemaID: 1, payload: Array(#"{"id":"x","total":1}"#.utf8))
        #expect(throws: EddyError.self) { try serde.deserialize(forged) }
    }
}
