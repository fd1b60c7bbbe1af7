import EddyCore
import EddySchema
import EddySchemaServer
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Schemas that use schemas registered under other subjects (Confluent's schema references).
enum References {
    static let address = #"{"type":"record","name":"Address","namespace":"acme","fields":[{"name":"street","type":"string"},{"name":"zip","type":"int"}]}"#
    static let tier = #"{"type":"enum","name":"Tier","namespace":"acme","symbols":["FREE","PRO"]}"#
    /// Uses `acme.Address` and `acme.Tier` by name only.
    static let customer = #"{"type":"record","name":"Customer","namespace":"acme","fields":[{"name":"id","type":"long"},{"name":"home","type":"Address"},{"name":"work","type":["null","acme.Address"],"default":null},{"name":"tier","type":"Tier"}]}"#
    static let customerReferences = [SchemaReference(name: "acme.Address", subject: "address", version: 1),
                                     SchemaReference(name: "acme.Tier", subject: "tier", version: 1)]
    /// The same customer, self-contained.
    static let customerInline = #"{"type":"record","name":"Customer","namespace":"acme","fields":[{"name":"id","type":"long"},{"name":"home","type":{"type":"record","name":"Address","fields":[{"name":"street","type":"string"},{"name":"zip","type":"int"}]}},{"name":"work","type":["null","Address"],"default":null},{"name":"tier","type":{"type":"enum","name":"Tier","symbols":["FREE","PRO"]}}]}"#

    static let zipDocument = ##"{"$defs":{"zip":{"type":"string","pattern":"^[0-9]{4,5}$"}},"type":"object","properties":{"zip":{"$ref":"#/$defs/zip"}},"required":["zip"]}"##
    static let personDocument = ##"{"type":"object","properties":{"name":{"type":"string"},"address":{"$ref":"address.json"},"zip":{"$ref":"address.json#/$defs/zip"}}}"##

    static let moneyProto = #"syntax = "proto3"; package common; message Money { int64 units = 1; string currency = 2; }"#
    static let orderProto = #"syntax = "proto3"; package shop; import "common/money.proto"; message Order { string id = 1; common.Money total = 2; }"#
}

@Suite struct SchemaReferenceTests {
    static let json: HTTPFields = [.contentType: SchemaRegistryServer.contentType]

    static func body(_ schema: String, type: String? = nil, references: [SchemaReference] = []) -> ByteBuffer {
        var members: [(String, JSONValue)] = [("schema", .string(schema))]
        if let type { members.append(("schemaType", .string(type))) }
        if !references.isEmpty { members.append(("references", .array(references.map(\.json)))) }
        return ByteBuffer(string: JSONValue.object(members).description)
    }

    static func parse(_ response: TestResponse) throws -> JSONValue { try JSONValue(parsing: String(buffer: response.body)) }

    static func expectError(_ response: TestResponse, status: Int, code: Int, mentioning text: String) throws {
        #expect(response.status.code == status, "\(String(buffer: response.body))")
        let json = try parse(response)
        #expect(json["error_code"] == .integer(Int64(code)), "\(json)")
        #expect(json["message"]?.stringValue?.contains(text) == true, "\(json)")
    }

    @Test func anAvroSchemaUsesNamedTypesFromReferencedSubjectsThroughTheRESTAPI() async throws {
        let registry = try SchemaRegistry(storage: InMemorySchemaStorage())
        let app = SchemaRegistryServer.application(registry: registry, configuration: .init(port: 0))
        try await app.test(.router) { client in
            var r = try await client.execute(uri: "/subjects/address/versions", method: .post, headers: Self.json, body: Self.body(References.address))
            #expect(try Self.parse(r) == .object([("id", .integer(1))]))
            r = try await client.execute(uri: "/subjects/tier/versions", method: .post, headers: Self.json, body: Self.body(References.tier))
            #expect(try Self.parse(r) == .object([("id", .integer(2))]))
            // Without its references the schema names unknown types.
            r = try await client.execute(uri: "/subjects/customer-value/versions", method: .post, headers: Self.json, body: Self.body(References.customer))
            try Self.expectError(r, status: 422, code: 42201, mentioning: "Address")
            r = try await client.execute(uri: "/subjects/customer-value/versions", method: .post, headers: Self.json,
                                         body: Self.body(References.customer, references: References.customerReferences))
            #expect(try Self.parse(r) == .object([("id", .integer(3))]))
            // Registering it again finds it; the self-contained text is another schema (other references).
            r = try await client.execute(uri: "/subjects/customer-value/versions", method: .post, headers: Self.json,
                                         body: Self.body(References.customer, references: References.customerReferences))
            #expect(try Self.parse(r) == .object([("id", .integer(3))]))
            r = try await client.execute(uri: "/subjects/customer-inline/versions", method: .post, headers: Self.json, body: Self.body(References.customerInline))
            #expect(try Self.parse(r) == .object([("id", .integer(4))]))

            // GET answers carry the references.
            let expectedReferences = JSONValue.array(References.customerReferences.map(\.json))
            r = try await client.execute(uri: "/subjects/customer-value/versions/1", method: .get)
            var json = try Self.parse(r)
            #expect(json["references"] == expectedReferences, "\(json)")
            #expect(json["schema"]?.stringValue == References.customer)
            r = try await client.execute(uri: "/schemas/ids/3", method: .get)
            json = try Self.parse(r)
            #expect(json["references"] == expectedReferences, "\(json)")
            r = try await client.execute(uri: "/subjects/address/versions/1", method: .get)
            #expect(try Self.parse(r)["references"] == nil, "no references: the member is left out, as Confluent does")

            // Lookups match schema and references together.
            r = try await client.execute(uri: "/subjects/customer-value", method: .post, headers: Self.json,
                                         body: Self.body(References.customer, references: References.customerReferences))
            json = try Self.parse(r)
            #expect(json["version"] == .integer(1))
            #expect(json["id"] == .integer(3))
            #expect(json["references"] == expectedReferences)
            r = try await client.execute(uri: "/subjects/customer-value", method: .post, headers: Self.json, body: Self.body(References.customerInline))
            try Self.expectError(r, status: 404, code: 40403, mentioning: "customer-value")
            r = try await client.execute(uri: "/subjects/customer-value", method: .post, headers: Self.json,
                                         body: Self.body(References.customer, references: [References.customerReferences[0]]))
            try Self.expectError(r, status: 422, code: 42201, mentioning: "Tier")
            // Compatibility checks resolve references too.
            r = try await client.execute(uri: "/compatibility/subjects/customer-value/versions/latest", method: .post, headers: Self.json,
                                         body: Self.body(References.customer, references: References.customerReferences))
            #expect(try Self.parse(r)["is_compatible"] == .bool(true))

            // Who refers to a version; referenced versions cannot be deleted.
            r = try await client.execute(uri: "/subjects/address/versions/1/referencedby", method: .get)
            #expect(try Self.parse(r) == .array([.integer(3)]))
            r = try await client.execute(uri: "/subjects/address/versions/latest/referencedby", method: .get)
            #expect(try Self.parse(r) == .array([.integer(3)]))
            r = try await client.execute(uri: "/subjects/customer-value/versions/1/referencedby", method: .get)
            #expect(try Self.parse(r) == .array([]))
            r = try await client.execute(uri: "/subjects/address/versions/9/referencedby", method: .get)
            try Self.expectError(r, status: 404, code: 40402, mentioning: "9")
            r = try await client.execute(uri: "/subjects/address/versions/1", method: .delete)
            try Self.expectError(r, status: 422, code: 42206, mentioning: "subject=address,version=1")
            r = try await client.execute(uri: "/subjects/address", method: .delete)
            try Self.expectError(r, status: 422, code: 42206, mentioning: "subject=address")
            // A soft-deleted referrer still holds the version; a permanently deleted one lets go.
            r = try await client.execute(uri: "/subjects/customer-value/versions/1", method: .delete)
            #expect(try Self.parse(r) == .integer(1))
            r = try await client.execute(uri: "/subjects/address/versions/1", method: .delete)
            try Self.expectError(r, status: 422, code: 42206, mentioning: "address")
            r = try await client.execute(uri: "/subjects/customer-value/versions/1?permanent=true", method: .delete)
            #expect(try Self.parse(r) == .integer(1))
            r = try await client.execute(uri: "/subjects/address/versions/1/referencedby", method: .get)
            #expect(try Self.parse(r) == .array([]))
            r = try await client.execute(uri: "/subjects/address/versions/1", method: .delete)
            #expect(try Self.parse(r) == .integer(1))
            r = try await client.execute(uri: "/subjects/address/versions/1?permanent=true", method: .delete)
            #expect(try Self.parse(r) == .integer(1))
        }
    }

    @Test func aSchemaWithReferencesIsSelfContainedOnceParsedAndEncodesData() throws {
        let registry = try SchemaRegistry(storage: InMemorySchemaStorage())
        try registry.register(subject: "address", type: .avro, schema: References.address)
        try registry.register(subject: "tier", type: .avro, schema: References.tier)
        let id = try registry.register(subject: "customer-value", type: .avro, schema: References.customer, references: References.customerReferences)
        guard case .avro(let parsed) = try registry.parsedSchema(id: id) else { Issue.record("not Avro"); return }
        let inline = try AvroSchema(parsing: References.customerInline)
        #expect(parsed == inline)
        #expect(parsed.canonicalForm == inline.canonicalForm)
        #expect(parsed.fingerprint == inline.fingerprint)
        let value = AvroValue.record([.long(7), .record([.string("Main"), .int(8000)]), .union(1, .record([.string("Side"), .int(8001)])), .enumeration(1)])
        let bytes = try parsed.encode(value)
        #expect(try inline.decode(bytes) == value)
        // AvroSchema can be given the referenced texts directly.
        #expect(try AvroSchema(parsing: References.customer, referencedSchemas: [References.address, References.tier]) == inline)
        #expect(throws: EddyError.self) { try AvroSchema(parsing: References.customer, referencedSchemas: [References.address]) }
        #expect(throws: EddyError.self) { try AvroSchema(parsing: References.customer, referencedSchemas: [References.address, References.tier, References.address]) }
        #expect(try registry.references(id: id) == References.customerReferences)
        #expect(try registry.schema(subject: "customer-value", version: .latest).references == References.customerReferences)
    }

    @Test func badReferencesAreRefusedWith42201() throws {
        let registry = try SchemaRegistry(storage: InMemorySchemaStorage())
        try registry.register(subject: "address", type: .avro, schema: References.address)
        try registry.register(subject: "json-doc", type: .json, schema: #"{"type":"string"}"#)
        func code(_ body: () throws -> Void) -> Int? {
            do { try body() } catch let error as SchemaRegistryError { return error.code } catch { return -1 }
            return nil
        }
        let record = #"{"type":"record","name":"R","fields":[{"name":"a","type":"acme.Address"}]}"#
        #expect(code { try registry.register(subject: "r", type: .avro, schema: record, references: [SchemaReference(name: "acme.Address", subject: "nowhere", version: 1)]) } == 42201)
        #expect(code { try registry.register(subject: "r", type: .avro, schema: record, references: [SchemaReference(name: "acme.Address", subject: "address", version: 2)]) } == 42201)
        #expect(code { try registry.register(subject: "r", type: .avro, schema: record, references: [SchemaReference(name: "x", subject: "json-doc", version: 1)]) } == 42201)
        // -1 is the latest version, stored as its number.
        let id = try registry.register(subject: "r", type: .avro, schema: record, references: [SchemaReference(name: "acme.Address", subject: "address", version: -1)])
        #expect(try registry.references(id: id) == [SchemaReference(name: "acme.Address", subject: "address", version: 1)])
        #expect(try registry.lookup(subject: "r", type: .avro, schema: record, references: [SchemaReference(name: "acme.Address", subject: "address", version: -1)]).id == id)
        #expect(throws: SchemaRegistryError.self) { try SchemaReference.list(fromJSON: .string("x")) }
        #expect(throws: SchemaRegistryError.self) { try SchemaReference.list(fromJSON: .array([.object([("name", .string("a"))])])) }
        #expect(throws: SchemaRegistryError.self) {
            try SchemaReference.list(fromJSON: .array([.object([("name", .string("a")), ("subject", .string("s")), ("version", .integer(0))])]))
        }
        #expect(try SchemaReference.list(fromJSON: nil) == [])
        #expect(try SchemaReference.list(fromJSON: .null) == [])
    }

    @Test func referencesSurviveARestartEvenWhenCompactionMovedTheReferencedVersionLater() throws {
        let storage = InMemorySchemaStorage()
        let registry = try SchemaRegistry(storage: storage)
        try registry.register(subject: "address", type: .avro, schema: References.address)
        try registry.register(subject: "tier", type: .avro, schema: References.tier)
        let id = try registry.register(subject: "customer-value", type: .avro, schema: References.customer, references: References.customerReferences)
        try registry.setCompatibilityLevel(.full, subject: "address")

        let reopened = try SchemaRegistry(storage: storage)
        #expect(try reopened.references(id: id) == References.customerReferences)
        #expect(try reopened.referencedBy(subject: "address", version: .number(1)) == [id])
        #expect(try reopened.lookup(subject: "customer-value", type: .avro, schema: References.customer, references: References.customerReferences).id == id)
        #expect(try reopened.parsedSchema(id: id) == .avro(try AvroSchema(parsing: References.customerInline)))

        // A compacted log keeps only the latest record per key, so a referenced version rewritten
        // after its referrer (here: replayed last) comes later in the log.
        let records = try storage.load()
        let shuffled = InMemorySchemaStorage()
        for record in records.reversed() { try shuffled.append(record) }
        let rebuilt = try SchemaRegistry(storage: shuffled)
        #expect(try rebuilt.references(id: id) == References.customerReferences)
        #expect(try rebuilt.parsedSchema(id: id) == .avro(try AvroSchema(parsing: References.customerInline)))
        // The next id continues after the largest one.
        #expect(try rebuilt.register(subject: "other", type: .avro, schema: Users.v1) == id + 1)

        // A log that lost the referenced version is a storage error (50001), not a crash.
        let broken = InMemorySchemaStorage()
        for record in records where !String(decoding: record.key, as: UTF8.self).contains("\"address\"") { try broken.append(record) }
        do {
            _ = try SchemaRegistry(storage: broken)
            Issue.record("a log missing a referenced version opened")
        } catch let error as SchemaRegistryError {
            #expect(error.code == 50001)
            #expect(error.message.contains("address"))
        }
    }

    @Test func jsonSchemaReferencesResolveRefsToOtherDocuments() async throws {
        let registry = try SchemaRegistry(storage: InMemorySchemaStorage())
        let app = SchemaRegistryServer.application(registry: registry, configuration: .init(port: 0))
        try await app.test(.router) { client in
            var r = try await client.execute(uri: "/subjects/address-json/versions", method: .post, headers: Self.json, body: Self.body(References.zipDocument, type: "JSON"))
            #expect(try Self.parse(r) == .object([("id", .integer(1))]))
            r = try await client.execute(uri: "/subjects/person/versions", method: .post, headers: Self.json, body: Self.body(References.personDocument, type: "JSON"))
            try Self.expectError(r, status: 422, code: 42201, mentioning: "address.json")
            let references = [SchemaReference(name: "address.json", subject: "address-json", version: 1)]
            r = try await client.execute(uri: "/subjects/person/versions", method: .post, headers: Self.json,
                                         body: Self.body(References.personDocument, type: "JSON", references: references))
            #expect(try Self.parse(r) == .object([("id", .integer(2))]))
            r = try await client.execute(uri: "/subjects/person/versions/latest", method: .get)
            let json = try Self.parse(r)
            #expect(json["schemaType"] == .string("JSON"))
            #expect(json["references"] == .array(references.map(\.json)))
            r = try await client.execute(uri: "/subjects/address-json/versions/1/referencedby", method: .get)
            #expect(try Self.parse(r) == .array([.integer(2)]))
        }
        guard case .json(let person) = try registry.parsedSchema(id: 2) else { Issue.record("not JSON Schema"); return }
        #expect(person.isValid(try JSONValue(parsing: #"{"name":"Ada","address":{"zip":"8000"},"zip":"12345"}"#)))
        let missing = person.validate(try JSONValue(parsing: #"{"address":{}}"#))
        #expect(missing.map(\.keyword) == ["required"], "\(missing)")
        let pattern = person.validate(try JSONValue(parsing: #"{"address":{"zip":"x"},"zip":"12"}"#))
        #expect(pattern.map(\.instancePath).sorted() == ["/address/zip", "/zip"], "\(pattern)")
        #expect(throws: EddyError.self) { try JSONSchema(parsing: References.personDocument, referencedDocuments: ["other.json": try JSONSchema(parsing: "{}")]) }
    }

    @Test func protobufReferencesAreStoredAndReturned() async throws {
        let registry = try SchemaRegistry(storage: InMemorySchemaStorage())
        let app = SchemaRegistryServer.application(registry: registry, configuration: .init(port: 0))
        try await app.test(.router) { client in
            var r = try await client.execute(uri: "/subjects/money/versions", method: .post, headers: Self.json, body: Self.body(References.moneyProto, type: "PROTOBUF"))
            #expect(try Self.parse(r) == .object([("id", .integer(1))]))
            let references = [SchemaReference(name: "common/money.proto", subject: "money", version: 1)]
            r = try await client.execute(uri: "/subjects/order-value/versions", method: .post, headers: Self.json,
                                         body: Self.body(References.orderProto, type: "PROTOBUF", references: references))
            #expect(try Self.parse(r) == .object([("id", .integer(2))]))
            r = try await client.execute(uri: "/schemas/ids/2", method: .get)
            let json = try Self.parse(r)
            #expect(json["schemaType"] == .string("PROTOBUF"))
            #expect(json["references"] == .array(references.map(\.json)))
            r = try await client.execute(uri: "/subjects/order-value", method: .post, headers: Self.json,
                                         body: Self.body(References.orderProto, type: "PROTOBUF", references: references))
            #expect(try Self.parse(r)["version"] == .integer(1))
            r = try await client.execute(uri: "/subjects/money/versions/1", method: .delete)
            try Self.expectError(r, status: 422, code: 42206, mentioning: "money")
        }
    }
}
