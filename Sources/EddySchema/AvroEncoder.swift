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
    ///
    /// The output is allocated once in the common case (sized from the thread's last encoding).
    public func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let scratch = AvroThreadScratch.current
        var bytes: [UInt8] = []
        bytes.reserveCapacity(scratch.encodedSizeHint)
        try encode(value, appendingTo: &bytes, scratch: scratch)
        // A quarter more than the last value (of any schema) on this thread: most values of a
        // stream are alike, so most outputs are allocated once, never grown.
        scratch.encodedSizeHint = max(AvroThreadScratch.minimumSizeHint, bytes.count + bytes.count / 4)
        return bytes
    }

    /// Appends the encoding of `value` to `bytes`.
    public func encode<T: Encodable>(_ value: T, appendingTo bytes: inout [UInt8]) throws {
        try encode(value, appendingTo: &bytes, scratch: AvroThreadScratch.current)
    }

    @inline(__always) func encode<T: Encodable>(_ value: T, appendingTo bytes: inout [UInt8], scratch: AvroThreadScratch) throws {
        let state: AvroEncodingState
        if let reusable = scratch.encoding, !reusable.inUse {
            state = reusable
            state.prepare(schema: schema)
        } else {
            state = AvroEncodingState(nodes: schema.nodes, cache: schema.programCache)
            if scratch.encoding == nil { scratch.encoding = state }
        }
        state.inUse = true
        swap(&state.output.pointee.bytes, &bytes)
        defer {
            swap(&state.output.pointee.bytes, &bytes)
            state.inUse = false
            if scratch.encoding !== state { state.releasePools() }
        }
        do {
            try state.encodeValue(value, node: schema.root, codingPath: [], key: nil, depth: 0)
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
    /// property would pay a dynamic exclusivity check each time. Containers write through
    /// `state.output.pointee` (a `let` pointer): an accessor on the state instead would retain
    /// and release the state around every write.
    let output: UnsafeMutablePointer<AvroWriter>
    // The state is reused call after call on its thread (AvroThreadScratch), so these change
    // between calls; never during one, hence no exclusivity checks.
    @exclusivity(unchecked) private(set) var nodes: [AvroNode]
    /// Set by every call (``prepare(schema:)``) from a schema the caller holds for the
    /// call's length; unowned so the hot path's table reads pay no reference counting.
    @exclusivity(unchecked) private(set) unowned(unsafe) var cache: AvroProgramCache
    /// Holds `cache` strongly: for a state made for one call (reentrant calls), so that it cannot
    /// outlive it; for the thread's reused state, so that the last schema's cache stays alive and
    /// its identity tells whether the next call uses the same schema (an address freed and reused
    /// by another schema cannot be mistaken for it).
    @exclusivity(unchecked) private var retainedCache: AvroProgramCache?
    /// Whether a call is using the state.
    @exclusivity(unchecked) var inUse = false
    /// The error of a container an enum field's value asked for and cannot have (see
    /// ``AvroSymbolEncoder``), thrown once the value's `encode(to:)` returns.
    @exclusivity(unchecked) var pendingError: EddyError?
    /// Record and leaf encoders reused from value to value.
    @exclusivity(unchecked) var records = AvroObjectPool<AvroRecordEncoding>()
    @exclusivity(unchecked) var leaves = AvroObjectPool<_AvroEncoder>()

    init(nodes: [AvroNode], cache: AvroProgramCache) {
        output = .allocate(capacity: 1)
        output.initialize(to: AvroWriter(capacity: 0))
        self.nodes = nodes
        self.cache = cache
        retainedCache = cache
    }

    deinit {
        output.deinitialize(count: 1)
        output.deallocate()
    }

    /// Readies a reused state for a call with `schema`. Takes the schema (borrowed), not its
    /// nodes: passing the nodes array would copy (retain and release) it on every call.
    @inline(__always) func prepare(schema: borrowing AvroSchema) {
        // The same schema as the last call (the common case): its nodes are already here.
        if retainedCache !== schema.programCache {
            nodes = schema.nodes
            cache = schema.programCache
            retainedCache = schema.programCache
        }
        records.removeAll(keepingEntries: true)
        leaves.removeAll(keepingEntries: true)
    }

    /// Drops the pooled encoders (they refer back to the state).
    func releasePools() {
        records.removeAll(keepingEntries: false)
        leaves.removeAll(keepingEntries: false)
    }

    /// A record encoder for one value (pooled). Pair with ``releaseRecord()``.
    @inline(__always) func acquireRecord(layout: AvroRecordLayout, node: Int, basePath: [any CodingKey], key: (any CodingKey)?, depth: Int) -> AvroRecordEncoding {
        records.acquire({ AvroRecordEncoding(state: self, layout: layout, node: node, basePath: basePath, key: key, depth: depth) },
                        reset: { $0.reset(layout: layout, node: node, basePath: basePath, key: key, depth: depth) })
    }

    @inline(__always) func releaseRecord() { records.release() }

    /// A general encoder for one value (pooled). Pair with ``releaseLeaf()``.
    @inline(__always) func acquireLeaf(node: Int, basePath: [any CodingKey], key: (any CodingKey)?, depth: Int) -> _AvroEncoder {
        leaves.acquire({ _AvroEncoder(state: self, node: node, basePath: basePath, key: key, depth: depth) },
                       reset: { $0.reset(node: node, basePath: basePath, key: key, depth: depth) })
    }

    @inline(__always) func releaseLeaf() { leaves.release() }

    /// A state for encoders that only fail (nested and super encoders are not supported).
    static func empty() -> AvroEncodingState {
        AvroEncodingState(nodes: [.null], cache: AvroProgramCache(nodes: [.null], root: 0))
    }

    func fail(_ path: [any CodingKey], key: (any CodingKey)?, _ message: String) -> EddyError {
        fail(key.map { path + [$0] } ?? path, message)
    }

    func fail(_ path: [any CodingKey], _ message: String) -> EddyError {
        let where_ = path.isEmpty ? "the value" : path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        return EddyError(.serialization, "\(where_): \(message)")
    }

    /// Picks the branch of a union for a non-null value: the only non-null branch, else the
    /// first branch that accepts the value (tried on a scratch buffer).
    ///
    /// `key` is the field, map key or index the value is for; the full coding path
    /// (`codingPath` + `key`) is only built for messages and for values that ask for it.
    func encodeValue<T: Encodable>(_ value: T, node: Int, codingPath: [any CodingKey], key: (any CodingKey)?, depth: Int) throws {
        guard depth < AvroLimits.maximumValueDepth else { throw fail(codingPath, key: key, "nested deeper than \(AvroLimits.maximumValueDepth) (AvroLimits.maximumValueDepth)") }
        switch cache.kinds[node] {
        case .record:
            if let layout = cache.layouts[node] {
                // A record: its field storage is the encoder too (one object per record, not two).
                let record = acquireRecord(layout: layout, node: node, basePath: codingPath, key: key, depth: depth)
                defer { releaseRecord() }
                try value.encode(to: record)
                try record.finishEncoding()
                return
            }
        case .union:
            let single = cache.singleBranch[node]
            if single >= 0 {
                output.pointee.writeLong(Int64(single))
                try encodeValue(value, node: cache.singleBranchNode[node], codingPath: codingPath, key: key, depth: depth + 1)
                return
            }
            guard case .union(let branches) = nodes[node] else { return }
            let start = output.pointee.bytes.count
            var lastError: (any Error)?
            for i in branches.indices {
                output.pointee.writeLong(Int64(i))
                do {
                    try encodeValue(value, node: branches[i], codingPath: codingPath, key: key, depth: depth + 1)
                    return
                } catch {
                    lastError = error
                    output.pointee.bytes.removeSubrange(start...)
                }
            }
            throw lastError ?? fail(codingPath, key: key, "no union branch accepts the value")
        case .bytes, .fixed:
            if let b = value as? [UInt8] { try encodeBytes(b, node: node, codingPath: key.map { codingPath + [$0] } ?? codingPath); return }
            if let d = value as? Data { try encodeBytes(Array(d), node: node, codingPath: key.map { codingPath + [$0] } ?? codingPath); return }
        case .long:
            if let date = value as? Date {
                guard case .long(let logical) = nodes[node] else { return }
                switch logical {
                case .timestampMicros, .localTimestampMicros: output.pointee.writeLong(Int64((date.timeIntervalSince1970 * 1_000_000).rounded()))
                default: output.pointee.writeLong(Int64((date.timeIntervalSince1970 * 1000).rounded()))
                }
                return
            }
        case .int:
            if let date = value as? Date, case .int(.date) = nodes[node] {
                output.pointee.writeLong(Int64((date.timeIntervalSince1970 / 86_400).rounded(.down)))
                return
            }
        case .string:
            if let uuid = value as? UUID { output.pointee.writeString(uuid.uuidString.lowercased()); return }
        default: break
        }
        let encoder = acquireLeaf(node: node, basePath: codingPath, key: key, depth: depth)
        defer { releaseLeaf() }
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
            output.pointee.writeLong(Int64(single))
            target = cache.singleBranchNode[node]
        }
        var container = AvroSingleValueEncoding(state: self, nodeIndex: target, codingPath: codingPath, key: key, depth: depth)
        try body(&container)
        return true
    }

    func encodeBytes(_ b: [UInt8], node: Int, codingPath: [any CodingKey]) throws {
        switch nodes[node] {
        case .bytes: output.pointee.writeBytes(b)
        case .fixed(let name, let size, _):
            guard b.count == size else { throw fail(codingPath, "fixed \(name.fullName) needs \(size) bytes, the value has \(b.count)") }
            output.pointee.bytes.append(contentsOf: b)
        default: throw fail(codingPath, "bytes given for Avro type \(nodes[node].kindName)")
        }
    }

    /// Writes what an absent field holds: `null` in a union with null, else the field's default.
    func encodeAbsent(_ field: AvroField, record: String, codingPath: [any CodingKey]) throws {
        if cache.kinds[field.type] == .union, cache.nullBranch[field.type] >= 0 {
            output.pointee.writeLong(Int64(cache.nullBranch[field.type]))
            return
        }
        if let d = field.defaultValue {
            try nodes.withUnsafeBufferPointer { try AvroSchema.encode(d, node: field.type, nodes: $0, into: &output.pointee, depth: 0) }
            return
        }
        throw fail(codingPath, "record \(record) needs field \"\(field.name)\", which the value does not provide (and it has no default)")
    }
}

