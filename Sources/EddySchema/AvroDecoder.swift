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
            let scratch = AvroThreadScratch.current
            let state: AvroDecodingState
            if let reusable = scratch.decoding, !reusable.inUse {
                state = reusable
                state.prepare(reader: AvroReader(buffer), nodes: schema.nodes, cache: schema.programCache)
            } else {
                state = AvroDecodingState(reader: AvroReader(buffer), nodes: schema.nodes, cache: schema.programCache)
                if scratch.decoding == nil { scratch.decoding = state }
            }
            state.inUse = true
            defer {
                state.inUse = false
                if scratch.decoding !== state { state.releasePools() }
            }
            let value: T
            do {
                value = try state.decodeValue(type, node: schema.root, codingPath: [], key: nil, depth: 0)
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
    /// The reader lives behind a pointer: it is mutated on every read, and a stored class
    /// property would pay a dynamic exclusivity check each time.
    private let readerStorage: UnsafeMutablePointer<AvroReader>
    var reader: AvroReader {
        _read { yield readerStorage.pointee }
        _modify { yield &readerStorage.pointee }
    }
    // The state is reused call after call on its thread (AvroThreadScratch), so these change
    // between calls; never during one, hence no exclusivity checks.
    @exclusivity(unchecked) private(set) var nodes: [AvroNode]
    /// Set by every call (``prepare(reader:nodes:cache:)``) from a schema the caller holds for
    /// the call's length; unowned so the hot path's table reads pay no reference counting.
    @exclusivity(unchecked) private(set) unowned(unsafe) var cache: AvroProgramCache
    /// Holds the cache of a state made for one call (reentrant calls), which no caller may outlive.
    private var ownedCache: AvroProgramCache?
    /// Whether a call is using the state.
    @exclusivity(unchecked) var inUse = false
    /// Record and leaf decoders reused from value to value.
    @exclusivity(unchecked) var records = AvroObjectPool<AvroRecordDecoding>()
    @exclusivity(unchecked) var leaves = AvroObjectPool<_AvroDecoder>()

    init(reader: AvroReader, nodes: [AvroNode], cache: AvroProgramCache) {
        readerStorage = .allocate(capacity: 1)
        readerStorage.initialize(to: reader)
        self.nodes = nodes
        self.cache = cache
        ownedCache = cache
    }

    deinit {
        readerStorage.deinitialize(count: 1)
        readerStorage.deallocate()
    }

    /// Readies a reused state for a call reading `reader` with `cache`'s schema.
    @inline(__always) func prepare(reader: AvroReader, nodes: [AvroNode], cache: AvroProgramCache) {
        self.reader = reader
        self.nodes = nodes
        self.cache = cache
        ownedCache = nil
        records.removeAll(keepingEntries: true)
        leaves.removeAll(keepingEntries: true)
    }

    /// Drops the pooled decoders (they refer back to the state).
    func releasePools() {
        records.removeAll(keepingEntries: false)
        leaves.removeAll(keepingEntries: false)
    }

    /// A record decoder for one value starting at the reader's position (pooled). Pair with
    /// ``releaseRecord()``.
    @inline(__always) func acquireRecord(layout: AvroRecordLayout, node: Int, basePath: [any CodingKey], key: (any CodingKey)?, depth: Int) -> AvroRecordDecoding {
        records.acquire({ AvroRecordDecoding(state: self, layout: layout, node: node, basePath: basePath, key: key, depth: depth) },
                        reset: { $0.reset(layout: layout, node: node, basePath: basePath, key: key, depth: depth) })
    }

    @inline(__always) func releaseRecord() { records.release() }

    /// A general decoder for one value (pooled). Pair with ``releaseLeaf()``.
    @inline(__always) func acquireLeaf(node: Int, basePath: [any CodingKey], key: (any CodingKey)?, depth: Int) -> _AvroDecoder {
        leaves.acquire({ _AvroDecoder(state: self, node: node, basePath: basePath, key: key, depth: depth) },
                       reset: { $0.reset(node: node, basePath: basePath, key: key, depth: depth) })
    }

    @inline(__always) func releaseLeaf() { leaves.release() }

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
    @inline(__always) func resolve(_ node: Int) throws -> Int {
        guard cache.kinds[node] == .union, case .union(let branches) = nodes[node] else { return node }
        let i = try reader.readLong()
        guard i >= 0, i < branches.count else { throw EddyError(.serialization, "union branch \(i) out of range (the union has \(branches.count)) at byte \(reader.position)") }
        return branches[Int(i)]
    }

    /// Whether the next value at `node` is null; consumes it only if it is.
    func peekNil(_ node: Int) throws -> Bool {
        switch cache.kinds[node] {
        case .null: return true
        case .union:
            let null = cache.nullBranch[node]
            guard null >= 0 else { return false }
            let start = reader.position
            if try reader.readLong() == Int64(null) { return true }
            reader.position = start
            return false
        default: return false
        }
    }

    /// `key` is the field, map key or index the value is for; the full coding path
    /// (`basePath` + `key`) is only built for messages and for values that ask for it.
    func decodeValue<T: Decodable>(_ type: T.Type, node: Int, codingPath basePath: [any CodingKey], key: (any CodingKey)?, depth: Int) throws -> T {
        guard depth < AvroLimits.maximumValueDepth else { throw fail(key.map { basePath + [$0] } ?? basePath, "nested deeper than \(AvroLimits.maximumValueDepth) (AvroLimits.maximumValueDepth)") }
        if cache.kinds[node] == .record, let layout = cache.layouts[node] {
            // A record: its field reader is the decoder too (one object per record, not two).
            let record = acquireRecord(layout: layout, node: node, basePath: basePath, key: key, depth: depth)
            defer { releaseRecord() }
            let value = try T(from: record)
            try record.finishDecoding()
            return value
        }
        if AvroDecodingState.isSpecial(type) {
            let codingPath = key.map { basePath + [$0] } ?? basePath
            let n = try resolve(node)
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
        let decoder = acquireLeaf(node: node, basePath: basePath, key: key, depth: depth)
        defer { releaseLeaf() }
        let value = try T(from: decoder)
        try decoder.finish()
        return value
    }

    /// Whether `type` is one the decoder reads itself ([UInt8], Data, Date, UUID). Compares
    /// type identifiers, not metatypes: `[UInt8].self` would look up generic metadata each time.
    @inline(__always) static func isSpecial<T>(_ type: T.Type) -> Bool {
        let id = ObjectIdentifier(type)
        return id == bytesType || id == dataType || id == dateType || id == uuidType
    }
    static let bytesType = ObjectIdentifier([UInt8].self)
    static let dataType = ObjectIdentifier(Data.self)
    static let dateType = ObjectIdentifier(Date.self)
    static let uuidType = ObjectIdentifier(UUID.self)

    /// Decodes a primitive at `node` (resolving a union) through a single-value container.
    @inline(__always)
    func decodePrimitive<T>(node: Int, codingPath: [any CodingKey], key: (any CodingKey)?, depth: Int, _ body: (AvroSingleValueDecoding) throws -> T) throws -> T {
        let n = try resolve(node)
        return try body(AvroSingleValueDecoding(state: self, nodeIndex: n, basePath: codingPath, key: key, depth: depth, resolved: true))
    }
}

final class _AvroDecoder: Decoder {
    let state: AvroDecodingState
    // Reset for each value when pooled (see AvroDecodingState.acquireLeaf); one value at a time.
    @exclusivity(unchecked) var node: Int
    @exclusivity(unchecked) var basePath: [any CodingKey]
    @exclusivity(unchecked) var key: (any CodingKey)?
    @exclusivity(unchecked) var depth: Int
    var codingPath: [any CodingKey] { key.map { basePath + [$0] } ?? basePath }
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    @exclusivity(unchecked) var pending: (any AvroContainerFinisher)?

    init(state: AvroDecodingState, node: Int, basePath: [any CodingKey], key: (any CodingKey)?, depth: Int) {
        self.state = state
        self.node = node
        self.basePath = basePath
        self.key = key
        self.depth = depth
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

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        let n = try state.resolve(node)
        if let layout = state.cache.layouts[n] {
            let storage = AvroRecordDecoding(state: state, layout: layout, node: -1, basePath: codingPath, key: nil, depth: depth)
            pending = storage
            return KeyedDecodingContainer(AvroRecordKeyedDecodingContainer<Key>(storage: storage))
        }
        switch state.nodes[n] {
        case .map(let values):
            let storage = try AvroMapDecoding(state: state, valueNode: values, codingPath: codingPath, depth: depth)
            pending = storage
            return KeyedDecodingContainer(AvroKeyedDecodingContainer<Key>(storage: storage))
        default:
            throw state.fail(codingPath, "a keyed value (struct or dictionary) wanted from Avro type \(state.nodes[n].kindName)")
        }
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let n = try state.resolve(node)
        guard case .array(let items) = state.nodes[n] else {
            throw state.fail(codingPath, "a list wanted from Avro type \(state.nodes[n].kindName)")
        }
        let storage = AvroArrayDecoding(state: state, itemNode: items, codingPath: codingPath, depth: depth)
        pending = storage
        return storage
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        AvroDecoderSingleValueContainer(decoder: self)
    }
}

protocol AvroKeyedDecodingStorage: AvroContainerFinisher {
    var codingPath: [any CodingKey] { get }
    var keyNames: [String] { get }
    func contains(_ name: String) -> Bool
    func decodeNil(_ key: any CodingKey) throws -> Bool
    func decode<T: Decodable>(_ type: T.Type, _ key: any CodingKey) throws -> T
    func decodePrimitive<T>(_ key: any CodingKey, _ body: (AvroSingleValueDecoding) throws -> T) throws -> T
    /// `decodeIfPresent` for primitives in one step: nil when the key is absent or the value null.
    func decodeOptionalPrimitive<T>(_ key: any CodingKey, _ body: (AvroSingleValueDecoding) throws -> T) throws -> T?
}

/// A record read field by field. Reading fields in schema order is one pass with no
/// bookkeeping; asking for a later field skips the ones before it, asking for an earlier one
/// re-skips from the record's start (rare: synthesized `Decodable` reads in declaration order).
final class AvroRecordDecoding: AvroKeyedDecodingStorage, Decoder {
    let state: AvroDecodingState
    // Reset for each record when pooled (see AvroDecodingState.acquireRecord); one record at a time.
    // The layout belongs to the schema the call holds (unowned: no reference counting per field).
    @exclusivity(unchecked) unowned(unsafe) var layout: AvroRecordLayout
    /// The record's node, for values that decode through another container kind.
    @exclusivity(unchecked) var node: Int
    @exclusivity(unchecked) var basePath: [any CodingKey]
    @exclusivity(unchecked) var key: (any CodingKey)?
    @exclusivity(unchecked) var depth: Int
    var codingPath: [any CodingKey] { key.map { basePath + [$0] } ?? basePath }
    /// As a `Decoder`: whether a keyed container was handed out, and the general decoder used
    /// for other container kinds; finished when the value is done.
    @exclusivity(unchecked) var keyed = false
    @exclusivity(unchecked) var delegate: _AvroDecoder?

    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        keyed = true
        return KeyedDecodingContainer(AvroRecordKeyedDecodingContainer<Key>(storage: self))
    }

    func other() -> _AvroDecoder {
        if let delegate { return delegate }
        state.reader.position = start
        let decoder = _AvroDecoder(state: state, node: node, basePath: basePath, key: key, depth: depth)
        delegate = decoder
        return decoder
    }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { try other().unkeyedContainer() }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { try other().singleValueContainer() }

    func finishDecoding() throws {
        if keyed { try finish() }
        try delegate?.finish()
    }
    /// Where the record starts.
    @exclusivity(unchecked) var start: Int
    /// The next field in data order and where it starts.
    @exclusivity(unchecked) var next = 0
    @exclusivity(unchecked) var nextPosition: Int

    init(state: AvroDecodingState, layout: AvroRecordLayout, node: Int, basePath: [any CodingKey], key: (any CodingKey)?, depth: Int) {
        self.state = state
        self.layout = layout
        self.node = node
        self.basePath = basePath
        self.key = key
        self.depth = depth
        start = state.reader.position
        nextPosition = start
    }

    @inline(__always) func reset(layout: AvroRecordLayout, node: Int, basePath: [any CodingKey], key: (any CodingKey)?, depth: Int) {
        self.layout = layout
        self.node = node
        self.basePath = basePath
        self.key = key
        self.depth = depth
        keyed = false
        delegate = nil
        start = state.reader.position
        next = 0
        nextPosition = start
    }

    var keyNames: [String] { Array(layout.names) }
    func contains(_ name: String) -> Bool { layout.names.contains(name) }

    @inline(__always) func index<K: CodingKey>(of key: K) throws -> Int {
        let name = key.stringValue
        let names = layout.names
        if next < names.count, names[next] == name { return next }
        guard let j = names.firstIndex(of: name) else {
            throw DecodingError.keyNotFound(key, DecodingError.Context(codingPath: codingPath, debugDescription: "record \(layout.fullName) has no field \"\(name)\""))
        }
        return j
    }

    func skip(_ range: Range<Int>) throws {
        guard !range.isEmpty else { return }
        let types = layout.types
        try state.nodes.withUnsafeBufferPointer { nodes in
            for k in range { try AvroSchema.skip(node: types[k], nodes: nodes, reader: &state.reader, depth: depth + 1) }
        }
    }

    /// Positions the reader at the start of field `j`.
    @inline(__always) func seek(_ j: Int) throws {
        if j >= next {
            state.reader.position = nextPosition
            if j > next {
                try skip(next..<j)
                next = j
                nextPosition = state.reader.position
            }
        } else {
            state.reader.position = start
            try skip(0..<j)
        }
    }

    @inline(__always) func done(_ j: Int) {
        if j == next {
            next = j + 1
            nextPosition = state.reader.position
        }
    }

    func decodeNil(_ key: any CodingKey) throws -> Bool {
        guard let j = layout.names.firstIndex(of: key.stringValue) else { return true }
        try seek(j)
        if try state.peekNil(layout.types[j]) {
            done(j)
            return true
        }
        return false
    }

    func decode<T: Decodable>(_ type: T.Type, _ key: any CodingKey) throws -> T {
        try decodeField(type, key)
    }

    /// A field holding a nested value. Its coding path names the field by its schema name (the
    /// key matched it by that name), so the caller's key type never becomes an existential here.
    @inline(__always) func decodeField<T: Decodable, K: CodingKey>(_ type: T.Type, _ key: K) throws -> T {
        let j = try index(of: key)
        try seek(j)
        let value = try state.decodeValue(type, node: layout.types[j], codingPath: codingPath, key: AvroFieldKey(layout.names[j]), depth: depth + 1)
        done(j)
        return value
    }

    func decodePrimitive<T>(_ key: any CodingKey, _ body: (AvroSingleValueDecoding) throws -> T) throws -> T {
        let j = try index(of: key)
        try seek(j)
        let value = try state.decodePrimitive(node: layout.types[j], codingPath: codingPath, key: key, depth: depth + 1, body)
        done(j)
        return value
    }

    /// Moves to `key`'s field; returns its index and the node its value is read as (a union's
    /// branch index read and resolved).
    @inline(__always) func field<K: CodingKey>(_ key: K) throws -> (Int, Int) {
        let j = try index(of: key)
        try seek(j)
        return (j, try state.resolve(layout.types[j]))
    }

    /// As ``field(_:)`` for `decodeIfPresent`: nil when the record has no such field or the value
    /// is null (consumed).
    @inline(__always) func optionalField<K: CodingKey>(_ key: K) throws -> (Int, Int)? {
        let name = key.stringValue
        let j: Int
        if next < layout.names.count, layout.names[next] == name {
            j = next
        } else {
            guard let found = layout.names.firstIndex(of: name) else { return nil }
            j = found
        }
        try seek(j)
        if try state.peekNil(layout.types[j]) {
            done(j)
            return nil
        }
        return (j, try state.resolve(layout.types[j]))
    }

    /// Marks field `j` read and passes `value` through.
    @inline(__always) func done<T>(_ j: Int, _ value: T) -> T {
        done(j)
        return value
    }

    /// Reads field `j` at node `n` through a single-value container (what `body` asks of it).
    func slow<T, K: CodingKey>(_ j: Int, _ n: Int, _ key: K, _ body: (AvroSingleValueDecoding) throws -> T) throws -> T {
        let value = try body(AvroSingleValueDecoding(state: state, nodeIndex: n, basePath: codingPath, key: key, depth: depth + 1, resolved: true))
        done(j)
        return value
    }

    func decodeOptionalPrimitive<T>(_ key: any CodingKey, _ body: (AvroSingleValueDecoding) throws -> T) throws -> T? {
        let name = key.stringValue
        let j: Int
        if next < layout.names.count, layout.names[next] == name {
            j = next
        } else {
            guard let found = layout.names.firstIndex(of: name) else { return nil }
            j = found
        }
        try seek(j)
        let node = layout.types[j]
        if try state.peekNil(node) {
            done(j)
            return nil
        }
        let value = try state.decodePrimitive(node: node, codingPath: codingPath, key: key, depth: depth + 1, body)
        done(j)
        return value
    }

    func finish() throws {
        try seek(layout.types.count)
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
        return try state.decodeValue(type, node: valueNode, codingPath: codingPath, key: key, depth: depth + 1)
    }

    func decodePrimitive<T>(_ key: any CodingKey, _ body: (AvroSingleValueDecoding) throws -> T) throws -> T {
        state.reader.position = try position(key)
        return try state.decodePrimitive(node: valueNode, codingPath: codingPath, key: key, depth: depth + 1, body)
    }

    func decodeOptionalPrimitive<T>(_ key: any CodingKey, _ body: (AvroSingleValueDecoding) throws -> T) throws -> T? {
        guard let p = entries[key.stringValue] else { return nil }
        state.reader.position = p
        if try state.peekNil(valueNode) { return nil }
        return try state.decodePrimitive(node: valueNode, codingPath: codingPath, key: key, depth: depth + 1, body)
    }

    func finish() throws { state.reader.position = end }
}

