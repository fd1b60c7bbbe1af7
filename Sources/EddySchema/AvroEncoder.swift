import EddyCore
import Foundation

/// Encodes `Encodable` Swift values straight to Avro binary, driven by a schema (no
/// intermediate generic value).
///
/// Mapping: structs and classes to records (properties matched to fields by name; the synthesized
/// `encode(to:)` writes them in declaration order, which should follow the schema's field order;
/// a property for a field *before* one already written is refused), `Optional` to a union with
/// `null`, fields the value leaves out (`nil` optionals) to `null` or the field's default,
/// `[T]` to arrays, `[String: T]` to maps, `String` to strings, enum symbols and `uuid`,
/// integers and floating-point numbers to int/long/float/double (range-checked), `[UInt8]` and
/// `Data` to bytes/fixed, `Date` to `timestamp-millis`/`timestamp-micros`/`date`, `UUID` to
/// `uuid` strings. Values that do not match the schema throw ``EddyError/Code/serialization``
/// naming the coding path.
///
/// An encoder is a cheap value; it may be used from any thread (each call has its own state).
///
/// ```swift
/// struct User: Codable { var id: Int64; var name: String; var email: String? }
/// let bytes = try AvroEncoder(schema: schema).encode(User(id: 1, name: "Ada", email: nil))
/// ```
public struct AvroEncoder: Sendable {
    public let schema: AvroSchema

    public init(schema: AvroSchema) { self.schema = schema }

    /// Encodes `value` as one Avro datum of ``schema``.
    public func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        try encode(value, appendingTo: &bytes)
        return bytes
    }

    /// Appends the encoding of `value` to `bytes`.
    public func encode<T: Encodable>(_ value: T, appendingTo bytes: inout [UInt8]) throws {
        let state = AvroEncodingState(nodes: schema.nodes, cache: schema.programCache)
        swap(&state.writer.bytes, &bytes)
        defer { swap(&state.writer.bytes, &bytes) }
        do {
            try state.encodeValue(value, node: schema.root, codingPath: [], depth: 0)
        } catch let error as EddyError {
            throw error
        } catch {
            throw EddyError(.serialization, "Avro encoding failed: \(error)")
        }
    }
}

/// Shared state of one encoding call.
final class AvroEncodingState {
    /// The writer lives behind a pointer: it is mutated on every write, and a stored class
    /// property would pay a dynamic exclusivity check each time.
    private let writerStorage: UnsafeMutablePointer<AvroWriter>
    var writer: AvroWriter {
        _read { yield writerStorage.pointee }
        _modify { yield &writerStorage.pointee }
    }
    let nodes: [AvroNode]
    let cache: AvroProgramCache

    init(nodes: [AvroNode], cache: AvroProgramCache) {
        writerStorage = .allocate(capacity: 1)
        writerStorage.initialize(to: AvroWriter(capacity: 0))
        self.nodes = nodes
        self.cache = cache
    }

    deinit {
        writerStorage.deinitialize(count: 1)
        writerStorage.deallocate()
    }

    /// A state for encoders that only fail (nested and super encoders are not supported).
    static func empty() -> AvroEncodingState {
        AvroEncodingState(nodes: [.null], cache: AvroProgramCache(nodes: [.null], root: 0))
    }

    func fail(_ path: [any CodingKey], _ message: String) -> EddyError {
        let where_ = path.isEmpty ? "the value" : path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        return EddyError(.serialization, "\(where_): \(message)")
    }

