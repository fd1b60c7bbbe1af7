import EddyCore
import Foundation

/// A schema as registered under a subject.
public struct RegisteredSchema: Hashable, Sendable {
    public var subject: String
    public var version: Int
    /// The globally unique id: the same schema has the same id under every subject.
    public var id: Int
    public var type: SchemaType
    /// The schema text as first registered.
    public var schema: String
    /// The registered schemas this one refers to (empty for a self-contained schema).
    public var references: [SchemaReference]
    public var deleted: Bool

    public init(subject: String, version: Int, id: Int, type: SchemaType, schema: String, references: [SchemaReference] = [], deleted: Bool = false) {
        self.subject = subject
        self.version = version
        self.id = id
        self.type = type
        self.schema = schema
        self.references = references
        self.deleted = deleted
    }
}

/// A reference from a schema to a schema registered under another subject, as Confluent's REST
/// API spells it (`{"name": …, "subject": …, "version": …}`).
///
/// What `name` means depends on the language: Avro, the full name of a named type (record, enum,
/// fixed) that the referenced schema defines, which the referring schema then uses by name;
/// JSON Schema, the URL its `$ref`s use for the referenced document (`"$ref": "address.json"` or
/// `"address.json#/$defs/zip"`); Protobuf, the path of the `import` (`"other.proto"`).
public struct SchemaReference: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var subject: String
    /// The referenced version (a number; `-1` for the latest is resolved when registering).
    public var version: Int

    public init(name: String, subject: String, version: Int) {
        self.name = name
        self.subject = subject
        self.version = version
    }

    public var description: String { "\(name) (subject '\(subject)' version \(version))" }

    /// The JSON object the REST API and the `_schemas` log use.
    public var json: JSONValue {
        .object([("name", .string(name)), ("subject", .string(subject)), ("version", .integer(Int64(version)))])
    }

    /// Reads a `references` array. Throws ``SchemaRegistryError`` 42201 naming what is wrong.
    public static func list(fromJSON json: JSONValue?) throws -> [SchemaReference] {
        guard let json, json != .null else { return [] }
        guard let items = json.arrayValue else { throw SchemaRegistryError.invalidSchema("\"references\" must be an array of {\"name\", \"subject\", \"version\"} objects") }
        guard items.count <= SchemaRegistryLimits.maximumReferences else {
            throw SchemaRegistryError.invalidSchema("a schema may have at most \(SchemaRegistryLimits.maximumReferences) references (SchemaRegistryLimits.maximumReferences), this one has \(items.count)")
        }
        return try items.map { item in
            guard let name = item["name"]?.stringValue, !name.isEmpty, let subject = item["subject"]?.stringValue,
                  let version = item["version"]?.integerValue, version == -1 || (version >= 1 && version <= Int64(Int32.max)) else {
                throw SchemaRegistryError.invalidSchema("each reference needs a \"name\", a \"subject\" and a \"version\" (1 to 2^31-1, or -1 for the latest); found \(item)")
            }
            return SchemaReference(name: name, subject: subject, version: Int(version))
        }
    }
}

/// Which version of a subject: a number or the latest.
public enum SchemaVersion: Hashable, Sendable, CustomStringConvertible {
    case latest
    case number(Int)

    /// Parses `latest`, `-1` (Confluent's alias for latest) or a version number 1…2^31-1.
    /// Throws ``SchemaRegistryError`` 42202 for anything else.
    public init(parsing text: String) throws {
        if text == "latest" || text == "-1" { self = .latest; return }
        guard let n = Int32(text), n >= 1 else { throw SchemaRegistryError.invalidVersion(text) }
        self = .number(Int(n))
    }

    public var description: String {
        switch self {
        case .latest: "latest"
        case .number(let n): "\(n)"
        }
    }
}

/// Limits on what the registry accepts.
public enum SchemaRegistryLimits {
    /// Longest subject name, 255 bytes (UTF-8), no control characters.
    public static let maximumSubjectBytes = 255
    /// Largest schema text, 1 MiB.
    public static let maximumSchemaBytes = 1_048_576
    /// Most references one schema may list, and most schemas one schema may depend on through
    /// references of references (each counted once).
    public static let maximumReferences = 1000
}