/// The keyed container of a record. It holds the concrete storage class (not an existential),
/// so primitive reads are direct, specialized calls.
struct AvroRecordKeyedDecodingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let storage: AvroRecordDecoding
    var codingPath: [any CodingKey] { storage.codingPath }
    var allKeys: [Key] { storage.keyNames.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { storage.contains(key.stringValue) }
    func decodeNil(forKey key: Key) throws -> Bool { try storage.decodeNil(key) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try storage.decodeField(type, key) }
    // Primitives: the field's node (a union's branch resolved) is checked inline and the value
    // read straight from the input; other kinds, out-of-range values and their errors take the
    // general single-value path. No closures on the fast path: a closure context would retain
    // the state on every field.
    func decode(_ type: String.Type, forKey key: Key) throws -> String {
        let (j, n) = try storage.field(key)
        if storage.state.cache.kinds[n] == .string { return try storage.done(j, storage.state.reader.readString()) }
        return try storage.slow(j, n, key) { try $0.decode(type) }
    }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool {
        let (j, n) = try storage.field(key)
        if storage.state.cache.kinds[n] == .boolean { return try storage.done(j, storage.state.reader.readBoolean()) }
        return try storage.slow(j, n, key) { try $0.decode(type) }
    }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double {
        let (j, n) = try storage.field(key)
        if storage.state.cache.kinds[n] == .double { return try storage.done(j, storage.state.reader.readDouble()) }
        return try storage.slow(j, n, key) { try $0.decode(type) }
    }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float {
        let (j, n) = try storage.field(key)
        if storage.state.cache.kinds[n] == .float { return try storage.done(j, storage.state.reader.readFloat()) }
        return try storage.slow(j, n, key) { try $0.decode(type) }
    }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int {
        let (j, n) = try storage.field(key)
        let kind = storage.state.cache.kinds[n]
        if kind == .long || kind == .int, Int.bitWidth == 64 { return try storage.done(j, Int(storage.state.reader.readLong())) }
        return try storage.slow(j, n, key) { try $0.decode(type) }
    }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 {
        let (j, n) = try storage.field(key)
        if storage.state.cache.kinds[n] == .int { return try storage.done(j, storage.state.reader.readInt()) }
        return try storage.slow(j, n, key) { try $0.decode(type) }
    }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 {
        let (j, n) = try storage.field(key)
        let kind = storage.state.cache.kinds[n]
        if kind == .long || kind == .int { return try storage.done(j, storage.state.reader.readLong()) }
        return try storage.slow(j, n, key) { try $0.decode(type) }
    }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
        guard let (j, n) = try storage.optionalField(key) else { return nil }
        if storage.state.cache.kinds[n] == .string { return try storage.done(j, storage.state.reader.readString()) }
        return try storage.slow(j, n, key) { try $0.decode(type) }
    }
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? {
        guard let (j, n) = try storage.optionalField(key) else { return nil }
        if storage.state.cache.kinds[n] == .boolean { return try storage.done(j, storage.state.reader.readBoolean()) }
        return try storage.slow(j, n, key) { try $0.decode(type) }
    }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? {
        guard let (j, n) = try storage.optionalField(key) else { return nil }
        if storage.state.cache.kinds[n] == .double { return try storage.done(j, storage.state.reader.readDouble()) }
        return try storage.slow(j, n, key) { try $0.decode(type) }
    }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? {
        guard let (j, n) = try storage.optionalField(key) else { return nil }
        let kind = storage.state.cache.kinds[n]
        if kind == .long || kind == .int, Int.bitWidth == 64 { return try storage.done(j, Int(storage.state.reader.readLong())) }
        return try storage.slow(j, n, key) { try $0.decode(type) }
    }
    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? {
        guard let (j, n) = try storage.optionalField(key) else { return nil }
        if storage.state.cache.kinds[n] == .int { return try storage.done(j, storage.state.reader.readInt()) }
        return try storage.slow(j, n, key) { try $0.decode(type) }
    }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? {
        guard let (j, n) = try storage.optionalField(key) else { return nil }
        let kind = storage.state.cache.kinds[n]
        if kind == .long || kind == .int { return try storage.done(j, storage.state.reader.readLong()) }
        return try storage.slow(j, n, key) { try $0.decode(type) }
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard storage.contains(key.stringValue) else { return nil }
        if try storage.decodeNil(key) { return nil }
        return try storage.decodeField(type, key)
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

/// The keyed container of a map (entries located up front).
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

    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try storage.decodeOptionalPrimitive(key) { try $0.decode(type) } }
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try storage.decodeOptionalPrimitive(key) { try $0.decode(type) } }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try storage.decodeOptionalPrimitive(key) { try $0.decode(type) } }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try storage.decodeOptionalPrimitive(key) { try $0.decode(type) } }
    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try storage.decodeOptionalPrimitive(key) { try $0.decode(type) } }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try storage.decodeOptionalPrimitive(key) { try $0.decode(type) } }

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