    /// Picks the branch of a union for a non-null value: the only non-null branch, else the
    /// first branch that accepts the value (tried on a scratch buffer).
    func encodeValue<T: Encodable>(_ value: T, node: Int, codingPath: [any CodingKey], depth: Int) throws {
        guard depth < AvroLimits.maximumValueDepth else { throw fail(codingPath, "nested deeper than \(AvroLimits.maximumValueDepth) (AvroLimits.maximumValueDepth)") }
        switch cache.kinds[node] {
        case .union:
            let single = cache.singleBranch[node]
            if single >= 0 {
                writer.writeLong(Int64(single))
                try encodeValue(value, node: cache.singleBranchNode[node], codingPath: codingPath, depth: depth + 1)
                return
            }
            guard case .union(let branches) = nodes[node] else { return }
            let start = writer.bytes.count
            var lastError: (any Error)?
            for i in branches.indices {
                writer.writeLong(Int64(i))
                do {
                    try encodeValue(value, node: branches[i], codingPath: codingPath, depth: depth + 1)
                    return
                } catch {
                    lastError = error
                    writer.bytes.removeSubrange(start...)
                }
            }
            throw lastError ?? fail(codingPath, "no union branch accepts the value")
        case .bytes, .fixed:
            if let b = value as? [UInt8] { try encodeBytes(b, node: node, codingPath: codingPath); return }
            if let d = value as? Data { try encodeBytes(Array(d), node: node, codingPath: codingPath); return }
        case .long:
            if let date = value as? Date {
                guard case .long(let logical) = nodes[node] else { return }
                switch logical {
                case .timestampMicros, .localTimestampMicros: writer.writeLong(Int64((date.timeIntervalSince1970 * 1_000_000).rounded()))
                default: writer.writeLong(Int64((date.timeIntervalSince1970 * 1000).rounded()))
                }
                return
            }
        case .int:
            if let date = value as? Date, case .int(.date) = nodes[node] {
                writer.writeLong(Int64((date.timeIntervalSince1970 / 86_400).rounded(.down)))
                return
            }
        case .string:
            if let uuid = value as? UUID { writer.writeString(uuid.uuidString.lowercased()); return }
        default: break
        }
        if let layout = cache.layouts[node] {
            // A record: its field storage is the encoder too (one object per record, not two).
            let record = AvroRecordEncoding(state: self, layout: layout, node: node, codingPath: codingPath, depth: depth)
            try value.encode(to: record)
            try record.finishEncoding()
            return
        }
        let encoder = _AvroEncoder(state: self, node: node, codingPath: codingPath, depth: depth)
        try value.encode(to: encoder)
        try encoder.finish()
    }

    /// Writes a primitive without an intermediate `Encoder`: resolves a union with one non-null
    /// branch, then hands a single-value container for the branch to `body`. Returns false (and
    /// writes nothing) for unions with several non-null branches, which take the generic path.
    @inline(__always)
    func encodePrimitive(node: Int, codingPath: [any CodingKey], key: any CodingKey, depth: Int, _ body: (inout AvroSingleValueEncoding) throws -> Void) throws -> Bool {
        var target = node
        if cache.kinds[node] == .union {
            let single = cache.singleBranch[node]
            guard single >= 0 else { return false }
            writer.writeLong(Int64(single))
            target = cache.singleBranchNode[node]
        }
        var container = AvroSingleValueEncoding(state: self, nodeIndex: target, codingPath: codingPath, key: key, depth: depth)
        try body(&container)
        return true
    }

    func encodeBytes(_ b: [UInt8], node: Int, codingPath: [any CodingKey]) throws {
        switch nodes[node] {
        case .bytes: writer.writeBytes(b)
        case .fixed(let name, let size, _):
            guard b.count == size else { throw fail(codingPath, "fixed \(name.fullName) needs \(size) bytes, the value has \(b.count)") }
            writer.bytes.append(contentsOf: b)
        default: throw fail(codingPath, "bytes given for Avro type \(nodes[node].kindName)")
        }
    }

    /// Writes what an absent field holds: `null` in a union with null, else the field's default.
    func encodeAbsent(_ field: AvroField, record: String, codingPath: [any CodingKey]) throws {
        if cache.kinds[field.type] == .union, cache.nullBranch[field.type] >= 0 {
            writer.writeLong(Int64(cache.nullBranch[field.type]))
            return
        }
        if let d = field.defaultValue {
            try nodes.withUnsafeBufferPointer { try AvroSchema.encode(d, node: field.type, nodes: $0, into: &writer, depth: 0) }
            return
        }
        throw fail(codingPath, "record \(record) needs field \"\(field.name)\", which the value does not provide (and it has no default)")
    }
}