/// The schema registry: subjects, versions, globally unique ids, soft and hard deletes and
/// compatibility levels, kept in a ``SchemaStorage`` (normally the compacted `_schemas` topic) and
/// rebuilt from it on start. Same semantics as Confluent Schema Registry's core.
///
/// Thread-safe: every method may be called from any thread; calls are serialized by a lock and
/// each write is appended to storage before it becomes visible. Errors are
/// ``SchemaRegistryError``s carrying Confluent's numeric codes.
///
/// ```swift
/// let registry = try SchemaRegistry(storage: InMemorySchemaStorage())
/// let id = try registry.register(subject: "users-value", type: .avro, schema: userSchemaText)
/// ```
public final class SchemaRegistry: @unchecked Sendable {
    // @unchecked: all mutable state below is only touched under `lock`.
    private let lock = NSLock()
    private let storage: any SchemaStorage

    struct StoredSchema {
        var type: SchemaType
        var text: String
        var references: [SchemaReference]
        var parsed: ParsedSchema
    }
    struct Version {
        var version: Int
        var id: Int
        var deleted: Bool
    }

    private var schemas: [Int: StoredSchema] = [:]
    /// `TYPE:identity` → id.
    private var ids: [String: Int] = [:]
    private var subjects: [String: [Version]] = [:]
    private var subjectLevels: [String: CompatibilityLevel] = [:]
    private var globalLevel: CompatibilityLevel = .backward
    private var nextID = 1
    /// While replaying: schemas whose references name versions not replayed yet (a compacted
    /// log may move a referenced version's latest record after its referrer's).
    private var unresolved: [Int: (type: SchemaType, text: String, references: [SchemaReference])]? = nil

    /// Opens a registry on `storage`, replaying its history. Throws ``SchemaRegistryError``
    /// 50001 when the storage cannot be read or holds a record that does not parse.
    public init(storage: any SchemaStorage) throws {
        self.storage = storage
        let records: [SchemaStorageRecord]
        do {
            records = try storage.load()
        } catch {
            throw SchemaRegistryError.storage(error)
        }
        unresolved = [:]
        for record in records { try apply(record) }
        // Schemas with references are parsed once everything is replayed, referenced ones first.
        while let pending = unresolved, !pending.isEmpty {
            var progress = false
            for (id, entry) in pending.sorted(by: { $0.key < $1.key }) {
                guard let resolved = try? resolve(entry.references, type: entry.type) else { continue }
                let parsed: ParsedSchema
                do {
                    parsed = try ParsedSchema(type: entry.type, text: entry.text, references: resolved)
                } catch {
                    throw SchemaRegistryError.storage("stored schema \(id) does not parse: \(error)")
                }
                schemas[id] = StoredSchema(type: entry.type, text: entry.text, references: entry.references, parsed: parsed)
                ids[Self.identityKey(parsed, entry.references)] = id
                unresolved?[id] = nil
                progress = true
            }
            if !progress {
                let (id, entry) = pending.min { $0.key < $1.key }!
                throw SchemaRegistryError.storage("stored schema \(id) refers to \(entry.references.map(\.description).joined(separator: ", ")), which the store does not hold")
            }
        }
        unresolved = nil
    }

    /// The key of `ids`: the language, the schema's identity and its references (the same text
    /// with other references is another schema, as in Confluent's registry).
    static func identityKey(_ parsed: ParsedSchema, _ references: [SchemaReference]) -> String {
        var key = parsed.type.rawValue + ":" + parsed.identity
        for r in references { key += "\u{0}\(r.name)\u{1}\(r.subject)\u{1}\(r.version)" }
        return key
    }

