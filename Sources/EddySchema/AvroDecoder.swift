import EddyCore
import Foundation

/// Decodes `Decodable` Swift values straight from Avro binary, driven by a schema (no
/// intermediate generic value when the data was written with the same schema).
///
/// Mapping is the inverse of ``AvroEncoder``'s. Properties are matched to record fields by
/// name; reading them in the schema's order (what synthesized `init(from:)` does when the
/// declaration order follows the schema) reads the data in one pass, any other order works too
/// (earlier fields are skipped and their positions remembered). Properties with no field in the
/// schema are absent (`decodeIfPresent` gives nil). Data written with a different schema is read
/// through ``AvroResolver`` first (`decode(_:from:writer:)`).
///
/// Truncated, malformed or trailing data throws ``EddyError/Code/serialization`` naming the byte
/// position; a value the Swift type cannot hold (an out-of-range integer, an unknown enum case)
/// throws the same code naming the coding path.
public struct AvroDecoder: Sendable {
    public let schema: AvroSchema

    public init(schema: AvroSchema) { self.schema = schema }

    /// Decodes one datum written with ``schema``.
    public func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try bytes.withUnsafeBufferPointer { buffer in
            let state = AvroDecodingState(reader: AvroReader(buffer), nodes: schema.nodes)
            let value: T
            do {
                value = try state.decodeValue(type, node: schema.root, codingPath: [], depth: 0)
            } catch let error as EddyError {
                throw error
            } catch let error as DecodingError {
                throw EddyError(.serialization, AvroDecodingState.describe(error))
            }
            guard state.reader.position == buffer.count else {
                throw EddyError(.serialization, "\(buffer.count - state.reader.position) bytes left over after the Avro value")
            }
            return value
        }
    }

    /// Decodes one datum written with `writer`, resolved to ``schema`` per the Avro specification.
    public func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], writer: AvroSchema) throws -> T {
        if writer == schema { return try decode(type, from: bytes) }
        let resolver = try AvroResolver(writer: writer, reader: schema)
        return try decode(type, from: try schema.encode(try resolver.decode(bytes)))
    }
}

final class AvroDecodingState {
    var reader: AvroReader
    let nodes: [AvroNode]

    init(reader: AvroReader, nodes: [AvroNode]) {
        self.reader = reader
        self.nodes = nodes
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ p: [any CodingKey]) -> String { p.isEmpty ? "the value" : p.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") }
        switch error {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c):
            return "\(path(c.codingPath)): \(c.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    func fail(_ path: [any CodingKey], _ message: String) -> EddyError {
        let where_ = path.isEmpty ? "the value" : path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        return EddyError(.serialization, "\(where_): \(message)")
    }

    /// Reads a union's branch index and returns the branch node (other nodes pass through).
    @inline(__always) func resolve(_ node: Int, codingPath: [any CodingKey]) throws -> Int {
        guard case .union(let branches) = nodes[node] else { return node }
        let i = try reader.readLong()
        guard i >= 0, i < branches.count else { throw EddyError(.serialization, "union branch \(i) out of range (the union has \(branches.count)) at byte \(reader.position)") }
        return branches[Int(i)]
    }

    /// Whether the next value at `node` is null; consumes it only if it is.
    func peekNil(_ node: Int) throws -> Bool {
        switch nodes[node] {
        case .null: return true
        case .union(let branches):
            let start = reader.position
            let i = try reader.readLong()
            guard i >= 0, i < branches.count else { throw EddyError(.serialization, "union branch \(i) out of range at byte \(reader.position)") }
            if case .null = nodes[branches[Int(i)]] { return true }
            reader.position = start
            return false
        default: return false
        }
    }