/// Finishes a container when the value that opened it is done.
protocol AvroEncodingContainerFinisher: AnyObject {
    func finish() throws
}

final class _AvroEncoder: Encoder {
    let state: AvroEncodingState
    let node: Int
    let codingPath: [any CodingKey]
    let depth: Int
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    var pending: (any AvroEncodingContainerFinisher)?

    init(state: AvroEncodingState, node: Int, codingPath: [any CodingKey], depth: Int) {
        self.state = state
        self.node = node
        self.codingPath = codingPath
        self.depth = depth
    }

    func finish() throws {
        try pending?.finish()
        pending = nil
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if let layout = state.cache.layouts[node] {
            let storage = AvroRecordEncoding(state: state, layout: layout, codingPath: codingPath, depth: depth)
            pending = storage
            return KeyedEncodingContainer(AvroRecordKeyedEncodingContainer<Key>(storage: storage))
        }
        switch state.nodes[node] {
        case .map(let values):
            let storage = AvroMapEncoding(state: state, valueNode: values, codingPath: codingPath, depth: depth)
            pending = storage
            return KeyedEncodingContainer(AvroKeyedEncodingContainer<Key>(storage: storage))
        default:
            let storage = AvroFailingEncoding(error: state.fail(codingPath, "a keyed value (struct or dictionary) given for Avro type \(state.nodes[node].kindName)"))
            pending = storage
            return KeyedEncodingContainer(AvroKeyedEncodingContainer<Key>(storage: storage))
        }
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .array(let items) = state.nodes[node] {
            let storage = AvroArrayEncoding(state: state, itemNode: items, codingPath: codingPath, depth: depth)
            pending = storage
            return storage
        }
        let storage = AvroArrayEncoding(state: state, itemNode: node, codingPath: codingPath, depth: depth)
        storage.error = state.fail(codingPath, "a list given for Avro type \(state.nodes[node].kindName)")
        pending = storage
        return storage
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        AvroEncoderSingleValueContainer(encoder: self)
    }
}

/// A one-word single-value container (fits an existential's inline buffer, so handing it out
/// allocates nothing); it forwards to ``AvroSingleValueEncoding``.
struct AvroEncoderSingleValueContainer: SingleValueEncodingContainer {
    let encoder: _AvroEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }
    var inner: AvroSingleValueEncoding { AvroSingleValueEncoding(encoder: encoder) }
    mutating func encodeNil() throws { var c = inner; try c.encodeNil() }
    mutating func encode(_ value: Bool) throws { var c = inner; try c.encode(value) }
    mutating func encode(_ value: String) throws { var c = inner; try c.encode(value) }
    mutating func encode(_ value: Double) throws { var c = inner; try c.encode(value) }
    mutating func encode(_ value: Float) throws { var c = inner; try c.encode(value) }
    mutating func encode(_ value: Int) throws { var c = inner; try c.encode(value) }
    mutating func encode(_ value: Int8) throws { var c = inner; try c.encode(value) }
    mutating func encode(_ value: Int16) throws { var c = inner; try c.encode(value) }
    mutating func encode(_ value: Int32) throws { var c = inner; try c.encode(value) }
    mutating func encode(_ value: Int64) throws { var c = inner; try c.encode(value) }
    mutating func encode(_ value: UInt) throws { var c = inner; try c.encode(value) }
    mutating func encode(_ value: UInt8) throws { var c = inner; try c.encode(value) }
    mutating func encode(_ value: UInt16) throws { var c = inner; try c.encode(value) }
    mutating func encode(_ value: UInt32) throws { var c = inner; try c.encode(value) }
    mutating func encode(_ value: UInt64) throws { var c = inner; try c.encode(value) }
    mutating func encode<T: Encodable>(_ value: T) throws { var c = inner; try c.encode(value) }
}