/// Finishes a container when the value that opened it is done.
final class _AvroEncoder: Encoder {
    let state: AvroEncodingState
    // Reset for each value when pooled (see AvroEncodingState.acquireLeaf); one value at a time.
    @exclusivity(unchecked) var node: Int
    @exclusivity(unchecked) var basePath: [any CodingKey]
    @exclusivity(unchecked) var key: (any CodingKey)?
    @exclusivity(unchecked) var depth: Int
    var codingPath: [any CodingKey] { key.map { basePath + [$0] } ?? basePath }
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    @exclusivity(unchecked) var pending: (any AvroContainerFinisher)?

    init(state: AvroEncodingState, node: Int, basePath: [any CodingKey], key: (any CodingKey)?, depth: Int) {
        self.state = state
        self.node = node
        self.basePath = basePath
        self.key = key
        self.depth = depth
    }

    convenience init(state: AvroEncodingState, node: Int, codingPath: [any CodingKey], depth: Int) {
        self.init(state: state, node: node, basePath: codingPath, key: nil, depth: depth)
    }

    @inline(__always) func reset(node: Int, basePath: [any CodingKey], key: (any CodingKey)?, depth: Int) {
        self.node = node
        self.basePath = basePath
        self.key = key
        self.depth = depth
        pending = nil
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
    mutating func encode(_ value: String) throws {
        // Strings and enum symbols (what String-backed enums encode) straight to the output.
        let state = encoder.state, node = encoder.node
        switch state.cache.kinds[node] {
        case .string:
            state.output.pointee.writeString(value)
            return
        case .enumeration:
            if let i = state.cache.symbolIndex(value, node: node) {
                state.output.pointee.writeLong(Int64(i))
                return
            }
        default: break
        }
        var c = inner
        try c.encode(value)
    }
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
protocol AvroKeyedEncodingStorage: AvroContainerFinisher {
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
    // Reset for each record when pooled (see AvroEncodingState.acquireRecord); one record at a time.
    // The layout belongs to the schema the call holds (unowned: no reference counting per field).
    @exclusivity(unchecked) unowned(unsafe) var layout: AvroRecordLayout
    /// The record's node, for values that encode through another container kind.
    @exclusivity(unchecked) var node: Int
    @exclusivity(unchecked) var basePath: [any CodingKey]
    @exclusivity(unchecked) var key: (any CodingKey)?
    @exclusivity(unchecked) var depth: Int
    @exclusivity(unchecked) var cursor = 0
    /// As an `Encoder`: the container handed out, finished when the value is done.
    @exclusivity(unchecked) var delegate: _AvroEncoder?
    @exclusivity(unchecked) var keyed = false
    var codingPath: [any CodingKey] { key.map { basePath + [$0] } ?? basePath }

    init(state: AvroEncodingState, layout: AvroRecordLayout, node: Int = -1, basePath: [any CodingKey], key: (any CodingKey)?, depth: Int) {
        self.state = state
        self.layout = layout
        self.node = node
        self.basePath = basePath
        self.key = key
        self.depth = depth
    }

    convenience init(state: AvroEncodingState, layout: AvroRecordLayout, codingPath: [any CodingKey], depth: Int) {
        self.init(state: state, layout: layout, node: -1, basePath: codingPath, key: nil, depth: depth)
    }

    @inline(__always) func reset(layout: AvroRecordLayout, node: Int, basePath: [any CodingKey], key: (any CodingKey)?, depth: Int) {
        self.layout = layout
        self.node = node
        self.basePath = basePath
        self.key = key
        self.depth = depth
        cursor = 0
        delegate = nil
        keyed = false
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
        let encoder = _AvroEncoder(state: state, node: node, basePath: basePath, key: key, depth: depth)
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
    @inline(__always) func seek<K: CodingKey>(_ key: K) throws -> Int {
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
        case .union where state.cache.nullBranch[type] >= 0: state.output.pointee.writeLong(Int64(state.cache.nullBranch[type]))
        default: throw state.fail(codingPath + [key], "nil given for field \"\(layout.names[i])\", which is not nullable")
        }
    }

    func encode<T: Encodable>(_ value: T, key: any CodingKey) throws {
        try encodeField(value, key: key)
    }

    /// A field holding a nested value. Its coding path names the field by its schema name (the
    /// key matched it by that name), so the caller's key type never becomes an existential here.
    @inline(__always) func encodeField<T: Encodable, K: CodingKey>(_ value: T, key: K) throws {
        let i = try seek(key)
        let type = layout.types[i]
        if state.cache.kinds[type] == .enumeration {
            try encodeSymbolField(value, node: type, field: i)
            return
        }
        try state.encodeValue(value, node: type, codingPath: codingPath, key: AvroFieldKey(layout.names[i]), depth: depth + 1)
    }

    /// An enum field (typically a `String`-backed Swift enum): encoded through a value-type
    /// ``AvroSymbolEncoder`` that writes the symbol straight to the output, so the field needs no
    /// pooled encoder and no general value dispatch. What the value cannot encode into an enum
    /// (a keyed or unkeyed container) fails as on the general path.
    func encodeSymbolField<T: Encodable>(_ value: T, node: Int, field: Int) throws {
        state.pendingError = nil
        try value.encode(to: AvroSymbolEncoder(record: self, node: node, field: field))
        if let error = state.pendingError {
            state.pendingError = nil
            throw error
        }
    }

    func encodePrimitive<T: Encodable>(_ value: T, key: any CodingKey, _ body: (inout AvroSingleValueEncoding) throws -> Void) throws {
        let i = try seek(key)
        if try !state.encodePrimitive(node: layout.types[i], codingPath: codingPath, key: key, depth: depth + 1, body) {
            try state.encodeValue(value, node: layout.types[i], codingPath: codingPath, key: key, depth: depth + 1)
        }
    }

    /// Moves to `key`'s field and returns the node its value is written as: the field's type, or
    /// for a union with one non-null branch that branch (its index written). A union with several
    /// non-null branches gives `-1 - node`, for ``primitiveSlow(_:key:target:_:)``.
    @inline(__always) func target<K: CodingKey>(_ key: K) throws -> Int {
        let node = layout.types[try seek(key)]
        guard state.cache.kinds[node] == .union else { return node }
        let single = state.cache.singleBranch[node]
        guard single >= 0 else { return -1 - node }
        state.output.pointee.writeLong(Int64(single))
        return state.cache.singleBranchNode[node]
    }

    /// Writes a primitive the inline path could not: through a single-value container for
    /// `target` (which `body` drives), or for a several-branch union (`target < 0`) through the
    /// general value path, which picks the branch.
    func primitiveSlow<T: Encodable, K: CodingKey>(_ value: T, key: K, target: Int, _ body: (inout AvroSingleValueEncoding) throws -> Void) throws {
        guard target >= 0 else {
            try state.encodeValue(value, node: -1 - target, codingPath: codingPath, key: key, depth: depth + 1)
            return
        }
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
        swap(&buffer, &state.output.pointee.bytes)
        defer { swap(&buffer, &state.output.pointee.bytes) }
        state.output.pointee.writeString(key.stringValue)
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
            state.output.pointee.writeLong(Int64(n))
        }
    }

    func encode<T: Encodable>(_ value: T, key: any CodingKey) throws {
        try entry(key) { try state.encodeValue(value, node: valueNode, codingPath: codingPath, key: key, depth: depth + 1) }
    }

    func encodePrimitive<T: Encodable>(_ value: T, key: any CodingKey, _ body: (inout AvroSingleValueEncoding) throws -> Void) throws {
        try encode(value, key: key)
    }

    func finish() throws {
        if count > 0 {
            state.output.pointee.writeLong(Int64(count))
            state.output.pointee.bytes.append(contentsOf: buffer)
        }
        state.output.pointee.writeLong(0)
    }
}

/// The keyed container of a record. It holds the concrete storage class (not an existential),
/// so primitive writes are direct, specialized calls.
struct AvroRecordKeyedEncodingContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let storage: AvroRecordEncoding
    var codingPath: [any CodingKey] { storage.codingPath }