    func decodeValue<T: Decodable>(_ type: T.Type, node: Int, codingPath: [any CodingKey], depth: Int) throws -> T {
        guard depth < AvroLimits.maximumValueDepth else { throw fail(codingPath, "nested deeper than \(AvroLimits.maximumValueDepth) (AvroLimits.maximumValueDepth)") }
        if type == [UInt8].self || type == Data.self || type == Date.self || type == UUID.self {
            let n = try resolve(node, codingPath: codingPath)
            if type == UUID.self {
                guard case .string = nodes[n] else { throw fail(codingPath, "UUID wanted from Avro type \(nodes[n].kindName)") }
                let s = try reader.readString()
                guard let uuid = UUID(uuidString: s) else { throw fail(codingPath, "\"\(s)\" is not a UUID") }
                return uuid as! T
            }
            if type == Date.self {
                switch nodes[n] {
                case .long(let logical):
                    let v = try reader.readLong()
                    switch logical {
                    case .timestampMicros, .localTimestampMicros: return Date(timeIntervalSince1970: Double(v) / 1_000_000) as! T
                    default: return Date(timeIntervalSince1970: Double(v) / 1000) as! T
                    }
                case .int(.date):
                    return Date(timeIntervalSince1970: Double(try reader.readInt()) * 86_400) as! T
                default: throw fail(codingPath, "Date wanted from Avro type \(nodes[n].kindName)")
                }
            }
            let bytes: [UInt8]
            switch nodes[n] {
            case .bytes, .string: bytes = try reader.readBytes()
            case .fixed(_, let size, _): bytes = Array(try reader.readRaw(size, "a fixed"))
            default: throw fail(codingPath, "bytes wanted from Avro type \(nodes[n].kindName)")
            }
            return (type == Data.self ? Data(bytes) as! T : bytes as! T)
        }
        let decoder = _AvroDecoder(state: self, node: node, codingPath: codingPath, depth: depth)
        let value = try T(from: decoder)
        try decoder.finish()
        return value
    }

    /// Decodes a primitive at `node` (resolving a union) through a single-value container.
    @inline(__always)
    func decodePrimitive<T>(node: Int, codingPath: [any CodingKey], key: (any CodingKey)?, depth: Int, _ body: (AvroSingleValueDecoding) throws -> T) throws -> T {
        let n = try resolve(node, codingPath: codingPath)
        return try body(AvroSingleValueDecoding(state: self, nodeIndex: n, basePath: codingPath, key: key, depth: depth, resolved: true))
    }
}

protocol AvroDecodingContainerFinisher: AnyObject {
    func finish() throws
}

final class _AvroDecoder: Decoder {
    let state: AvroDecodingState
    let node: Int
    let codingPath: [any CodingKey]
    let depth: Int
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    var pending: (any AvroDecodingContainerFinisher)?

    init(state: AvroDecodingState, node: Int, codingPath: [any CodingKey], depth: Int) {
        self.state = state
        self.node = node
        self.codingPath = codingPath
        self.depth = depth
    }

    func finish() throws {
        try pending?.finish()
        pending = nil
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        let n = try state.resolve(node, codingPath: codingPath)
        switch state.nodes[n] {
        case .record(let name, let fields, _):
            let storage = AvroRecordDecoding(state: state, name: name.fullName, fields: fields, codingPath: codingPath, depth: depth)
            pending = storage
            return KeyedDecodingContainer(AvroKeyedDecodingContainer<Key>(storage: storage))
        case .map(let values):
            let storage = try AvroMapDecoding(state: state, valueNode: values, codingPath: codingPath, depth: depth)
            pending = storage
            return KeyedDecodingContainer(AvroKeyedDecodingContainer<Key>(storage: storage))
        default:
            throw state.fail(codingPath, "a keyed value (struct or dictionary) wanted from Avro type \(state.nodes[n].kindName)")
        }
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let n = try state.resolve(node, codingPath: codingPath)
        guard case .array(let items) = state.nodes[n] else {
            throw state.fail(codingPath, "a list wanted from Avro type \(state.nodes[n].kindName)")
        }
        let storage = AvroArrayDecoding(state: state, itemNode: items, codingPath: codingPath, depth: depth)
        pending = storage
        return storage
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        AvroSingleValueDecoding(state: state, nodeIndex: node, basePath: codingPath, key: nil, depth: depth, resolved: false)
    }
}

protocol AvroKeyedDecodingStorage: AvroDecodingContainerFinisher {
    var codingPath: [any CodingKey] { get }
    var keyNames: [String] { get }
    func contains(_ name: String) -> Bool
    func decodeNil(_ key: any CodingKey) throws -> Bool
    func decode<T: Decodable>(_ type: T.Type, _ key: any CodingKey) throws -> T
    func decodePrimitive<T>(_ key: any CodingKey, _ body: (AvroSingleValueDecoding) throws -> T) throws -> T
}