/// A keyed container's work, shared by records and maps (the container itself is a struct).
protocol AvroKeyedEncodingStorage: AvroEncodingContainerFinisher {
    var codingPath: [any CodingKey] { get }
    func encodeNil(key: any CodingKey) throws
    func encode<T: Encodable>(_ value: T, key: any CodingKey) throws
    /// Encodes a primitive for `key` through a single-value container (no `Encoder` made).
    func encodePrimitive<T: Encodable>(_ value: T, key: any CodingKey, _ body: (inout AvroSingleValueEncoding) throws -> Void) throws
}

final class AvroFailingEncoding: AvroKeyedEncodingStorage {
    let error: EddyError
    var codingPath: [any CodingKey] { [] }
    init(error: EddyError) { self.error = error }
    func finish() throws { throw error }
    func encodeNil(key: any CodingKey) throws { throw error }
    func encode<T: Encodable>(_ value: T, key: any CodingKey) throws { throw error }
    func encodePrimitive<T: Encodable>(_ value: T, key: any CodingKey, _ body: (inout AvroSingleValueEncoding) throws -> Void) throws { throw error }
}

final class AvroRecordEncoding: AvroKeyedEncodingStorage, Encoder {
    let state: AvroEncodingState
    let layout: AvroRecordLayout
    /// The record's node, for values that encode through another container kind.
    let node: Int
    let codingPath: [any CodingKey]
    let depth: Int
    var cursor = 0
    /// As an `Encoder`: the container handed out, finished when the value is done.
    var delegate: _AvroEncoder?
    var keyed = false

    init(state: AvroEncodingState, layout: AvroRecordLayout, node: Int = -1, codingPath: [any CodingKey], depth: Int) {
        self.state = state
        self.layout = layout
        self.node = node
        self.codingPath = codingPath
        self.depth = depth
    }

    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        keyed = true
        return KeyedEncodingContainer(AvroRecordKeyedEncodingContainer<Key>(storage: self))
    }

    /// A value that encodes a record through a list or a single value (a wrapper type): handled,
    /// and checked, by a general encoder for the record's node.
    func other() -> _AvroEncoder {
        if let delegate { return delegate }
        let encoder = _AvroEncoder(state: state, node: node, codingPath: codingPath, depth: depth)
        delegate = encoder
        return encoder
    }
    func unkeyedContainer() -> any UnkeyedEncodingContainer { other().unkeyedContainer() }
    func singleValueContainer() -> any SingleValueEncodingContainer { other().singleValueContainer() }

    func finishEncoding() throws {
        if keyed { try finish() }
        try delegate?.finish()
    }

    /// Moves to the field named `key`, filling skipped fields with null or their defaults.
    @inline(__always) func seek(_ key: any CodingKey) throws -> Int {
        let name = key.stringValue
        let names = layout.names
        let index: Int
        if cursor < names.count, names[cursor] == name {
            index = cursor
        } else if let j = names.firstIndex(of: name) {
            guard j >= cursor else {
                throw state.fail(codingPath + [key], "field \"\(name)\" of \(layout.fullName) is written after a later field or twice; encode properties in the schema's field order")
            }
            index = j
        } else {
            throw state.fail(codingPath + [key], "record \(layout.fullName) has no field \"\(name)\"")
        }
        while cursor < index {
            try state.encodeAbsent(layout.fields[cursor], record: layout.fullName, codingPath: codingPath)
            cursor += 1
        }
        cursor = index + 1
        return index
    }

    func encodeNil(key: any CodingKey) throws {
        let i = try seek(key)
        let type = layout.types[i]
        switch state.cache.kinds[type] {
        case .null: return
        case .union where state.cache.nullBranch[type] >= 0: state.writer.writeLong(Int64(state.cache.nullBranch[type]))
        default: throw state.fail(codingPath + [key], "nil given for field \"\(layout.names[i])\", which is not nullable")
        }
    }

    func encode<T: Encodable>(_ value: T, key: any CodingKey) throws {
        let i = try seek(key)
        try state.encodeValue(value, node: layout.types[i], codingPath: codingPath + [key], depth: depth + 1)
    }

    func encodePrimitive<T: Encodable>(_ value: T, key: any CodingKey, _ body: (inout AvroSingleValueEncoding) throws -> Void) throws {
        let i = try seek(key)
        if try !state.encodePrimitive(node: layout.types[i], codingPath: codingPath, key: key, depth: depth + 1, body) {
            try state.encodeValue(value, node: layout.types[i], codingPath: codingPath + [key], depth: depth + 1)
        }
    }

    /// Writes a primitive field: `fast` gets the target node (a single-branch union resolved,
    /// its index written) and returns false when the kind needs the general path (`body`).
    @inline(__always) func primitive<T: Encodable>(_ value: T, key: any CodingKey, _ fast: (Int) -> Bool,
                                                   _ body: (inout AvroSingleValueEncoding) throws -> Void) throws {
        let i = try seek(key)
        var target = layout.types[i]
        if state.cache.kinds[target] == .union {
            let single = state.cache.singleBranch[target]
            guard single >= 0 else {
                try state.encodeValue(value, node: target, codingPath: codingPath + [key], depth: depth + 1)
                return
            }
            state.writer.writeLong(Int64(single))
            target = state.cache.singleBranchNode[target]
        }
        if fast(target) { return }
        var container = AvroSingleValueEncoding(state: state, nodeIndex: target, codingPath: codingPath, key: key, depth: depth + 1)
        try body(&container)
    }

    func finish() throws {
        while cursor < layout.fields.count {
            try state.encodeAbsent(layout.fields[cursor], record: layout.fullName, codingPath: codingPath)
            cursor += 1
        }
    }
}