final class AvroArrayDecoding: UnkeyedDecodingContainer, AvroContainerFinisher {
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
        try next { try state.decodeValue(type, node: itemNode, codingPath: codingPath, key: AvroArrayEncoding.Index(currentIndex), depth: depth + 1) }
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

/// A one-word single-value container (fits an existential's inline buffer, so handing it out
/// allocates nothing); it forwards to ``AvroSingleValueDecoding``.
struct AvroDecoderSingleValueContainer: SingleValueDecodingContainer {
    let decoder: _AvroDecoder
    var codingPath: [any CodingKey] { decoder.codingPath }
    var inner: AvroSingleValueDecoding {
        AvroSingleValueDecoding(state: decoder.state, nodeIndex: decoder.node, basePath: decoder.basePath, key: decoder.key, depth: decoder.depth, resolved: false)
    }
    func decodeNil() -> Bool { inner.decodeNil() }
    func decode(_ type: Bool.Type) throws -> Bool { try inner.decode(type) }
    func decode(_ type: String.Type) throws -> String {
        // Strings and enum symbols (what String-backed enums decode) straight from the input.
        let state = decoder.state, node = decoder.node
        switch state.cache.kinds[node] {
        case .string: return try state.reader.readString()
        case .enumeration:
            let i = try state.reader.readLong()
            guard i >= 0, i < state.cache.symbolCount[node] else {
                throw state.fail(decoder.codingPath, "enum \(state.nodes[node].name?.fullName ?? "") has no symbol number \(i)")
            }
            return state.cache.symbols[state.cache.symbolStart[node] + Int(i)]
        default: return try inner.decode(type)
        }
    }
    func decode(_ type: Double.Type) throws -> Double { try inner.decode(type) }
    func decode(_ type: Float.Type) throws -> Float { try inner.decode(type) }
    func decode(_ type: Int.Type) throws -> Int { try inner.decode(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try inner.decode(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try inner.decode(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try inner.decode(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try inner.decode(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try inner.decode(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try inner.decode(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try inner.decode(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try inner.decode(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try inner.decode(type) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try inner.decode(type) }
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
        resolved ? state.nodes[nodeIndex] : state.nodes[try state.resolve(nodeIndex)]
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
        try state.decodeValue(type, node: nodeIndex, codingPath: basePath, key: key, depth: depth + 1)
    }
}