final class AvroRecordDecoding: AvroKeyedDecodingStorage {
    let state: AvroDecodingState
    let name: String
    let fields: [AvroField]
    let codingPath: [any CodingKey]
    let depth: Int
    /// offsets[k] is where field k starts, known for k <= known.
    var offsets: [Int]
    var known = 0
    var cursor = 0

    init(state: AvroDecodingState, name: String, fields: [AvroField], codingPath: [any CodingKey], depth: Int) {
        self.state = state
        self.name = name
        self.fields = fields
        self.codingPath = codingPath
        self.depth = depth
        offsets = [Int](repeating: 0, count: fields.count + 1)
        offsets[0] = state.reader.position
    }

    var keyNames: [String] { fields.map(\.name) }
    func contains(_ name: String) -> Bool { fields.contains { $0.name == name } }

    func index(of key: any CodingKey) throws -> Int {
        let name = key.stringValue
        if cursor < fields.count, fields[cursor].name == name { return cursor }
        guard let j = fields.firstIndex(where: { $0.name == name }) else {
            throw DecodingError.keyNotFound(key, DecodingError.Context(codingPath: codingPath, debugDescription: "record \(self.name) has no field \"\(name)\""))
        }
        return j
    }

    /// Positions the reader at field `j`, skipping (and remembering) fields before it.
    func seek(_ j: Int) throws {
        if known < j {
            state.reader.position = offsets[known]
            try state.nodes.withUnsafeBufferPointer { nodes in
                while known < j {
                    try AvroSchema.skip(node: fields[known].type, nodes: nodes, reader: &state.reader, depth: depth + 1)
                    known += 1
                    offsets[known] = state.reader.position
                }
            }
        }
        state.reader.position = offsets[j]
    }

    @inline(__always) func done(_ j: Int) {
        if known == j {
            known = j + 1
            offsets[known] = state.reader.position
        }
        cursor = j + 1
    }

    func decodeNil(_ key: any CodingKey) throws -> Bool {
        guard let j = fields.firstIndex(where: { $0.name == key.stringValue }) else { return true }
        try seek(j)
        if try state.peekNil(fields[j].type) {
            done(j)
            return true
        }
        return false
    }

    func decode<T: Decodable>(_ type: T.Type, _ key: any CodingKey) throws -> T {
        let j = try index(of: key)
        try seek(j)
        let value = try state.decodeValue(type, node: fields[j].type, codingPath: codingPath + [key], depth: depth + 1)
        done(j)
        return value
    }

    func decodePrimitive<T>(_ key: any CodingKey, _ body: (AvroSingleValueDecoding) throws -> T) throws -> T {
        let j = try index(of: key)
        try seek(j)
        let value = try state.decodePrimitive(node: fields[j].type, codingPath: codingPath, key: key, depth: depth + 1, body)
        done(j)
        return value
    }

    func finish() throws {
        try seek(fields.count)
    }
}

final class AvroMapDecoding: AvroKeyedDecodingStorage {
    let state: AvroDecodingState
    let valueNode: Int
    let codingPath: [any CodingKey]
    let depth: Int
    var entries: [String: Int] = [:]
    var order: [String] = []
    var end = 0

    init(state: AvroDecodingState, valueNode: Int, codingPath: [any CodingKey], depth: Int) throws {
        self.state = state
        self.valueNode = valueNode
        self.codingPath = codingPath
        self.depth = depth
        try state.nodes.withUnsafeBufferPointer { nodes in
            while true {
                let (n, _) = try state.reader.readBlockCount()
                if n == 0 { break }
                for _ in 0..<n {
                    let key = try state.reader.readString()
                    if entries[key] == nil { order.append(key) }
                    entries[key] = state.reader.position
                    try AvroSchema.skip(node: valueNode, nodes: nodes, reader: &state.reader, depth: depth + 1)
                }
            }
        }
        end = state.reader.position
    }

    var keyNames: [String] { order }
    func contains(_ name: String) -> Bool { entries[name] != nil }

    func position(_ key: any CodingKey) throws -> Int {
        guard let p = entries[key.stringValue] else {
            throw DecodingError.keyNotFound(key, DecodingError.Context(codingPath: codingPath, debugDescription: "the map has no key \"\(key.stringValue)\""))
        }
        return p
    }

    func decodeNil(_ key: any CodingKey) throws -> Bool {
        state.reader.position = try position(key)
        return try state.peekNil(valueNode)
    }