/// Map entries are written to a scratch buffer, then as one block (the count comes first).
final class AvroMapEncoding: AvroKeyedEncodingStorage {
    let state: AvroEncodingState
    let valueNode: Int
    let codingPath: [any CodingKey]
    let depth: Int
    var count = 0
    var buffer: [UInt8] = []

    init(state: AvroEncodingState, valueNode: Int, codingPath: [any CodingKey], depth: Int) {
        self.state = state
        self.valueNode = valueNode
        self.codingPath = codingPath
        self.depth = depth
    }

    func entry(_ key: any CodingKey, _ body: () throws -> Void) throws {
        swap(&buffer, &state.writer.bytes)
        defer { swap(&buffer, &state.writer.bytes) }
        state.writer.writeString(key.stringValue)
        try body()
        count += 1
    }

    func encodeNil(key: any CodingKey) throws {
        try entry(key) {
            guard case .union(let branches) = state.nodes[valueNode],
                  let n = branches.firstIndex(where: { if case .null = state.nodes[$0] { true } else { false } }) else {
                if case .null = state.nodes[valueNode] { return }
                throw state.fail(codingPath + [key], "nil given for a map value that is not nullable")
            }
            state.writer.writeLong(Int64(n))
        }
    }

    func encode<T: Encodable>(_ value: T, key: any CodingKey) throws {
        try entry(key) { try state.encodeValue(value, node: valueNode, codingPath: codingPath + [key], depth: depth + 1) }
    }

    func encodePrimitive<T: Encodable>(_ value: T, key: any CodingKey, _ body: (inout AvroSingleValueEncoding) throws -> Void) throws {
        try encode(value, key: key)
    }

    func finish() throws {
        if count > 0 {
            state.writer.writeLong(Int64(count))
            state.writer.bytes.append(contentsOf: buffer)
        }
        state.writer.writeLong(0)
    }
}