    /// What parsing a schema with `references` needs: the texts of the schemas they lead to
    /// (references of references first, each once) and the directly referenced schemas by name.
    /// Throws 42201 for a reference to a version that does not exist or to a schema of another
    /// language. Call under `lock`.
    private func resolve(_ references: [SchemaReference], type: SchemaType) throws -> ResolvedReferences {
        var texts: [String] = []
        var documents: [String: ParsedSchema] = [:]
        var visited: Set<String> = []
        func visit(_ reference: SchemaReference) throws {
            guard visited.insert("\(reference.subject)\u{0}\(reference.version)").inserted else { return }
            guard visited.count <= SchemaRegistryLimits.maximumReferences else {
                throw SchemaRegistryError.invalidSchema("the schema depends on more than \(SchemaRegistryLimits.maximumReferences) schemas through its references (SchemaRegistryLimits.maximumReferences)")
            }
            guard let v = subjects[reference.subject]?.first(where: { $0.version == reference.version }), let stored = schemas[v.id] else {
                throw SchemaRegistryError.invalidSchema("the reference \(reference) names a version that is not registered")
            }
            guard stored.type == type else {
                throw SchemaRegistryError.invalidSchema("the reference \(reference) is a \(stored.type.rawValue) schema, this one is \(type.rawValue)")
            }
            for r in stored.references { try visit(r) }
            texts.append(stored.text)
        }
        for r in references {
            try visit(r)
            if let v = subjects[r.subject]?.first(where: { $0.version == r.version }), let stored = schemas[v.id] { documents[r.name] = stored.parsed }
        }
        return ResolvedReferences(texts: texts, documents: documents)
    }

    /// `references` with `-1` (latest) replaced by the subject's latest live version, checked to
    /// exist and not be soft deleted. Call under `lock`.
    private func concreteReferences(_ references: [SchemaReference]) throws -> [SchemaReference] {
        try references.map { r in
            let live = (subjects[r.subject] ?? []).filter { !$0.deleted }
            var r = r
            if r.version == -1 {
                guard let latest = live.last else { throw SchemaRegistryError.invalidSchema("the reference \(r.name) names subject '\(r.subject)', which has no versions") }
                r.version = latest.version
            }
            guard live.contains(where: { $0.version == r.version }) else {
                throw SchemaRegistryError.invalidSchema("the reference \(r) names a version that is not registered (or is deleted)")
            }
            return r
        }
    }

    /// Parses `text` with its references resolved. Call under `lock`.
    private func parseResolving(_ type: SchemaType, _ text: String, _ references: [SchemaReference]) throws -> ParsedSchema {
        guard !references.isEmpty else { return try Self.parse(type, text) }
        guard text.utf8.count <= SchemaRegistryLimits.maximumSchemaBytes else { return try Self.parse(type, text) }
        let resolved = try resolve(references, type: type)
        do {
            return try ParsedSchema(type: type, text: text, references: resolved)
        } catch let error as EddyError {
            throw SchemaRegistryError.invalidSchema(error.message)
        }
    }

    /// The ids of the schemas whose references name `subject` version `version`, ascending
    /// (soft-deleted referrers included: they still need the version). Call under `lock`.
    private func referrers(subject: String, version: Int) -> [Int] {
        var found: Set<Int> = []
        for list in subjects.values {
            for v in list where !found.contains(v.id) {
                if schemas[v.id]?.references.contains(where: { $0.subject == subject && $0.version == version }) == true { found.insert(v.id) }
            }
        }
        return found.sorted()
    }

    // MARK: - Storage records (Confluent's `_schemas` layout)

    static func schemaKey(subject: String, version: Int) -> [UInt8] {
        Array(JSONValue.object([("keytype", .string("SCHEMA")), ("subject", .string(subject)), ("version", .integer(Int64(version))), ("magic", .integer(1))]).description.utf8)
    }

    static func configKey(subject: String?) -> [UInt8] {
        Array(JSONValue.object([("keytype", .string("CONFIG")), ("subject", subject.map { .string($0) } ?? .null), ("magic", .integer(0))]).description.utf8)
    }

