import EddyCore
import Foundation

/// What schema serdes need from a registry: the in-process ``SchemaRegistry`` or a remote one
/// over HTTP (``RemoteSchemaRegistry``). Implementations are thread-safe.
public protocol SchemaRegistryClient: Sendable {
    /// Registers the schema under the subject (or finds it) and returns its id.
    func register(subject: String, type: SchemaType, schema: String) throws -> Int
    /// The registered version of the schema under the subject (40401/40403 if absent).
    func lookup(subject: String, type: SchemaType, schema: String, includeDeleted: Bool) throws -> RegisteredSchema
    /// The schema with this global id.
    func schema(id: Int) throws -> (type: SchemaType, schema: String)
}

extension SchemaRegistry: SchemaRegistryClient {
    /// Registers a schema without references (see ``register(subject:type:schema:references:)``).
    @discardableResult
    public func register(subject: String, type: SchemaType, schema: String) throws -> Int {
        try register(subject: subject, type: type, schema: schema, references: [])
    }

    /// Looks up a schema without references (see ``lookup(subject:type:schema:references:includeDeleted:)``).
    public func lookup(subject: String, type: SchemaType, schema: String, includeDeleted: Bool) throws -> RegisteredSchema {
        try lookup(subject: subject, type: type, schema: schema, references: [], includeDeleted: includeDeleted)
    }
}

/// How schema serdes find schema ids.
public struct SchemaSerdeConfiguration: Sendable {
    /// Register the serializer's schema when the subject lacks it (Confluent's `auto.register.schemas`).
    /// When false, the schema must already be registered; serializing fails otherwise.
    public var autoRegister: Bool
    /// How the subject is named from the topic and the schema.
    public var subjectNameStrategy: SubjectNameStrategy
    /// JSON Schema only: validate values when deserializing too (always when serializing).
    public var validateOnRead: Bool

    public init(autoRegister: Bool = true, subjectNameStrategy: SubjectNameStrategy = .topicName, validateOnRead: Bool = false) {
        self.autoRegister = autoRegister
        self.subjectNameStrategy = subjectNameStrategy
        self.validateOnRead = validateOnRead
    }
}

/// The state serdes share between copies and threads: the id of their own schema and the
/// schemas (and compiled readers) of ids seen while deserializing.
final class SchemaSerdeCache<Reader>: @unchecked Sendable {
    // @unchecked: both fields are only touched under `lock`.
    private let lock = NSLock()
    private var ownID: Int?
    private var readers: [Int: Reader] = [:]
    /// Most writer schemas remembered; beyond it the cache is cleared (ids are stable, so this
    /// only bounds memory against a stream of distinct ids).
    static var maximumEntries: Int { 1000 }

    func id(_ make: () throws -> Int) throws -> Int {
        if let id = lock.withLock({ ownID }) { return id }
        let id = try make()
        lock.withLock { ownID = id }
        return id
    }

    func reader(for id: Int, _ make: () throws -> Reader) throws -> Reader {
        if let r = lock.withLock({ readers[id] }) { return r }
        let r = try make()
        lock.withLock {
            if readers.count >= Self.maximumEntries { readers.removeAll() }
            readers[id] = r
        }
        return r
    }
}

/// Resolves the serializer's own schema id, registering or looking up per the configuration.
func resolveSchemaID(client: any SchemaRegistryClient, subject: String, type: SchemaType, schema: String, configuration: SchemaSerdeConfiguration) throws -> Int {
    do {
        if configuration.autoRegister { return try client.register(subject: subject, type: type, schema: schema) }
        return try client.lookup(subject: subject, type: type, schema: schema, includeDeleted: false).id
    } catch let error as SchemaRegistryError {
        throw EddyError(.serialization, "cannot get a schema id for subject \(subject): \(error.message)")
    }
}

/// Avro serde for `Codable` values in Confluent's wire format.
///
/// Serializing encodes with ``AvroEncoder`` (refusing values that do not fit the schema with
/// ``EddyError/Code/serialization``) behind magic byte 0 and the schema id, which is registered
/// (or looked up, per ``SchemaSerdeConfiguration/autoRegister``) once and cached. Deserializing
/// reads the id, fetches that writer schema once, and resolves it to this serde's schema
/// (Avro schema resolution), so records written with older or newer compatible schemas decode.
/// A serde is a value usable from any thread.
///
/// ```swift
/// let serde = try AvroSerde<User>(schema: schema, client: registry, topic: "users")
/// let bytes = try serde.serialize(user)
/// ```
public struct AvroSerde<Value: Codable>: Serde {
    public let schema: AvroSchema
    public let subject: String
    let client: any SchemaRegistryClient
    let configuration: SchemaSerdeConfiguration
    let cache = SchemaSerdeCache<AvroSchema>()

    /// A serde for `topic`'s values (or keys with `isKey`), the subject named by the configured strategy.
    public init(schema: AvroSchema, client: any SchemaRegistryClient, topic: String, isKey: Bool = false,
                configuration: SchemaSerdeConfiguration = SchemaSerdeConfiguration()) throws {
        self.schema = schema
        self.client = client
        self.configuration = configuration
        subject = try configuration.subjectNameStrategy.subject(topic: topic, isKey: isKey, schema: .avro(schema))
    }

    /// The schema id this serde writes (registering or looking it up on first use).
    public func schemaID() throws -> Int {
        try cache.id { try resolveSchemaID(client: client, subject: subject, type: .avro, schema: schema.normalizedForm, configuration: configuration) }
    }