    mutating func encodeNil(forKey key: Key) throws { try storage.encodeNil(key: key) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try storage.encodeField(value, key: key) }
    // Primitives: the field's node (a single-branch union resolved) is checked inline and the
    // value written straight to the output; other kinds, out-of-range values and their errors
    // take the general single-value path. No closures here: a closure context would retain the
    // state on every field.
    mutating func encode(_ value: String, forKey key: Key) throws {
        let t = try storage.target(key)
        if t >= 0, storage.state.cache.kinds[t] == .string { return storage.state.output.pointee.writeString(value) }
        try storage.primitiveSlow(value, key: key, target: t) { try $0.encode(value) }
    }
    mutating func encode(_ value: Bool, forKey key: Key) throws {
        let t = try storage.target(key)
        if t >= 0, storage.state.cache.kinds[t] == .boolean { return storage.state.output.pointee.writeBoolean(value) }
        try storage.primitiveSlow(value, key: key, target: t) { try $0.encode(value) }
    }
    mutating func encode(_ value: Double, forKey key: Key) throws {
        let t = try storage.target(key)
        if t >= 0, storage.state.cache.kinds[t] == .double { return storage.state.output.pointee.writeDouble(value) }
        try storage.primitiveSlow(value, key: key, target: t) { try $0.encode(value) }
    }
    mutating func encode(_ value: Float, forKey key: Key) throws {
        let t = try storage.target(key)
        if t >= 0, storage.state.cache.kinds[t] == .float { return storage.state.output.pointee.writeFloat(value) }
        try storage.primitiveSlow(value, key: key, target: t) { try $0.encode(value) }
    }
    mutating func encode(_ value: Int64, forKey key: Key) throws {
        let t = try storage.target(key)
        if t >= 0 {
            switch storage.state.cache.kinds[t] {
            case .long: return storage.state.output.pointee.writeLong(value)
            case .int: if let v = Int32(exactly: value) { return storage.state.output.pointee.writeInt(v) }
            default: break
            }
        }
        try storage.primitiveSlow(value, key: key, target: t) { try $0.encode(value) }
    }
    mutating func encode(_ value: Int32, forKey key: Key) throws {
        let t = try storage.target(key)
        if t >= 0 {
            let kind = storage.state.cache.kinds[t]
            if kind == .int || kind == .long { return storage.state.output.pointee.writeLong(Int64(value)) }
        }
        try storage.primitiveSlow(value, key: key, target: t) { try $0.encode(value) }
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
final class AvroArrayEncoding: UnkeyedEncodingContainer, AvroContainerFinisher {
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
        swap(&buffer, &state.output.pointee.bytes)
        defer { swap(&buffer, &state.output.pointee.bytes) }
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
            state.output.pointee.writeLong(Int64(n))
        }
    }

