import EddyCore
import EddySchema
import Testing

/// Avro schemas of one record `User` growing over versions.
enum Users {
    static let v1 = #"{"type":"record","name":"User","namespace":"eddy","fields":[{"name":"id","type":"long"}]}"#
    static let v2 = #"{"type":"record","name":"User","namespace":"eddy","fields":[{"name":"id","type":"long"},{"name":"name","type":"string","default":""}]}"#
    /// Adds a field with no default: backward incompatible.
    static let v3Bad = #"{"type":"record","name":"User","namespace":"eddy","fields":[{"name":"id","type":"long"},{"name":"name","type":"string","default":""},{"name":"email","type":"string"}]}"#
    static let other = #"{"type":"record","name":"Order","namespace":"eddy","fields":[{"name":"total","type":"double"}]}"#
}

@Suite struct SchemaRegistryTests {
    func makeRegistry() throws -> SchemaRegistry { try SchemaRegistry(storage: InMemorySchemaStorage()) }

    @Test func theSameSchemaGetsTheSameIdUnderEverySubject() throws {
        let registry = try makeRegistry()
        let a = try registry.register(subject: "users-value", type: .avro, schema: Users.v1)
        // Same schema, different whitespace and a doc string: same identity.
        let b = try registry.register(subject: "audit-value", type: .avro, schema: Users.v1.replacingOccurrences(of: ",", with: ", ").replacingOccurrences(of: "\"name\":\"User\"", with: "\"name\":\"User\",\"doc\":\"x\""))
        #expect(a == b)
        // Registering again adds no version.
        #expect(try registry.register(subject: "users-value", type: .avro, schema: Users.v1) == a)
        #expect(try registry.versions(subject: "users-value") == [1])
        let c = try registry.register(subject: "orders-value", type: .avro, schema: Users.other)
        #expect(c != a)
        #expect(try registry.subjectVersions(id: a).map(\.subject) == ["audit-value", "users-value"])
        #expect(registry.subjectNames() == ["audit-value", "orders-value", "users-value"])
        #expect(try registry.schema(id: a).type == .avro)
        #expect(throws: SchemaRegistryError.self) { try registry.schema(id: 999) }
    }

    @Test func versionsAreNumberedAndLookedUp() throws {
        let registry = try makeRegistry()
        try registry.register(subject: "s", type: .avro, schema: Users.v1)
        let id2 = try registry.register(subject: "s", type: .avro, schema: Users.v2)
        #expect(try registry.versions(subject: "s") == [1, 2])
        #expect(try registry.schema(subject: "s", version: .latest).version == 2)
        #expect(try registry.schema(subject: "s", version: .number(1)).schema == Users.v1)
        #expect(try registry.lookup(subject: "s", type: .avro, schema: Users.v2).id == id2)
        do {
            _ = try registry.lookup(subject: "s", type: .avro, schema: Users.other)
            Issue.record("found a schema never registered")
        } catch let error as SchemaRegistryError {
            #expect(error.code == 40403)
        }
        do {
            _ = try registry.schema(subject: "s", version: .number(7))
        } catch let error as SchemaRegistryError {
            #expect(error.code == 40402)
        }
        do {
            _ = try registry.versions(subject: "nope")
        } catch let error as SchemaRegistryError {
            #expect(error.code == 40401)
        }
        #expect(throws: SchemaRegistryError.self) { try SchemaVersion(parsing: "0") }
        #expect(try SchemaVersion(parsing: "-1") == .latest)
    }

    @Test func anIncompatibleSchemaIsRefusedWithTheFieldAndTheRule() throws {
        let registry = try makeRegistry()
        try registry.register(subject: "s", type: .avro, schema: Users.v1)
        try registry.register(subject: "s", type: .avro, schema: Users.v2)
        do {
            try registry.register(subject: "s", type: .avro, schema: Users.v3Bad)
            Issue.record("registered an incompatible schema")
        } catch let error as SchemaRegistryError {
            #expect(error.code == 409)
            #expect(error.incompatibilities.first?.rule == "READER_FIELD_MISSING_DEFAULT_VALUE")
            #expect(error.incompatibilities.first?.path == "eddy.User.email")
            #expect(error.message.contains("email"))
        }
        #expect(try registry.incompatibilities(subject: "s", type: .avro, schema: Users.v3Bad).count == 1)
        // With NONE on the subject it goes in.
        try registry.setCompatibilityLevel(.none, subject: "s")
        #expect(registry.compatibilityLevel(subject: "s") == CompatibilityLevel.none)
        #expect(registry.compatibilityLevel() == .backward)
        try registry.register(subject: "s", type: .avro, schema: Users.v3Bad)
        #expect(try registry.versions(subject: "s") == [1, 2, 3])
        #expect(try registry.deleteCompatibilityLevel(subject: "s") == CompatibilityLevel.none)
        #expect(registry.subjectCompatibilityLevel("s") == nil)
    }