    public func serialize(_ value: Value) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        SchemaWireFormat.appendHeader(schemaID: try schemaID(), to: &out)
        try AvroEncoder(schema: schema).encode(value, appendingTo: &out)
        return out
    }

    public func deserialize(_ bytes: [UInt8]) throws -> Value {
        let header = try SchemaWireFormat.parseHeader(bytes)
        let writer = try writerSchema(header.schemaID)
        let payload = Array(bytes[header.payloadOffset...])
        return try AvroDecoder(schema: schema).decode(Value.self, from: payload, writer: writer)
    }

    func writerSchema(_ id: Int) throws -> AvroSchema {
        if let own = try? schemaID(), own == id { return schema }
        return try cache.reader(for: id) { try fetchAvroSchema(client: client, id: id) }
    }
}

func fetchAvroSchema(client: any SchemaRegistryClient, id: Int) throws -> AvroSchema {
    let found: (type: SchemaType, schema: String)
    do {
        found = try client.schema(id: id)
    } catch let error as SchemaRegistryError {
        throw EddyError(.serialization, "schema id \(id) of the record is unknown to the registry: \(error.message)")
    }
    guard found.type == .avro else { throw EddyError(.serialization, "schema id \(id) is a \(found.type.rawValue) schema, not Avro") }
    return try AvroSchema(parsing: found.schema)
}

/// Avro serde for generic values (``AvroValue``), with the same framing, caching and resolution
/// as ``AvroSerde``. Values that do not match the schema are refused on serialize.
public struct GenericAvroSerde: Serde {
    public let schema: AvroSchema
    public let subject: String
    let client: any SchemaRegistryClient
    let configuration: SchemaSerdeConfiguration
    let cache = SchemaSerdeCache<AvroResolver>()
    let ownID = SchemaSerdeCache<AvroResolver>()

    public init(schema: AvroSchema, client: any SchemaRegistryClient, topic: String, isKey: Bool = false,
                configuration: SchemaSerdeConfiguration = SchemaSerdeConfiguration()) throws {
        self.schema = schema
        self.client = client
        self.configuration = configuration
        subject = try configuration.subjectNameStrategy.subject(topic: topic, isKey: isKey, schema: .avro(schema))
    }

    public func schemaID() throws -> Int {
        try ownID.id { try resolveSchemaID(client: client, subject: subject, type: .avro, schema: schema.normalizedForm, configuration: configuration) }
    }

    public func serialize(_ value: AvroValue) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        SchemaWireFormat.appendHeader(schemaID: try schemaID(), to: &out)
        try schema.encode(value, appendingTo: &out)
        return out
    }

    public func deserialize(_ bytes: [UInt8]) throws -> AvroValue {
        let header = try SchemaWireFormat.parseHeader(bytes)
        let payload = Array(bytes[header.payloadOffset...])
        if let own = try? schemaID(), own == header.schemaID { return try schema.decode(payload) }
        let resolver = try cache.reader(for: header.schemaID) {
            let writer = try fetchAvroSchema(client: client, id: header.schemaID)
            do {
                return try AvroResolver(writer: writer, reader: schema)
            } catch let error as EddyError {
                throw EddyError(.serialization, "schema id \(header.schemaID) cannot be read with this serde's schema: \(error.message)")
            }
        }
        return try resolver.decode(payload)
    }
}

/// JSON Schema serde for `Codable` values: JSON text (Foundation's `JSONEncoder`/`JSONDecoder`)
/// in Confluent's wire format. Serializing validates the JSON against the schema and refuses a
/// value that breaks it with ``EddyError/Code/serialization`` listing the violations.
public struct JSONSchemaSerde<Value: Codable>: Serde {
    public let schema: JSONSchema
    public let subject: String
    let client: any SchemaRegistryClient
    let configuration: SchemaSerdeConfiguration
    let cache = SchemaSerdeCache<JSONSchema>()

    public init(schema: JSONSchema, client: any SchemaRegistryClient, topic: String, isKey: Bool = false,
                configuration: SchemaSerdeConfiguration = SchemaSerdeConfiguration()) throws {
        self.schema = schema
        self.client = client
        self.configuration = configuration
        subject = try configuration.subjectNameStrategy.subject(topic: topic, isKey: isKey, schema: .json(schema))
    }

    public func schemaID() throws -> Int {
        try cache.id { try resolveSchemaID(client: client, subject: subject, type: .json, schema: schema.canonicalText, configuration: configuration) }
    }

    func check(_ json: JSONValue) throws {
        let violations = schema.validate(json)
        guard violations.isEmpty else {
            throw EddyError(.serialization, "the value does not match the JSON Schema: " + violations.prefix(10).map(\.description).joined(separator: "; "))
        }
    }

    public func serialize(_ value: Value) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(value)
        try check(try JSONValue(parsing: Array(data)))
        return SchemaWireFormat.frame(schemaID: try schemaID(), payload: Array(data))
    }

    public func deserialize(_ bytes: [UInt8]) throws -> Value {
        let header = try SchemaWireFormat.parseHeader(bytes)
        let payload = Array(bytes[header.payloadOffset...])
        if configuration.validateOnRead {
            let json: JSONValue
            do {
                json = try JSONValue(parsing: payload)
            } catch let error as EddyError {
                throw EddyError(.serialization, error.message)
            }
            try check(json)
        }
        do {
            return try JSONDecoder().decode(Value.self, from: Data(payload))
        } catch {
            throw EddyError(.serialization, "the JSON payload does not decode as \(Value.self): \(error)")
        }
    }
}