    func encode<T: Encodable>(_ value: T) throws {
        try item { try state.encodeValue(value, node: itemNode, codingPath: codingPath, key: Index(count), depth: depth + 1) }
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
            state.output.pointee.writeLong(Int64(count))
            state.output.pointee.bytes.append(contentsOf: buffer)
        }
        state.output.pointee.writeLong(0)
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
        basePath = encoder.basePath
        key = encoder.key
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
            state.output.pointee.writeLong(Int64(n))
        default: throw mismatch("nil")
        }
    }

    mutating func encode(_ value: Bool) throws {
        guard case .boolean = node else { throw mismatch("a Bool") }
        state.output.pointee.writeBoolean(value)
    }

    mutating func encode(_ value: String) throws {
        switch node {
        case .string: state.output.pointee.writeString(value)
        case .bytes: state.output.pointee.writeBytes(Array(value.utf8))
        case .enumeration(let name, let symbols, _):
            guard let i = symbols.firstIndex(of: value) else { throw state.fail(codingPath, "\"\(value)\" is not a symbol of enum \(name.fullName)") }
            state.output.pointee.writeLong(Int64(i))
        default: throw mismatch("a String")
        }
    }

    mutating func encode(_ value: Double) throws {
        switch node {
        case .double: state.output.pointee.writeDouble(value)
        case .float: state.output.pointee.writeFloat(Float(value))
        default: throw mismatch("a Double")
        }
    }

    mutating func encode(_ value: Float) throws {
        switch node {
        case .float: state.output.pointee.writeFloat(value)
        case .double: state.output.pointee.writeDouble(Double(value))
        default: throw mismatch("a Float")
        }
    }

    mutating func encodeInteger<I: BinaryInteger>(_ value: I) throws {
        switch node {
        case .int:
            guard let v = Int32(exactly: value) else { throw state.fail(codingPath, "\(value) is out of range for an Avro int") }
            state.output.pointee.writeInt(v)
        case .long:
            guard let v = Int64(exactly: value) else { throw state.fail(codingPath, "\(value) is out of range for an Avro long") }
            state.output.pointee.writeLong(v)
        case .float: state.output.pointee.writeFloat(Float(value))
        case .double: state.output.pointee.writeDouble(Double(value))
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
        try state.encodeValue(value, node: nodeIndex, codingPath: basePath, key: key, depth: depth + 1)
    }
}