/// The keyed container of a record. It holds the concrete storage class (not an existential),
/// so primitive writes are direct, specialized calls.
struct AvroRecordKeyedEncodingContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let storage: AvroRecordEncoding
    var codingPath: [any CodingKey] { storage.codingPath }

    mutating func encodeNil(forKey key: Key) throws { try storage.encodeNil(key: key) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try storage.encode(value, key: key) }
    mutating func encode(_ value: String, forKey key: Key) throws {
        let state = storage.state
        try storage.primitive(value, key: key, { n in
            guard state.cache.kinds[n] == .string else { return false }
            state.writer.writeString(value)
            return true
        }) { try $0.encode(value) }
    }
    mutating func encode(_ value: Bool, forKey key: Key) throws {
        let state = storage.state
        try storage.primitive(value, key: key, { n in
            guard state.cache.kinds[n] == .boolean else { return false }
            state.writer.writeBoolean(value)
            return true
        }) { try $0.encode(value) }
    }
    mutating func encode(_ value: Double, forKey key: Key) throws {
        let state = storage.state
        try storage.primitive(value, key: key, { n in
            guard state.cache.kinds[n] == .double else { return false }
            state.writer.writeDouble(value)
            return true
        }) { try $0.encode(value) }
    }
    mutating func encode(_ value: Float, forKey key: Key) throws {
        let state = storage.state
        try storage.primitive(value, key: key, { n in
            guard state.cache.kinds[n] == .float else { return false }
            state.writer.writeFloat(value)
            return true
        }) { try $0.encode(value) }
    }
    /// Integers go straight to `long` or `int` when they fit; anything else (other kinds,
    /// out-of-range values and their errors) takes the single-value path.
    mutating func encode(_ value: Int64, forKey key: Key) throws {
        let state = storage.state
        try storage.primitive(value, key: key, { n in
            switch state.cache.kinds[n] {
            case .long:
                state.writer.writeLong(value)
                return true
            case .int:
                guard let v = Int32(exactly: value) else { return false }
                state.writer.writeInt(v)
                return true
            default: return false
            }
        }) { try $0.encode(value) }
    }
    mutating func encode(_ value: Int32, forKey key: Key) throws {
        let state = storage.state
        try storage.primitive(value, key: key, { n in
            let kind = state.cache.kinds[n]
            guard kind == .int || kind == .long else { return false }
            state.writer.writeLong(Int64(value))
            return true
        }) { try $0.encode(value) }
    }
    mutating func encode(_ value: Int, forKey key: Key) throws { try encode(Int64(value), forKey: key) }
    mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
    mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
    mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
    mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
    mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(AvroKeyedEncodingContainer<NestedKey>(storage: AvroFailingEncoding(
            error: EddyError(.serialization, "nested containers are not supported by the Avro encoder; encode a nested Encodable value instead"))))
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let storage = AvroArrayEncoding(state: AvroEncodingState.empty(), itemNode: 0, codingPath: codingPath, depth: 0)
        storage.error = EddyError(.serialization, "nested containers are not supported by the Avro encoder; encode a nested Encodable value instead")
        return storage
    }
    mutating func superEncoder() -> any Encoder { AvroUnsupportedEncoder(codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { AvroUnsupportedEncoder(codingPath: codingPath) }
}

/// The keyed container of a map, or of a value that cannot be keyed (it fails).
struct AvroKeyedEncodingContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let storage: any AvroKeyedEncodingStorage
    var codingPath: [any CodingKey] { storage.codingPath }

    mutating func encodeNil(forKey key: Key) throws { try storage.encodeNil(key: key) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try storage.encode(value, key: key) }
    mutating func encode(_ value: String, forKey key: Key) throws { try storage.encodePrimitive(value, key: key) { try $0.encode(value) } }
    mutating func encode(_ value: Bool, forKey key: Key) throws { try storage.encodePrimitive(value, key: key) { try $0.encode(value) } }
    mutating func encode(_ value: Double, forKey key: Key) throws { try storage.encodePrimitive(value, key: key) { try $0.encode(value) } }
    mutating func encode(_ value: Float, forKey key: Key) throws { try storage.encodePrimitive(value, key: key) { try $0.encode(value) } }
    mutating func encode(_ value: Int, forKey key: Key) throws { try storage.encodePrimitive(value, key: key) { try $0.encode(value) } }
    mutating func encode(_ value: Int32, forKey key: Key) throws { try storage.encodePrimitive(value, key: key) { try $0.encode(value) } }
    mutating func encode(_ value: Int64, forKey key: Key) throws { try storage.encodePrimitive(value, key: key) { try $0.encode(value) } }
    mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
    mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
    mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
    mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }
    mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(AvroKeyedEncodingContainer<NestedKey>(storage: AvroFailingEncoding(
            error: EddyError(.serialization, "nested containers are not supported by the Avro encoder; encode a nested Encodable value instead"))))
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let storage = AvroArrayEncoding(state: AvroEncodingState.empty(), itemNode: 0, codingPath: codingPath, depth: 0)
        storage.error = EddyError(.serialization, "nested containers are not supported by the Avro encoder; encode a nested Encodable value instead")
        return storage
    }
    mutating func superEncoder() -> any Encoder { AvroUnsupportedEncoder(codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { AvroUnsupportedEncoder(codingPath: codingPath) }
}

/// Stands in where the Avro encoder cannot follow (super encoders); every container fails at finish.
struct AvroUnsupportedEncoder: Encoder {
    var codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(AvroKeyedEncodingContainer<Key>(storage: AvroFailingEncoding(error: EddyError(.serialization, "super encoders are not supported by the Avro encoder"))))
    }
    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let storage = AvroArrayEncoding(state: AvroEncodingState.empty(), itemNode: 0, codingPath: codingPath, depth: 0)
        storage.error = EddyError(.serialization, "super encoders are not supported by the Avro encoder")
        return storage
    }
    func singleValueContainer() -> any SingleValueEncodingContainer {
        AvroSingleValueEncoding(encoder: _AvroEncoder(state: AvroEncodingState.empty(), node: 0, codingPath: codingPath, depth: 0))
    }
}

