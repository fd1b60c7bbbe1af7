import EddyCore
import EddySchema
import Foundation
import SwiftProtobuf

/// Protobuf serde for `swift-protobuf` messages in Confluent's wire format: magic byte 0, the
/// schema id, the message-index array locating the message in its `.proto` file, then the
/// message's Protobuf encoding.
///
/// swift-protobuf messages carry no descriptor at run time, so the serde is given the `.proto`
/// text of the message's file; it must define a message named `Message.protoMessageName`
/// (checked at creation, ``EddyError/Code/invalidArgument`` otherwise). The schema is registered
/// (or looked up) once and its id cached. Serializing refuses a message whose required (proto2)
/// fields are unset; deserializing refuses a frame whose schema is not Protobuf or whose message
/// indexes name a message other than `Message` (both ``EddyError/Code/serialization``).
/// A serde is a value usable from any thread.
///
/// ```swift
/// let serde = try ProtobufSerde<Shop_Order>(schema: orderProtoText, client: registry, topic: "orders")
/// ```
public struct ProtobufSerde<Value: SwiftProtobuf.Message>: Serde {
    public let schema: ProtobufSchema
    public let schemaText: String
    public let subject: String
    /// Where `Value` sits in the `.proto` file (Confluent's message indexes).
    public let messageIndexes: [Int]
    let client: any SchemaRegistryClient
    let configuration: SchemaSerdeConfiguration
    let cache: ProtobufSerdeCache

    /// A serde for `topic`'s values (or keys with `isKey`) whose `.proto` file text is `schema`.
    public init(schema text: String, client: any SchemaRegistryClient, topic: String, isKey: Bool = false,
                configuration: SchemaSerdeConfiguration = SchemaSerdeConfiguration()) throws {
        let parsed = try ProtobufSchema(parsing: text)
        guard let indexes = parsed.messageIndexes(of: Value.protoMessageName) else {
            throw EddyError(.invalidArgument, "the .proto schema defines no message \(Value.protoMessageName); it has \(parsed.allMessages.keys.sorted().joined(separator: ", "))")
        }
        schema = parsed
        schemaText = text
        messageIndexes = indexes
        self.client = client
        self.configuration = configuration
        cache = ProtobufSerdeCache()
        switch configuration.subjectNameStrategy {
        case .topicName: subject = topic + (isKey ? "-key" : "-value")
        // The record-name strategies name the subject after this message, not the file's first one.
        case .recordName: subject = Value.protoMessageName
        case .topicRecordName: subject = topic + "-" + Value.protoMessageName
        }
    }

    /// The schema id this serde writes (registering or looking it up on first use).
    public func schemaID() throws -> Int {
        try cache.id {
            do {
                if configuration.autoRegister { return try client.register(subject: subject, type: .protobuf, schema: schemaText) }
                return try client.lookup(subject: subject, type: .protobuf, schema: schemaText, includeDeleted: false).id
            } catch let error as SchemaRegistryError {
                throw EddyError(.serialization, "cannot get a schema id for subject \(subject): \(error.message)")
            }
        }
    }

    public func serialize(_ value: Value) throws -> [UInt8] {
        guard value.isInitialized else {
            throw EddyError(.serialization, "the \(Value.protoMessageName) message lacks required fields")
        }
        let payload: [UInt8]
        do {
            payload = try value.serializedBytes()
        } catch {
            throw EddyError(.serialization, "cannot encode \(Value.protoMessageName): \(error)")
        }
        return SchemaWireFormat.frame(schemaID: try schemaID(), messageIndexes: messageIndexes, payload: payload)
    }

    public func deserialize(_ bytes: [UInt8]) throws -> Value {
        let header = try SchemaWireFormat.parseHeader(bytes, hasMessageIndexes: true)
        let writerName = try cache.messageName(id: header.schemaID, indexes: header.messageIndexes ?? [0]) {
            let own = try? schemaID()
            let writer: ProtobufSchema
            if own == header.schemaID {
                writer = schema
            } else {
                let found: (type: SchemaType, schema: String)
                do {
                    found = try client.schema(id: header.schemaID)
                } catch let error as SchemaRegistryError {
                    throw EddyError(.serialization, "schema id \(header.schemaID) of the record is unknown to the registry: \(error.message)")
                }
                guard found.type == .protobuf else { throw EddyError(.serialization, "schema id \(header.schemaID) is a \(found.type.rawValue) schema, not Protobuf") }
                writer = try ProtobufSchema(parsing: found.schema)
            }
            guard let message = writer.message(at: header.messageIndexes ?? [0]) else {
                throw EddyError(.serialization, "message indexes \(header.messageIndexes ?? [0]) do not name a message of schema \(header.schemaID)")
            }
            return message.fullName
        }
        guard writerName == Value.protoMessageName else {
            throw EddyError(.serialization, "the record holds a \(writerName), not a \(Value.protoMessageName)")
        }
        do {
            return try Value(serializedBytes: Array(bytes[header.payloadOffset...]))
        } catch {
            throw EddyError(.serialization, "cannot decode \(Value.protoMessageName): \(error)")
        }
    }
}

/// Cached ids and writer message names, shared by copies of a serde.
final class ProtobufSerdeCache: @unchecked Sendable {
    // @unchecked: both fields are only touched under `lock`.
    private let lock = NSLock()
    private var ownID: Int?
    private var names: [String: String] = [:]
    /// Most (id, indexes) pairs remembered before the cache is cleared.
    static let maximumEntries = 1000

    func id(_ make: () throws -> Int) throws -> Int {
        if let id = lock.withLock({ ownID }) { return id }
        let id = try make()
        lock.withLock { ownID = id }
        return id
    }

    func messageName(id: Int, indexes: [Int], _ make: () throws -> String) throws -> String {
        let key = "\(id):\(indexes)"
        if let name = lock.withLock({ names[key] }) { return name }
        let name = try make()
        lock.withLock {
            if names.count >= Self.maximumEntries { names.removeAll() }
            names[key] = name
        }
        return name
    }
}