    @Test func malformedSchemasAndSubjectsAreRefusedAs422() throws {
        let registry = try makeRegistry()
        for (type, text) in [(SchemaType.avro, "{\"type\":\"recrod\"}"), (.avro, "not json"), (.json, "[1]"), (.protobuf, "message {")] {
            do {
                try registry.register(subject: "s", type: type, schema: text)
                Issue.record("accepted \(text)")
            } catch let error as SchemaRegistryError {
                #expect(error.code == 42201)
            }
        }
        #expect(throws: SchemaRegistryError.self) { try registry.register(subject: "", type: .avro, schema: Users.v1) }
        #expect(throws: SchemaRegistryError.self) { try registry.register(subject: "a\u{1}b", type: .avro, schema: Users.v1) }
    }

    @Test func softDeleteHidesAndHardDeleteRemoves() throws {
        let registry = try makeRegistry()
        let id1 = try registry.register(subject: "s", type: .avro, schema: Users.v1)
        try registry.register(subject: "s", type: .avro, schema: Users.v2)
        // Permanent before soft is refused.
        do {
            try registry.deleteVersion(subject: "s", version: .number(2), permanent: true)
        } catch let error as SchemaRegistryError {
            #expect(error.code == 40407)
        }
        #expect(try registry.deleteVersion(subject: "s", version: .number(2)) == 2)
        #expect(try registry.versions(subject: "s") == [1])
        #expect(try registry.versions(subject: "s", includeDeleted: true) == [1, 2])
        // The next version number skips the soft-deleted one.
        let id3 = try registry.register(subject: "s", type: .avro, schema: Users.v2)
        #expect(try registry.versions(subject: "s") == [1, 3])
        #expect(try registry.deleteSubject("s") == [1, 3])
        #expect(registry.subjectNames().isEmpty)
        #expect(registry.subjectNames(includeDeleted: true) == ["s"])
        do {
            try registry.deleteSubject("s")
        } catch let error as SchemaRegistryError {
            #expect(error.code == 40404)
        }
        #expect(try registry.deleteSubject("s", permanent: true) == [1, 2, 3])
        #expect(registry.subjectNames(includeDeleted: true).isEmpty)
        // Ids stay resolvable for data already written.
        #expect(try registry.schema(id: id1).schema == Users.v1)
        #expect(try registry.schema(id: id3).schema == Users.v2)
    }

    @Test func theRegistryIsRebuiltFromItsLogTopic() throws {
        let log = FakeLog()
        var ids: [Int] = []
        do {
            let registry = try SchemaRegistry(storage: try LogSchemaStorage(backend: log))
            ids.append(try registry.register(subject: "a", type: .avro, schema: Users.v1))
            ids.append(try registry.register(subject: "a", type: .avro, schema: Users.v2))
            ids.append(try registry.register(subject: "b", type: .json, schema: #"{"type":"object"}"#))
            try registry.setCompatibilityLevel(.full, subject: "b")
            try registry.setCompatibilityLevel(.forwardTransitive)
            try registry.deleteVersion(subject: "a", version: .number(1))
        }
        #expect(try log.admin.describeTopic("_schemas").configuration.cleanupPolicy == .compact)
        let again = try SchemaRegistry(storage: try LogSchemaStorage(backend: log))
        #expect(again.subjectNames() == ["a", "b"])
        #expect(try again.versions(subject: "a") == [2])
        #expect(try again.versions(subject: "a", includeDeleted: true) == [1, 2])
        #expect(try again.schema(subject: "b", version: .latest).type == .json)
        #expect(again.compatibilityLevel(subject: "b") == .full)
        #expect(again.compatibilityLevel() == .forwardTransitive)
        // New ids continue after the old ones.
        let next = try again.register(subject: "c", type: .avro, schema: Users.other)
        #expect(next > ids.max()!)
        #expect(try again.register(subject: "d", type: .avro, schema: Users.v2) == ids[1])
    }

    @Test func aFailedAppendChangesNothing() throws {
        let log = FakeLog()
        let registry = try SchemaRegistry(storage: try LogSchemaStorage(backend: log))
        log.failNextAppend = EddyError(.io, "disk full")
        do {
            try registry.register(subject: "a", type: .avro, schema: Users.v1)
            Issue.record("registered despite a failed append")
        } catch let error as SchemaRegistryError {
            #expect(error.code == 50001)
        }
        #expect(registry.subjectNames().isEmpty)
        #expect(throws: SchemaRegistryError.self) { try registry.schema(id: 1) }
        #expect(try registry.register(subject: "a", type: .avro, schema: Users.v1) == 1)
    }

    @Test func subjectNameStrategiesNameSubjects() throws {
        let schema = try ParsedSchema(type: .avro, text: Users.v1)
        #expect(try SubjectNameStrategy.topicName.subject(topic: "t", isKey: false, schema: schema) == "t-value")
        #expect(try SubjectNameStrategy.topicName.subject(topic: "t", isKey: true, schema: schema) == "t-key")
        #expect(try SubjectNameStrategy.recordName.subject(topic: "t", isKey: false, schema: schema) == "eddy.User")
        #expect(try SubjectNameStrategy.topicRecordName.subject(topic: "t", isKey: false, schema: schema) == "t-eddy.User")
        let primitive = try ParsedSchema(type: .avro, text: "\"string\"")
        #expect(throws: EddyError.self) { try SubjectNameStrategy.recordName.subject(topic: "t", isKey: false, schema: primitive) }
    }
}