    func decode<T: Decodable>(_ type: T.Type, _ key: any CodingKey) throws -> T {
        state.reader.position = try position(key)
        return try state.decodeValue(type, node: valueNode, codingPath: codingPath + [key], depth: depth + 1)
    }

    func decodePrimitive<T>(_ key: any CodingKey, _ body: (AvroSingleValueDecoding) throws -> T) throws -> T {
        state.reader.position = try position(key)
        return try state.decodePrimitive(node: valueNode, codingPath: codingPath, key: key, depth: depth + 1, body)
    }

    func finish() throws { state.reader.position = end }
}

struct AvroKeyedDecodingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let storage: any AvroKeyedDecodingStorage
    var codingPath: [any CodingKey] { storage.codingPath }
    var allKeys: [Key] { storage.keyNames.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { storage.contains(key.stringValue) }
    func decodeNil(forKey key: Key) throws -> Bool { try storage.decodeNil(key) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try storage.decode(type, key) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try storage.decodePrimitive(key) { try $0.decode(type) } }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try storage.decodePrimitive(key) { try $0.decode(type) } }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try storage.decodePrimitive(key) { try $0.decode(type) } }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try storage.decodePrimitive(key) { try $0.decode(type) } }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try storage.decodePrimitive(key) { try $0.decode(type) } }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try storage.decodePrimitive(key) { try $0.decode(type) } }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try storage.decodePrimitive(key) { try $0.decode(type) } }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard storage.contains(key.stringValue) else { return nil }
        if try storage.decodeNil(key) { return nil }
        return try storage.decode(type, key)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        throw EddyError(.serialization, "nested containers are not supported by the Avro decoder; decode a nested Decodable value instead")
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        throw EddyError(.serialization, "nested containers are not supported by the Avro decoder; decode a nested Decodable value instead")
    }
    func superDecoder() throws -> any Decoder { throw EddyError(.serialization, "super decoders are not supported by the Avro decoder") }
    func superDecoder(forKey key: Key) throws -> any Decoder { throw EddyError(.serialization, "super decoders are not supported by the Avro decoder") }
}

final class AvroArrayDecoding: UnkeyedDecodingContainer, AvroDecodingContainerFinisher {
    let state: AvroDecodingState
    let itemNode: Int
    let codingPath: [any CodingKey]
    let depth: Int
    var currentIndex = 0
    var remainingInBlock = 0
    var ended = false
    var failure: (any Error)?

    init(state: AvroDecodingState, itemNode: Int, codingPath: [any CodingKey], depth: Int) {
        self.state = state
        self.itemNode = itemNode
        self.codingPath = codingPath
        self.depth = depth
    }

    var count: Int? { nil }

    /// Reads the next block header when the current block is used up.
    func advance() throws {
        while remainingInBlock == 0, !ended {
            let (n, _) = try state.reader.readBlockCount()
            if n == 0 { ended = true } else { remainingInBlock = n }
        }
    }

    var isAtEnd: Bool {
        do {
            try advance()
        } catch {
            // Reported by the next decode call (isAtEnd cannot throw).
            failure = error
            return false
        }
        return ended
    }

    func next<T>(_ body: () throws -> T) throws -> T {
        if let failure { throw failure }
        try advance()
        guard !ended else {
            throw DecodingError.valueNotFound(Any.self, DecodingError.Context(codingPath: codingPath, debugDescription: "the array has no more items"))
        }
        let value = try body()
        remainingInBlock -= 1
        currentIndex += 1
        return value
    }