/// Array items go to a scratch buffer, then out as one block.
final class AvroArrayEncoding: UnkeyedEncodingContainer, AvroEncodingContainerFinisher {
    let state: AvroEncodingState
    let itemNode: Int
    let codingPath: [any CodingKey]
    let depth: Int
    var count = 0
    var buffer: [UInt8] = []
    var error: EddyError?

    init(state: AvroEncodingState, itemNode: Int, codingPath: [any CodingKey], depth: Int) {
        self.state = state
        self.itemNode = itemNode
        self.codingPath = codingPath
        self.depth = depth
    }

    struct Index: CodingKey {
        var intValue: Int?
        var stringValue: String { "\(intValue ?? 0)" }
        init(_ i: Int) { intValue = i }
        init?(stringValue: String) { return nil }
        init?(intValue: Int) { self.intValue = intValue }
    }

    func item(_ body: () throws -> Void) throws {
        if let error { throw error }
        swap(&buffer, &state.writer.bytes)
        defer { swap(&buffer, &state.writer.bytes) }
        try body()
        count += 1
    }

    func encodeNil() throws {
        try item {
            guard case .union(let branches) = state.nodes[itemNode],
                  let n = branches.firstIndex(where: { if case .null = state.nodes[$0] { true } else { false } }) else {
                if case .null = state.nodes[itemNode] { return }
                throw state.fail(codingPath, "nil given for an array item that is not nullable")
            }
            state.writer.writeLong(Int64(n))
        }
    }

    func encode<T: Encodable>(_ value: T) throws {
        try item { try state.encodeValue(value, node: itemNode, codingPath: codingPath + [Index(count)], depth: depth + 1) }
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        error = EddyError(.serialization, "nested containers are not supported by the Avro encoder")
        return KeyedEncodingContainer(AvroKeyedEncodingContainer<NestedKey>(storage: AvroFailingEncoding(error: error!)))
    }
    func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        error = EddyError(.serialization, "nested containers are not supported by the Avro encoder")
        return self
    }
    func superEncoder() -> any Encoder { AvroUnsupportedEncoder(codingPath: codingPath) }

    func finish() throws {
        if let error { throw error }
        if count > 0 {
            state.writer.writeLong(Int64(count))
            state.writer.bytes.append(contentsOf: buffer)
        }
        state.writer.writeLong(0)
    }
}