/// The `Encoder` of a record field whose schema type is an enum (see
/// ``AvroRecordEncoding/encodeSymbolField(_:node:field:)``): three words, so it travels inline
/// in the `any Encoder` existential (no allocation). Valid while its record encodes one value.
struct AvroSymbolEncoder: Encoder {
    let record: AvroRecordEncoding
    let node: Int
    let field: Int

    var codingPath: [any CodingKey] { record.codingPath + [AvroFieldKey(record.layout.names[field])] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    /// The general single-value container for the field, for everything but a known symbol.
    var general: AvroSingleValueEncoding {
        AvroSingleValueEncoding(state: record.state, nodeIndex: node, codingPath: record.codingPath,
                                key: AvroFieldKey(record.layout.names[field]), depth: record.depth + 1)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let error = record.state.fail(codingPath, "a keyed value (struct or dictionary) given for Avro type \(record.state.nodes[node].kindName)")
        record.state.pendingError = error
        return KeyedEncodingContainer(AvroKeyedEncodingContainer<Key>(storage: AvroFailingEncoding(error: error)))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let storage = AvroArrayEncoding(state: record.state, itemNode: node, codingPath: codingPath, depth: record.depth + 1)
        let error = record.state.fail(codingPath, "a list given for Avro type \(record.state.nodes[node].kindName)")
        storage.error = error
        record.state.pendingError = error
        return storage
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { AvroSymbolValueContainer(encoder: self) }
}

/// The single-value container of ``AvroSymbolEncoder``: a symbol of the enum is written as its
/// index; anything else takes the general single-value path (which converts or explains).
struct AvroSymbolValueContainer: SingleValueEncodingContainer {
    let encoder: AvroSymbolEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    mutating func encode(_ value: String) throws {
        // Through the `let` chain, not a local: a local would retain the state.
        if let i = encoder.record.state.cache.symbolIndex(value, node: encoder.node) {
            encoder.record.state.output.pointee.writeLong(Int64(i))
            return
        }
        var c = encoder.general
        try c.encode(value)
    }
    mutating func encodeNil() throws { var c = encoder.general; try c.encodeNil() }
    mutating func encode(_ value: Bool) throws { var c = encoder.general; try c.encode(value) }
    mutating func encode(_ value: Double) throws { var c = encoder.general; try c.encode(value) }
    mutating func encode(_ value: Float) throws { var c = encoder.general; try c.encode(value) }
    mutating func encode(_ value: Int) throws { var c = encoder.general; try c.encode(value) }
    mutating func encode(_ value: Int8) throws { var c = encoder.general; try c.encode(value) }
    mutating func encode(_ value: Int16) throws { var c = encoder.general; try c.encode(value) }
    mutating func encode(_ value: Int32) throws { var c = encoder.general; try c.encode(value) }
    mutating func encode(_ value: Int64) throws { var c = encoder.general; try c.encode(value) }
    mutating func encode(_ value: UInt) throws { var c = encoder.general; try c.encode(value) }
    mutating func encode(_ value: UInt8) throws { var c = encoder.general; try c.encode(value) }
    mutating func encode(_ value: UInt16) throws { var c = encoder.general; try c.encode(value) }
    mutating func encode(_ value: UInt32) throws { var c = encoder.general; try c.encode(value) }
    mutating func encode(_ value: UInt64) throws { var c = encoder.general; try c.encode(value) }
    mutating func encode<T: Encodable>(_ value: T) throws { var c = encoder.general; try c.encode(value) }
}