    func decodeNil() throws -> Bool {
        if let failure { throw failure }
        try advance()
        guard !ended else { return false }
        if try state.peekNil(itemNode) {
            remainingInBlock -= 1
            currentIndex += 1
            return true
        }
        return false
    }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try next { try state.decodeValue(type, node: itemNode, codingPath: codingPath + [AvroArrayEncoding.Index(currentIndex)], depth: depth + 1) }
    }
    func decode(_ type: String.Type) throws -> String { try next { try state.decodePrimitive(node: itemNode, codingPath: codingPath, key: AvroArrayEncoding.Index(currentIndex), depth: depth + 1) { try $0.decode(type) } } }
    func decode(_ type: Int.Type) throws -> Int { try next { try state.decodePrimitive(node: itemNode, codingPath: codingPath, key: AvroArrayEncoding.Index(currentIndex), depth: depth + 1) { try $0.decode(type) } } }
    func decode(_ type: Int64.Type) throws -> Int64 { try next { try state.decodePrimitive(node: itemNode, codingPath: codingPath, key: AvroArrayEncoding.Index(currentIndex), depth: depth + 1) { try $0.decode(type) } } }
    func decode(_ type: Double.Type) throws -> Double { try next { try state.decodePrimitive(node: itemNode, codingPath: codingPath, key: AvroArrayEncoding.Index(currentIndex), depth: depth + 1) { try $0.decode(type) } } }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        throw EddyError(.serialization, "nested containers are not supported by the Avro decoder")
    }
    func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw EddyError(.serialization, "nested containers are not supported by the Avro decoder")
    }
    func superDecoder() throws -> any Decoder { throw EddyError(.serialization, "super decoders are not supported by the Avro decoder") }

    func finish() throws {
        if let failure { throw failure }
        try state.nodes.withUnsafeBufferPointer { nodes in
            while true {
                try advance()
                if ended { break }
                try AvroSchema.skip(node: itemNode, nodes: nodes, reader: &state.reader, depth: depth + 1)
                remainingInBlock -= 1
            }
        }
    }
}

struct AvroSingleValueDecoding: SingleValueDecodingContainer {
    let state: AvroDecodingState
    let nodeIndex: Int
    let basePath: [any CodingKey]
    /// The field, key or index this value is for; joined to the path only for messages.
    let key: (any CodingKey)?
    var codingPath: [any CodingKey] { key.map { basePath + [$0] } ?? basePath }
    let depth: Int
    /// Whether a union at `nodeIndex` has already been resolved to its branch.
    let resolved: Bool

    func target() throws -> AvroNode {
        resolved ? state.nodes[nodeIndex] : state.nodes[try state.resolve(nodeIndex, codingPath: codingPath)]
    }

    func mismatch(_ what: String, _ node: AvroNode) -> EddyError {
        state.fail(codingPath, "\(what) wanted from Avro type \(node.name?.fullName ?? node.kindName)")
    }

    func decodeNil() -> Bool {
        // A peek failure (truncated data) surfaces from the decode call that follows.
        (try? state.peekNil(nodeIndex)) ?? false
    }

    func decode(_ type: Bool.Type) throws -> Bool {
        let node = try target()
        guard case .boolean = node else { throw mismatch("a Bool", node) }
        return try state.reader.readBoolean()
    }

    func decode(_ type: String.Type) throws -> String {
        let node = try target()
        switch node {
        case .string: return try state.reader.readString()
        case .bytes:
            let b = try state.reader.readBytes()
            guard let s = String(validating: b, as: UTF8.self) else { throw state.fail(codingPath, "bytes are not valid UTF-8") }
            return s
        case .enumeration(let name, let symbols, _):
            let i = try state.reader.readLong()
            guard i >= 0, i < symbols.count else { throw state.fail(codingPath, "enum \(name.fullName) has no symbol number \(i)") }
            return symbols[Int(i)]
        default: throw mismatch("a String", node)
        }
    }

    func decode(_ type: Double.Type) throws -> Double {
        let node = try target()
        switch node {
        case .double: return try state.reader.readDouble()
        case .float: return Double(try state.reader.readFloat())
        case .int, .long: return Double(try state.reader.readLong())
        default: throw mismatch("a Double", node)
        }
    }

    func decode(_ type: Float.Type) throws -> Float {
        let node = try target()
        switch node {
        case .float: return try state.reader.readFloat()
        case .double: return Float(try state.reader.readDouble())
        case .int, .long: return Float(try state.reader.readLong())
        default: throw mismatch("a Float", node)
        }
    }

    func decodeInteger<I: FixedWidthInteger>(_ type: I.Type) throws -> I {
        let node = try target()
        switch node {
        case .int, .long:
            let v = try state.reader.readLong()
            guard let i = I(exactly: v) else { throw state.fail(codingPath, "\(v) does not fit in \(I.self)") }
            return i
        default: throw mismatch("an integer", node)
        }
    }

    func decode(_ type: Int.Type) throws -> Int { try decodeInteger(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try decodeInteger(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try decodeInteger(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try decodeInteger(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try decodeInteger(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try decodeInteger(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try decodeInteger(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try decodeInteger(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try decodeInteger(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try decodeInteger(type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try state.decodeValue(type, node: nodeIndex, codingPath: codingPath, depth: depth + 1)
    }
}