struct AvroSingleValueEncoding: SingleValueEncodingContainer {
    let state: AvroEncodingState
    let nodeIndex: Int
    let basePath: [any CodingKey]
    /// The record field or map key this value is for, appended to the path only for messages
    /// (so the hot path builds no arrays).
    var key: (any CodingKey)? = nil
    let depth: Int
    var codingPath: [any CodingKey] { key.map { basePath + [$0] } ?? basePath }
    var node: AvroNode { state.nodes[nodeIndex] }

    init(encoder: _AvroEncoder) {
        state = encoder.state
        nodeIndex = encoder.node
        basePath = encoder.codingPath
        depth = encoder.depth
    }

    init(state: AvroEncodingState, nodeIndex: Int, codingPath: [any CodingKey], key: (any CodingKey)?, depth: Int) {
        self.state = state
        self.nodeIndex = nodeIndex
        self.basePath = codingPath
        self.key = key
        self.depth = depth
    }

    func mismatch(_ what: String) -> EddyError { state.fail(codingPath, "\(what) given for Avro type \(node.name?.fullName ?? node.kindName)") }

    mutating func encodeNil() throws {
        switch node {
        case .null: return
        case .union(let branches):
            guard let n = branches.firstIndex(where: { if case .null = state.nodes[$0] { true } else { false } }) else { throw mismatch("nil") }
            state.writer.writeLong(Int64(n))
        default: throw mismatch("nil")
        }
    }

    mutating func encode(_ value: Bool) throws {
        guard case .boolean = node else { throw mismatch("a Bool") }
        state.writer.writeBoolean(value)
    }

    mutating func encode(_ value: String) throws {
        switch node {
        case .string: state.writer.writeString(value)
        case .bytes: state.writer.writeBytes(Array(value.utf8))
        case .enumeration(let name, let symbols, _):
            guard let i = symbols.firstIndex(of: value) else { throw state.fail(codingPath, "\"\(value)\" is not a symbol of enum \(name.fullName)") }
            state.writer.writeLong(Int64(i))
        default: throw mismatch("a String")
        }
    }

    mutating func encode(_ value: Double) throws {
        switch node {
        case .double: state.writer.writeDouble(value)
        case .float: state.writer.writeFloat(Float(value))
        default: throw mismatch("a Double")
        }
    }

    mutating func encode(_ value: Float) throws {
        switch node {
        case .float: state.writer.writeFloat(value)
        case .double: state.writer.writeDouble(Double(value))
        default: throw mismatch("a Float")
        }
    }

    mutating func encodeInteger<I: BinaryInteger>(_ value: I) throws {
        switch node {
        case .int:
            guard let v = Int32(exactly: value) else { throw state.fail(codingPath, "\(value) is out of range for an Avro int") }
            state.writer.writeInt(v)
        case .long:
            guard let v = Int64(exactly: value) else { throw state.fail(codingPath, "\(value) is out of range for an Avro long") }
            state.writer.writeLong(v)
        case .float: state.writer.writeFloat(Float(value))
        case .double: state.writer.writeDouble(Double(value))
        default: throw mismatch("an integer")
        }
    }

    mutating func encode(_ value: Int) throws { try encodeInteger(value) }
    mutating func encode(_ value: Int8) throws { try encodeInteger(value) }
    mutating func encode(_ value: Int16) throws { try encodeInteger(value) }
    mutating func encode(_ value: Int32) throws { try encodeInteger(value) }
    mutating func encode(_ value: Int64) throws { try encodeInteger(value) }
    mutating func encode(_ value: UInt) throws { try encodeInteger(value) }
    mutating func encode(_ value: UInt8) throws { try encodeInteger(value) }
    mutating func encode(_ value: UInt16) throws { try encodeInteger(value) }
    mutating func encode(_ value: UInt32) throws { try encodeInteger(value) }
    mutating func encode(_ value: UInt64) throws { try encodeInteger(value) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        try state.encodeValue(value, node: nodeIndex, codingPath: codingPath, depth: depth + 1)
    }
}