    private func apply(_ record: SchemaStorageRecord) throws {
        let key: JSONValue
        do {
            key = try JSONValue(parsing: record.key)
        } catch {
            throw SchemaRegistryError.storage("a stored key does not parse: \(error)")
        }
        switch key["keytype"]?.stringValue {
        case "SCHEMA":
            guard let subject = key["subject"]?.stringValue, let version = key["version"]?.integerValue.map(Int.init) else {
                throw SchemaRegistryError.storage("a stored SCHEMA key lacks subject or version")
            }
            guard let valueBytes = record.value else {
                subjects[subject]?.removeAll { $0.version == version }
                if subjects[subject]?.isEmpty == true { subjects[subject] = nil }
                return
            }
            let value = try JSONValue(parsing: valueBytes)
            guard let id = value["id"]?.integerValue.map(Int.init), let text = value["schema"]?.stringValue else {
                throw SchemaRegistryError.storage("a stored schema lacks id or schema")
            }
            let type = value["schemaType"]?.stringValue.flatMap { SchemaType(rawValue: $0) } ?? .avro
            let deleted = value["deleted"]?.boolValue ?? false
            let references: [SchemaReference]
            do {
                references = try SchemaReference.list(fromJSON: value["references"])
            } catch let error as SchemaRegistryError {
                throw SchemaRegistryError.storage("stored schema \(id) has bad references: \(error.message)")
            }
            if schemas[id] == nil, unresolved?[id] == nil {
                if !references.isEmpty, unresolved != nil {
                    // Replaying: parsed when the whole history is in (see init).
                    unresolved?[id] = (type, text, references)
                } else {
                    let parsed: ParsedSchema
                    do {
                        parsed = try references.isEmpty ? ParsedSchema(type: type, text: text)
                            : ParsedSchema(type: type, text: text, references: try resolve(references, type: type))
                    } catch {
                        throw SchemaRegistryError.storage("stored schema \(id) does not parse: \(error)")
                    }
                    schemas[id] = StoredSchema(type: type, text: text, references: references, parsed: parsed)
                    ids[Self.identityKey(parsed, references)] = id
                }
            }
            nextID = max(nextID, id + 1)
            var list = subjects[subject] ?? []
            if let i = list.firstIndex(where: { $0.version == version }) {
                list[i] = Version(version: version, id: id, deleted: deleted)
            } else {
                list.append(Version(version: version, id: id, deleted: deleted))
                list.sort { $0.version < $1.version }
            }
            subjects[subject] = list
        case "CONFIG":
            let subject = key["subject"]?.stringValue
            let level = try record.value.flatMap { try JSONValue(parsing: $0)["compatibilityLevel"]?.stringValue }.flatMap { CompatibilityLevel(rawValue: $0) }
            if let subject {
                subjectLevels[subject] = level
            } else {
                globalLevel = level ?? .backward
            }
        default:
            break  // Other key types (Confluent's MODE, NOOP, …) carry nothing Eddy uses.
        }
    }

    private func persist(_ record: SchemaStorageRecord) throws {
        do {
            try storage.append(record)
        } catch {
            throw SchemaRegistryError.storage(error)
        }
        try apply(record)
    }

    private func persistVersion(subject: String, version: Int, id: Int, deleted: Bool, stored new: StoredSchema? = nil) throws {
        guard let stored = new ?? schemas[id] else { throw SchemaRegistryError.schemaNotFound("\(id)") }
        var members: [(String, JSONValue)] = [("subject", .string(subject)), ("version", .integer(Int64(version))), ("id", .integer(Int64(id)))]
        if stored.type != .avro { members.append(("schemaType", .string(stored.type.rawValue))) }
        members.append(("schema", .string(stored.text)))
        if !stored.references.isEmpty { members.append(("references", .array(stored.references.map(\.json)))) }
        members.append(("deleted", .bool(deleted)))
        try persist(SchemaStorageRecord(key: Self.schemaKey(subject: subject, version: version), value: Array(JSONValue.object(members).description.utf8)))
    }

    // MARK: - Validation

