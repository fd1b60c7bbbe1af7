import EddyCore

/// Appends Avro binary encoding (spec, "Binary Encoding") to a byte array.
struct AvroWriter {
    var bytes: [UInt8]

    init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @inline(__always) mutating func writeLong(_ value: Int64) {
        var v = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    @inline(__always) mutating func writeInt(_ value: Int32) { writeLong(Int64(value)) }

    @inline(__always) mutating func writeBoolean(_ value: Bool) { bytes.append(value ? 1 : 0) }

    @inline(__always) mutating func writeFloat(_ value: Float) {
        let bits = value.bitPattern
        withUnsafeBytes(of: bits.littleEndian) { bytes.append(contentsOf: $0) }
    }

    @inline(__always) mutating func writeDouble(_ value: Double) {
        let bits = value.bitPattern
        withUnsafeBytes(of: bits.littleEndian) { bytes.append(contentsOf: $0) }
    }

    @inline(__always) mutating func writeBytes(_ value: [UInt8]) {
        writeLong(Int64(value.count))
        bytes.append(contentsOf: value)
    }

    @inline(__always) mutating func writeString(_ value: String) {
        // Native and small strings lend their UTF-8 without a copy of the string (no retain).
        let done: Void? = value.utf8.withContiguousStorageIfAvailable { utf8 in
            writeLong(Int64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
        if done != nil { return }
        var s = value
        s.withUTF8 { utf8 in
            writeLong(Int64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }
}

/// Reads Avro binary encoding from a buffer; every read checks the remaining length, so
/// truncated or hostile data ends in ``EddyError/Code/serialization``, never a crash.
struct AvroReader {
    let base: UnsafePointer<UInt8>?
    let count: Int
    var position: Int

    init(_ buffer: UnsafeBufferPointer<UInt8>, position: Int = 0) {
        base = buffer.baseAddress
        count = buffer.count
        self.position = position
    }

    var remaining: Int { count - position }

    func truncated(_ what: String) -> EddyError {
        EddyError(.serialization, "Avro data truncated at byte \(position) of \(count) while reading \(what)")
    }

    @inline(__always) mutating func readLong() throws -> Int64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < count, let base else { throw truncated("a long") }
            let byte = base[position]
            position += 1
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
            guard shift < 64 else { throw EddyError(.serialization, "Avro varint longer than 10 bytes at byte \(position)") }
        }
        return Int64(bitPattern: (result >> 1) ^ (0 &- (result & 1)))
    }

    @inline(__always) mutating func readInt() throws -> Int32 {
        let v = try readLong()
        guard let i = Int32(exactly: v) else { throw EddyError(.serialization, "Avro int out of range (\(v)) at byte \(position)") }
        return i
    }

    @inline(__always) mutating func readBoolean() throws -> Bool {
        guard position < count, let base else { throw truncated("a boolean") }
        let b = base[position]
        position += 1
        guard b <= 1 else { throw EddyError(.serialization, "Avro boolean byte is \(b), not 0 or 1, at byte \(position - 1)") }
        return b == 1
    }

    @inline(__always) mutating func readFloat() throws -> Float {
        guard remaining >= 4, let base else { throw truncated("a float") }
        var bits: UInt32 = 0
        withUnsafeMutableBytes(of: &bits) { $0.copyMemory(from: UnsafeRawBufferPointer(start: base + position, count: 4)) }
        position += 4
        return Float(bitPattern: UInt32(littleEndian: bits))
    }

    @inline(__always) mutating func readDouble() throws -> Double {
        guard remaining >= 8, let base else { throw truncated("a double") }
        var bits: UInt64 = 0
        withUnsafeMutableBytes(of: &bits) { $0.copyMemory(from: UnsafeRawBufferPointer(start: base + position, count: 8)) }
        position += 8
        return Double(bitPattern: UInt64(littleEndian: bits))
    }

    /// A length prefix for bytes or strings, checked against what is left.
    @inline(__always) mutating func readLength(_ what: String) throws -> Int {
        let n = try readLong()
        guard n >= 0 else { throw EddyError(.serialization, "negative \(what) length \(n) at byte \(position)") }
        guard n <= remaining else { throw truncated("\(what) of \(n) bytes") }
        return Int(n)
    }

    @inline(__always) mutating func readRaw(_ n: Int, _ what: String) throws -> UnsafeBufferPointer<UInt8> {
        guard n <= remaining else { throw truncated(what) }
        let slice = UnsafeBufferPointer(start: base.map { $0 + position }, count: n)
        position += n
        return slice
    }

    @inline(__always) mutating func readBytes() throws -> [UInt8] {
        let n = try readLength("bytes")
        return Array(try readRaw(n, "bytes"))
    }

    @inline(__always) mutating func readString() throws -> String {
        let n = try readLength("string")
        let raw = try readRaw(n, "string")
        // ASCII is valid UTF-8 as it is; the general validation is not specialized in the standard
        // library and costs several runtime metadata lookups per string.
        if AvroReader.isASCII(raw) { return String(decoding: raw, as: UTF8.self) }
        guard let s = String(validating: raw, as: UTF8.self) else {
            throw EddyError(.serialization, "Avro string is not valid UTF-8 at byte \(position - n)")
        }
        return s
    }

    /// Whether every byte is below 0x80, eight at a time.
    @inline(__always) static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let raw = UnsafeRawPointer(base)
        var i = 0
        var bits: UInt64 = 0
        while i + 8 <= bytes.count {
            bits |= raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < bytes.count {
            bits |= UInt64(base[i])
            i += 1
        }
        return bits & 0x8080_8080_8080_8080 == 0
    }

    @inline(__always) mutating func skip(_ n: Int, _ what: String) throws {
        guard n >= 0, n <= remaining else { throw truncated(what) }
        position += n
    }

    /// Reads an array or map block header: the item count (0 ends the collection). A negative
    /// count is followed by the block's byte size, which is returned too.
    @inline(__always) mutating func readBlockCount() throws -> (count: Int, byteSize: Int?) {
        let n = try readLong()
        if n == 0 { return (0, nil) }
        if n < 0 {
            guard n != Int64.min else { throw EddyError(.serialization, "invalid Avro block count at byte \(position)") }
            let size = try readLong()
            guard size >= 0 else { throw EddyError(.serialization, "negative Avro block size at byte \(position)") }
            guard -n <= Int64(AvroLimits.maximumBlockItems) else {
                throw EddyError(.serialization, "Avro block of \(-n) items is over the limit of \(AvroLimits.maximumBlockItems) (AvroLimits.maximumBlockItems)")
            }
            return (Int(-n), Int(size))
        }
        guard n <= Int64(AvroLimits.maximumBlockItems) else {
            throw EddyError(.serialization, "Avro block of \(n) items is over the limit of \(AvroLimits.maximumBlockItems) (AvroLimits.maximumBlockItems)")
        }
        return (Int(n), nil)
    }
}

extension AvroSchema {
    /// Encodes `value` in Avro binary. Throws ``EddyError/Code/serialization`` naming the field
    /// path when the value does not match the schema (wrong type, wrong field count, enum index
    /// or union branch out of range, fixed of the wrong size, int out of range).
    ///
    /// Costs O(size of the value); one allocation for the output in the common case.
    public func encode(_ value: AvroValue) throws -> [UInt8] {
        var writer = AvroWriter(capacity: 64)
        try encode(value, into: &writer)
        return writer.bytes
    }

    /// Appends the Avro binary encoding of `value` to `bytes`. Same contract as ``encode(_:)``;
    /// on failure `bytes` may hold a partial encoding.
    public func encode(_ value: AvroValue, appendingTo bytes: inout [UInt8]) throws {
        var writer = AvroWriter(capacity: 0)
        swap(&writer.bytes, &bytes)
        defer { swap(&writer.bytes, &bytes) }
        try encode(value, into: &writer)
    }

    func encode(_ value: AvroValue, into writer: inout AvroWriter) throws {
        try nodes.withUnsafeBufferPointer { nodes in
            try AvroSchema.encode(value, node: root, nodes: nodes, into: &writer, depth: 0)
        }
    }

    static func mismatch(_ value: AvroValue, _ node: AvroNode) -> EddyError {
        let shown = String(describing: value)
        let text = shown.count > 80 ? String(shown.prefix(80)) + "…" : shown
        return EddyError(.serialization, "value \(text) does not match Avro type \(node.name?.fullName ?? node.kindName)")
    }

    /// Whether `value` has the shape of `node` (used to pick a union branch for a value that
    /// is not wrapped in `.union`).
    static func fits(_ value: AvroValue, _ node: AvroNode) -> Bool {
        switch (node, value) {
        case (.null, .null), (.boolean, .boolean), (.int, .int), (.long, .long), (.float, .float), (.double, .double),
             (.bytes, .bytes), (.string, .string), (.record, .record), (.enumeration, .enumeration), (.array, .array),
             (.map, .map): return true
        case (.fixed(_, let size, _), .fixed(let b)): return b.count == size
        default: return false
        }
    }

    static func encode(_ value: AvroValue, node index: Int, nodes: UnsafeBufferPointer<AvroNode>, into writer: inout AvroWriter, depth: Int) throws {
        guard depth < AvroLimits.maximumValueDepth else {
            throw EddyError(.serialization, "value nested deeper than \(AvroLimits.maximumValueDepth) (AvroLimits.maximumValueDepth)")
        }
        let node = nodes[index]
        switch (node, value) {
        case (.null, .null): return
        case (.boolean, .boolean(let b)): writer.writeBoolean(b)
        case (.int, .int(let i)): writer.writeInt(i)
        case (.long, .long(let i)): writer.writeLong(i)
        case (.long, .int(let i)): writer.writeLong(Int64(i))
        case (.float, .float(let f)): writer.writeFloat(f)
        case (.double, .double(let d)): writer.writeDouble(d)
        case (.double, .float(let f)): writer.writeDouble(Double(f))
        case (.bytes, .bytes(let b)): writer.writeBytes(b)
        case (.string, .string(let s)): writer.writeString(s)
        case (.fixed(let name, let size, _), .fixed(let b)):
            guard b.count == size else { throw EddyError(.serialization, "fixed \(name.fullName) needs \(size) bytes, the value has \(b.count)") }
            writer.bytes.append(contentsOf: b)
        case (.enumeration(let name, let symbols, _), .enumeration(let i)):
            guard i >= 0, i < symbols.count else { throw EddyError(.serialization, "enum \(name.fullName) has no symbol number \(i)") }
            writer.writeLong(Int64(i))
        case (.array(let items), .array(let list)):
            if !list.isEmpty {
                writer.writeLong(Int64(list.count))
                for (i, item) in list.enumerated() {
                    do {
                        try encode(item, node: items, nodes: nodes, into: &writer, depth: depth + 1)
                    } catch let error as EddyError {
                        throw EddyError(.serialization, "[\(i)]: \(error.message)")
                    }
                }
            }
            writer.writeLong(0)
        case (.map(let values), .map(let map)):
            if !map.isEmpty {
                writer.writeLong(Int64(map.count))
                for (key, item) in map {
                    writer.writeString(key)
                    do {
                        try encode(item, node: values, nodes: nodes, into: &writer, depth: depth + 1)
                    } catch let error as EddyError {
                        throw EddyError(.serialization, "[\"\(key)\"]: \(error.message)")
                    }
                }
            }
            writer.writeLong(0)
        case (.record(let name, let fields, _), .record(let list)):
            guard list.count == fields.count else {
                throw EddyError(.serialization, "record \(name.fullName) has \(fields.count) fields, the value has \(list.count)")
            }
            for i in 0..<fields.count {
                do {
                    try encode(list[i], node: fields[i].type, nodes: nodes, into: &writer, depth: depth + 1)
                } catch let error as EddyError {
                    throw EddyError(.serialization, "\(name.simpleName).\(fields[i].name): \(error.message)")
                }
            }
        case (.union(let branches), .union(let i, let v)):
            guard i >= 0, i < branches.count else { throw EddyError(.serialization, "the union has no branch number \(i)") }
            writer.writeLong(Int64(i))
            try encode(v, node: branches[i], nodes: nodes, into: &writer, depth: depth + 1)
        case (.union(let branches), _):
            guard let i = branches.firstIndex(where: { fits(value, nodes[$0]) }) else { throw mismatch(value, node) }
            writer.writeLong(Int64(i))
            try encode(value, node: branches[i], nodes: nodes, into: &writer, depth: depth + 1)
        default:
            throw mismatch(value, node)
        }
    }

    /// Skips one value of `node` (a writer's field the reader does not want).
    static func skip(node index: Int, nodes: UnsafeBufferPointer<AvroNode>, reader: inout AvroReader, depth: Int) throws {
        guard depth < AvroLimits.maximumValueDepth else {
            throw EddyError(.serialization, "data nested deeper than \(AvroLimits.maximumValueDepth) (AvroLimits.maximumValueDepth)")
        }
        switch nodes[index] {
        case .null: return
        case .boolean: _ = try reader.readBoolean()
        case .int, .long, .enumeration: _ = try reader.readLong()
        case .float: try reader.skip(4, "a float")
        case .double: try reader.skip(8, "a double")
        case .bytes, .string: try reader.skip(try reader.readLength("bytes"), "bytes")
        case .fixed(_, let size, _): try reader.skip(size, "a fixed")
        case .record(_, let fields, _):
            for field in fields { try skip(node: field.type, nodes: nodes, reader: &reader, depth: depth + 1) }
        case .array(let items):
            while true {
                let (n, size) = try reader.readBlockCount()
                if n == 0 { break }
                if let size { try reader.skip(size, "an array block"); continue }
                for _ in 0..<n { try skip(node: items, nodes: nodes, reader: &reader, depth: depth + 1) }
            }
        case .map(let values):
            while true {
                let (n, size) = try reader.readBlockCount()
                if n == 0 { break }
                if let size { try reader.skip(size, "a map block"); continue }
                for _ in 0..<n {
                    try reader.skip(try reader.readLength("map key"), "a map key")
                    try skip(node: values, nodes: nodes, reader: &reader, depth: depth + 1)
                }
            }
        case .union(let branches):
            let i = try reader.readLong()
            guard i >= 0, i < branches.count else { throw EddyError(.serialization, "union branch \(i) out of range (the union has \(branches.count)) at byte \(reader.position)") }
            try skip(node: branches[Int(i)], nodes: nodes, reader: &reader, depth: depth + 1)
        }
    }
}