    static func validateSubject(_ subject: String) throws {
        guard !subject.isEmpty, subject.utf8.count <= SchemaRegistryLimits.maximumSubjectBytes else {
            throw SchemaRegistryError.invalidSubject("a subject name must be 1 to \(SchemaRegistryLimits.maximumSubjectBytes) bytes (SchemaRegistryLimits.maximumSubjectBytes)")
        }
        guard !subject.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw SchemaRegistryError.invalidSubject("a subject name may not contain control characters")
        }
    }

    static func parse(_ type: SchemaType, _ text: String) throws -> ParsedSchema {
        guard text.utf8.count <= SchemaRegistryLimits.maximumSchemaBytes else {
            throw SchemaRegistryError.invalidSchema("the schema is \(text.utf8.count) bytes, over the limit of \(SchemaRegistryLimits.maximumSchemaBytes) (SchemaRegistryLimits.maximumSchemaBytes)")
        }
        do {
            return try ParsedSchema(type: type, text: text)
        } catch let error as EddyError {
            throw SchemaRegistryError.invalidSchema(error.message)
        }
    }

    private func live(_ subject: String) -> [Version] { (subjects[subject] ?? []).filter { !$0.deleted } }

    private func registered(_ subject: String, _ v: Version) -> RegisteredSchema {
        let s = schemas[v.id]!
        return RegisteredSchema(subject: subject, version: v.version, id: v.id, type: s.type, schema: s.text, references: s.references, deleted: v.deleted)
    }

    private func find(_ subject: String, _ version: SchemaVersion, includeDeleted: Bool) throws -> Version {
        guard let all = subjects[subject], !all.isEmpty, includeDeleted || all.contains(where: { !$0.deleted }) else {
            throw SchemaRegistryError.subjectNotFound(subject)
        }
        let candidates = includeDeleted ? all : all.filter { !$0.deleted }
        switch version {
        case .latest: return candidates.last!
        case .number(let n):
            guard let v = candidates.first(where: { $0.version == n }) else { throw SchemaRegistryError.versionNotFound(subject, "\(n)") }
            return v
        }
    }

    // MARK: - Public API

    /// Registers `schema` under `subject` and returns its global id. Registering a schema the
    /// subject already has (same identity and references, not deleted) returns the existing id and
    /// adds no version. `references` name registered versions whose types (Avro), documents (JSON
    /// Schema) or files (Protobuf) the schema uses; version `-1` means the latest. Errors: 42201
    /// invalid schema (or a reference to a version that is missing, deleted or of another
    /// language), 42208 invalid subject, 409 incompatible with the subject's earlier versions
    /// under its compatibility level (with the reasons).
    @discardableResult
    public func register(subject: String, type: SchemaType, schema: String, references: [SchemaReference] = []) throws -> Int {
        try Self.validateSubject(subject)
        if references.isEmpty { _ = try Self.parse(type, schema) }
        return try lock.withLock {
            let references = try concreteReferences(references)
            let parsed = try parseResolving(type, schema, references)
            let identityKey = Self.identityKey(parsed, references)
            let existingID = ids[identityKey]
            let versions = live(subject)
            if let existingID, let v = versions.first(where: { $0.id == existingID }) { return v.id }
            let level = subjectLevels[subject] ?? globalLevel
            let previous = versions.reversed().map { schemas[$0.id]!.parsed }
            let issues = ParsedSchema.incompatibilities(of: parsed, with: previous, level: level)
            guard issues.isEmpty else { throw SchemaRegistryError.incompatible(issues) }
            let id = existingID ?? nextID
            let version = (subjects[subject]?.map(\.version).max() ?? 0) + 1
            try persistVersion(subject: subject, version: version, id: id, deleted: false,
                               stored: schemas[id] ?? StoredSchema(type: type, text: schema, references: references, parsed: parsed))
            return id
        }
    }

    /// The version of `subject` whose schema is `schema` with these `references` (40401 unknown
    /// subject, 40403 not registered there; 42201 a reference to a version that does not exist).
    public func lookup(subject: String, type: SchemaType, schema: String, references: [SchemaReference] = [], includeDeleted: Bool = false) throws -> RegisteredSchema {
        if references.isEmpty { _ = try Self.parse(type, schema) }
        return try lock.withLock {
            guard let all = subjects[subject], includeDeleted || all.contains(where: { !$0.deleted }) else { throw SchemaRegistryError.subjectNotFound(subject) }
            let references = try references.map { r in
                guard r.version == -1 else { return r }
                guard let latest = (subjects[r.subject] ?? []).last(where: { !$0.deleted }) else {
                    throw SchemaRegistryError.invalidSchema("the reference \(r.name) names subject '\(r.subject)', which has no versions")
                }
                return SchemaReference(name: r.name, subject: r.subject, version: latest.version)
            }
            let parsed = try parseResolving(type, schema, references)
            guard let id = ids[Self.identityKey(parsed, references)],
                  let v = all.last(where: { $0.id == id && (includeDeleted || !$0.deleted) }) else {
                throw SchemaRegistryError.schemaNotFound("in subject '\(subject)'")
            }
            return registered(subject, v)
        }
    }

    /// The schema with global id `id` (40403 if none).
    public func schema(id: Int) throws -> (type: SchemaType, schema: String) {
        try lock.withLock {
            guard let s = schemas[id] else { throw SchemaRegistryError.schemaNotFound("\(id)") }
            return (s.type, s.text)
        }
    }

    /// The references of the schema with global id `id` (40403 if none).
    public func references(id: Int) throws -> [SchemaReference] {
        try lock.withLock {
            guard let s = schemas[id] else { throw SchemaRegistryError.schemaNotFound("\(id)") }
            return s.references
        }
    }

    /// The ids of the schemas that refer to `subject`'s `version` (40401, 40402 when it does not
    /// exist), ascending; Confluent's `GET /subjects/{s}/versions/{v}/referencedby`. Soft-deleted
    /// referrers are listed too: they keep the version from being deleted.
    public func referencedBy(subject: String, version: SchemaVersion) throws -> [Int] {
        try lock.withLock {
            let v = try find(subject, version, includeDeleted: false)
            return referrers(subject: subject, version: v.version)
        }
    }

    /// The parsed schema with global id `id` (40403 if none); for serdes.
    public func parsedSchema(id: Int) throws -> ParsedSchema {
        try lock.withLock {
            guard let s = schemas[id] else { throw SchemaRegistryError.schemaNotFound("\(id)") }
            return s.parsed
        }
    }

    /// The (subject, version) pairs that use schema `id`.
    public func subjectVersions(id: Int, includeDeleted: Bool = false) throws -> [(subject: String, version: Int)] {
        try lock.withLock {
            guard schemas[id] != nil else { throw SchemaRegistryError.schemaNotFound("\(id)") }
            return subjects.keys.sorted().flatMap { s in
                subjects[s]!.filter { $0.id == id && (includeDeleted || !$0.deleted) }.map { (s, $0.version) }
            }
        }
    }

    /// Subject names, sorted; soft-deleted subjects only with `includeDeleted`.
    public func subjectNames(includeDeleted: Bool = false) -> [String] {
        lock.withLock {
            subjects.filter { includeDeleted || $0.value.contains { !$0.deleted } }.keys.sorted()
        }
    }

    /// The subject's version numbers, ascending (40401 if the subject has none).
    public func versions(subject: String, includeDeleted: Bool = false) throws -> [Int] {
        try lock.withLock {
            let list = (subjects[subject] ?? []).filter { includeDeleted || !$0.deleted }
            guard !list.isEmpty else { throw SchemaRegistryError.subjectNotFound(subject) }
            return list.map(\.version)
        }
    }

    /// One version of a subject (40401 unknown subject, 40402 unknown version).
    public func schema(subject: String, version: SchemaVersion, includeDeleted: Bool = false) throws -> RegisteredSchema {
        try lock.withLock { registered(subject, try find(subject, version, includeDeleted: includeDeleted)) }
    }

    /// Deletes every version of `subject`: soft (hidden, ids kept) or, after a soft delete,
    /// permanent. Returns the versions deleted. Errors: 40401, 40404 (already soft deleted),
    /// 40405 (permanent before soft).
    @discardableResult
    public func deleteSubject(_ subject: String, permanent: Bool = false) throws -> [Int] {
        try lock.withLock {
            guard let all = subjects[subject], !all.isEmpty else { throw SchemaRegistryError.subjectNotFound(subject) }
            for v in all where !referrers(subject: subject, version: v.version).isEmpty {
                throw SchemaRegistryError.referenceExists(subject, v.version)
            }
            if permanent {
                guard all.allSatisfy(\.deleted) else { throw SchemaRegistryError.subjectNotSoftDeleted(subject) }
                for v in all { try persist(SchemaStorageRecord(key: Self.schemaKey(subject: subject, version: v.version), value: nil)) }
                if subjectLevels[subject] != nil { try persist(SchemaStorageRecord(key: Self.configKey(subject: subject), value: nil)) }
                return all.map(\.version)
            }
            let live = all.filter { !$0.deleted }
            guard !live.isEmpty else { throw SchemaRegistryError.subjectSoftDeleted(subject) }
            for v in live { try persistVersion(subject: subject, version: v.version, id: v.id, deleted: true) }
            return live.map(\.version)
        }
    }

    /// Deletes one version: soft, or permanent after a soft delete. Returns the version number.
    @discardableResult
    public func deleteVersion(subject: String, version: SchemaVersion, permanent: Bool = false) throws -> Int {
        try lock.withLock {
            let v = try find(subject, version, includeDeleted: permanent)
            guard referrers(subject: subject, version: v.version).isEmpty else { throw SchemaRegistryError.referenceExists(subject, v.version) }
            if permanent {
                guard v.deleted else { throw SchemaRegistryError.versionNotSoftDeleted(subject, v.version) }
                try persist(SchemaStorageRecord(key: Self.schemaKey(subject: subject, version: v.version), value: nil))
            } else {
                guard !v.deleted else { throw SchemaRegistryError.versionSoftDeleted(subject, v.version) }
                try persistVersion(subject: subject, version: v.version, id: v.id, deleted: true)
            }
            return v.version
        }
    }

    /// The level that applies to `subject` (its own, else the global one); the global level for nil.
    public func compatibilityLevel(subject: String? = nil) -> CompatibilityLevel {
        lock.withLock { subject.flatMap { subjectLevels[$0] } ?? globalLevel }
    }

    /// The subject's own level, nil when it follows the global one.
    public func subjectCompatibilityLevel(_ subject: String) -> CompatibilityLevel? {
        lock.withLock { subjectLevels[subject] }
    }

    /// Sets the level of `subject`, or the global level for nil.
    public func setCompatibilityLevel(_ level: CompatibilityLevel, subject: String? = nil) throws {
        if let subject { try Self.validateSubject(subject) }
        try lock.withLock {
            try persist(SchemaStorageRecord(key: Self.configKey(subject: subject),
                                            value: Array(JSONValue.object([("compatibilityLevel", .string(level.rawValue))]).description.utf8)))
        }
    }

    /// Removes the subject's own level (it follows the global one again); returns the old level.
    @discardableResult
    public func deleteCompatibilityLevel(subject: String) throws -> CompatibilityLevel {
        try lock.withLock {
            guard let old = subjectLevels[subject] else { throw SchemaRegistryError.subjectNotFound(subject) }
            try persist(SchemaStorageRecord(key: Self.configKey(subject: subject), value: nil))
            return old
        }
    }

    /// Why `schema` could not be registered as the next version of `subject`: checked against the
    /// given version, or (nil) against the versions the subject's level says. Empty: compatible.
    /// A subject with no versions accepts anything. `references` as for ``register(subject:type:schema:references:)``.
    /// Errors: 42201, 40401/40402 for a given version.
    public func incompatibilities(subject: String, type: SchemaType, schema: String, references: [SchemaReference] = [],
                                  version: SchemaVersion? = nil) throws -> [SchemaIncompatibility] {
        if references.isEmpty { _ = try Self.parse(type, schema) }
        return try lock.withLock {
            let parsed = try parseResolving(type, schema, try concreteReferences(references))
            let level = subjectLevels[subject] ?? globalLevel
            if let version {
                let v = try find(subject, version, includeDeleted: false)
                let direct = level == .none ? CompatibilityLevel.none : (level.checksBackward && level.checksForward ? .full : level.checksBackward ? .backward : .forward)
                return ParsedSchema.incompatibilities(of: parsed, with: [schemas[v.id]!.parsed], level: direct)
            }
            let previous = live(subject).reversed().map { schemas[$0.id]!.parsed }
            return ParsedSchema.incompatibilities(of: parsed, with: previous, level: level)
        }
    }
}

extension SchemaRegistryError {
    static func storage(_ message: String) -> SchemaRegistryError { .init(code: 50001, message: "Error in the backend data store: \(message)") }
    /// 42206, Confluent's answer to deleting a version other schemas refer to.
    static func referenceExists(_ subject: String, _ version: Int) -> SchemaRegistryError {
        .init(code: 42206, message: "One or more references exist to the schema {magic=1,keytype=SCHEMA,subject=\(subject),version=\(version)}.")
    }
}
