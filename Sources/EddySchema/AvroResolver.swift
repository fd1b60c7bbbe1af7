import EddyCore

/// One reason a schema cannot read data written with another (or a JSON Schema or Protobuf
/// change that breaks compatibility): where, which rule, and a sentence.
public struct SchemaIncompatibility: Hashable, Sendable, CustomStringConvertible {
    /// Where in the schema, e.g. `/fields/2/type` or `User.address.zip`.
    public var path: String
    /// The rule broken, in Confluent's words where they exist (`READER_FIELD_MISSING_DEFAULT_VALUE`,
    /// `TYPE_MISMATCH`, `NAME_MISMATCH`, `FIXED_SIZE_MISMATCH`, `MISSING_ENUM_SYMBOLS`,
    /// `MISSING_UNION_BRANCH`, …).
    public var rule: String
    /// A sentence for people.
    public var message: String

    public init(path: String, rule: String, message: String) {
        self.path = path
        self.rule = rule
        self.message = message
    }

    public var description: String { "\(rule) at \(path): \(message)" }
}

/// One step of a compiled read program. Children are indices into the program's step list.
enum AvroStep: Sendable {
    case null, boolean, int, long, float, double, bytes, string
    case intToLong, intToFloat, intToDouble, longToFloat, longToDouble, floatToDouble
    case bytesToString, stringToBytes
    case fixed(Int)
    /// `map[writerSymbol]` is the reader's symbol index, or -1 (then `defaultIndex`, or an error if -1).
    case enumeration(map: [Int], defaultIndex: Int, name: String)
    case array(Int)
    case map(Int)
    /// Writer fields in writer order; `template` holds the reader's field defaults.
    case record(ops: [AvroFieldOp], template: [AvroValue])
    /// The writer wrote a union: one step per writer branch.
    case writerUnion([Int])
    /// The reader has a union and the writer did not: wrap into this reader branch.
    case readerUnion(branch: Int, step: Int)
    /// Data that cannot be read (a writer union branch or enum symbol the reader lacks).
    case fail(String)
}

enum AvroFieldOp: Sendable {
    /// Read the writer's field into reader slot `slot`.
    case read(slot: Int, step: Int)
    /// Skip the writer's field of this writer node.
    case skip(node: Int)
}

/// A compiled program that reads data written with one schema as values of another.
final class AvroReadProgram: Sendable {
    let steps: [AvroStep]
    let root: Int
    let writerNodes: [AvroNode]
    init(steps: [AvroStep], root: Int, writerNodes: [AvroNode]) {
        self.steps = steps
        self.root = root
        self.writerNodes = writerNodes
    }

    func decode(_ bytes: UnsafeBufferPointer<UInt8>, position: inout Int) throws -> AvroValue {
        var reader = AvroReader(bytes, position: position)
        let value = try steps.withUnsafeBufferPointer { steps in
            try writerNodes.withUnsafeBufferPointer { nodes in
                try AvroReadProgram.read(root, steps: steps, nodes: nodes, reader: &reader, depth: 0)
            }
        }
        position = reader.position
        return value
    }

    static func read(_ index: Int, steps: UnsafeBufferPointer<AvroStep>, nodes: UnsafeBufferPointer<AvroNode>,
                     reader: inout AvroReader, depth: Int) throws -> AvroValue {
        switch steps[index] {
        case .null: return .null
        case .boolean: return .boolean(try reader.readBoolean())
        case .int: return .int(try reader.readInt())
        case .long: return .long(try reader.readLong())
        case .float: return .float(try reader.readFloat())
        case .double: return .double(try reader.readDouble())
        case .bytes: return .bytes(try reader.readBytes())
        case .string: return .string(try reader.readString())
        case .intToLong: return .long(Int64(try reader.readInt()))
        case .intToFloat: return .float(Float(try reader.readInt()))
        case .intToDouble: return .double(Double(try reader.readInt()))
        case .longToFloat: return .float(Float(try reader.readLong()))
        case .longToDouble: return .double(Double(try reader.readLong()))
        case .floatToDouble: return .double(Double(try reader.readFloat()))
        case .bytesToString:
            let b = try reader.readBytes()
            guard let s = String(validating: b, as: UTF8.self) else { throw EddyError(.serialization, "bytes read as a string are not valid UTF-8") }
            return .string(s)
        case .stringToBytes: return .bytes(try reader.readBytes())
        case .fixed(let size): return .fixed(Array(try reader.readRaw(size, "a fixed of \(size) bytes")))
        case .enumeration(let map, let defaultIndex, let name):
            let i = try reader.readLong()
            guard i >= 0, i < map.count else { throw EddyError(.serialization, "enum \(name) symbol index \(i) out of range (\(map.count) symbols) at byte \(reader.position)") }
            let r = map[Int(i)]
            if r >= 0 { return .enumeration(r) }
            if defaultIndex >= 0 { return .enumeration(defaultIndex) }
            throw EddyError(.serialization, "enum \(name): the writer's symbol number \(i) is not in the reader's enum, which has no default")
        case .array(let items):
            guard depth < AvroLimits.maximumValueDepth else { throw tooDeep() }
            var list: [AvroValue] = []
            while true {
                let (n, _) = try reader.readBlockCount()
                if n == 0 { break }
                // Every item takes at least zero bytes, so cap the reservation by what is left.
                list.reserveCapacity(list.count + min(n, reader.remaining))
                for _ in 0..<n { list.append(try read(items, steps: steps, nodes: nodes, reader: &reader, depth: depth + 1)) }
            }
            return .array(list)
        case .map(let values):
            guard depth < AvroLimits.maximumValueDepth else { throw tooDeep() }
            var map: [String: AvroValue] = [:]
            while true {
                let (n, _) = try reader.readBlockCount()
                if n == 0 { break }
                for _ in 0..<n {
                    let key = try reader.readString()
                    map[key] = try read(values, steps: steps, nodes: nodes, reader: &reader, depth: depth + 1)
                }
            }
            return .map(map)
        case .record(let ops, let template):
            guard depth < AvroLimits.maximumValueDepth else { throw tooDeep() }
            var fields = template
            for op in ops {
                switch op {
                case .read(let slot, let step):
                    fields[slot] = try read(step, steps: steps, nodes: nodes, reader: &reader, depth: depth + 1)
                case .skip(let node):
                    try AvroSchema.skip(node: node, nodes: nodes, reader: &reader, depth: depth + 1)
                }
            }
            return .record(fields)
        case .writerUnion(let branches):
            let i = try reader.readLong()
            guard i >= 0, i < branches.count else {
                throw EddyError(.serialization, "union branch \(i) out of range (the union has \(branches.count)) at byte \(reader.position)")
            }
            return try read(branches[Int(i)], steps: steps, nodes: nodes, reader: &reader, depth: depth + 1)
        case .readerUnion(let branch, let step):
            return .union(branch, try read(step, steps: steps, nodes: nodes, reader: &reader, depth: depth + 1))
        case .fail(let message):
            throw EddyError(.serialization, message)
        }
    }

    static func tooDeep() -> EddyError {
        EddyError(.serialization, "data nested deeper than \(AvroLimits.maximumValueDepth) (AvroLimits.maximumValueDepth)")
    }
}

/// Compiles writer/reader schema pairs into read programs, collecting incompatibilities.
struct AvroProgramBuilder {
    let writer: [AvroNode]
    let reader: [AvroNode]
    var steps: [AvroStep] = []
    var memo: [Int: Int] = [:]
    var issues: [SchemaIncompatibility] = []

    init(writer: [AvroNode], reader: [AvroNode]) {
        self.writer = writer
        self.reader = reader
    }

    static func namesMatch(_ w: AvroName, _ r: AvroName) -> Bool {
        w.fullName == r.fullName || w.simpleName == r.simpleName || r.aliases.contains(w.fullName)
            || r.aliases.contains { $0.split(separator: ".").last == w.simpleName }
    }

    /// The spec's "match" (used to pick a reader union branch): same type, a promotion, or
    /// named types with matching names.
    /// With `exact`, only the same type (no promotion) matches: a reader union is searched for an
    /// exact match first, then for a promotion, so `["long","int"]` reads an `int` as an `int`.
    func matches(_ w: Int, _ r: Int, exact: Bool = false) -> Bool {
        switch (writer[w], reader[r]) {
        case (.null, .null), (.boolean, .boolean), (.int, .int), (.long, .long), (.float, .float), (.double, .double),
             (.bytes, .bytes), (.string, .string), (.array, .array), (.map, .map): return true
        case _ where exact: break
        case (.int, .long), (.int, .float), (.int, .double), (.long, .float), (.long, .double), (.float, .double),
             (.string, .bytes), (.bytes, .string): return true
        case (.record(let a, _, _), .record(let b, _, _)), (.enumeration(let a, _, _), .enumeration(let b, _, _)):
            return AvroProgramBuilder.namesMatch(a, b)
        case (.fixed(let a, let sa, _), .fixed(let b, let sb, _)): return sa == sb && AvroProgramBuilder.namesMatch(a, b)
        default: return false
        }
        switch (writer[w], reader[r]) {
        case (.record(let a, _, _), .record(let b, _, _)), (.enumeration(let a, _, _), .enumeration(let b, _, _)):
            return AvroProgramBuilder.namesMatch(a, b)
        case (.fixed(let a, let sa, _), .fixed(let b, let sb, _)): return sa == sb && AvroProgramBuilder.namesMatch(a, b)
        default: return false
        }
    }

    func describe(_ nodes: [AvroNode], _ i: Int) -> String { nodes[i].name?.fullName ?? nodes[i].kindName }

    mutating func add(_ step: AvroStep) -> Int {
        steps.append(step)
        return steps.count - 1
    }

    mutating func build(_ w: Int, _ r: Int, path: String) -> Int {
        let key = w << 32 | r
        if let existing = memo[key] { return existing }
        let index = add(.null)
        memo[key] = index
        steps[index] = makeStep(w, r, path: path)
        return index
    }

    mutating func issue(_ path: String, _ rule: String, _ message: String) -> AvroStep {
        issues.append(SchemaIncompatibility(path: path, rule: rule, message: message))
        return .fail("cannot read: \(message) (at \(path))")
    }

    mutating func makeStep(_ w: Int, _ r: Int, path: String) -> AvroStep {
        let wn = writer[w], rn = reader[r]
        if case .union(let wb) = wn {
            return .writerUnion(wb.enumerated().map { i, b in build(b, r, path: path) })
        }
        if case .union(let rb) = rn {
            guard let branch = rb.firstIndex(where: { matches(w, $0, exact: true) }) ?? rb.firstIndex(where: { matches(w, $0) }) else {
                return issue(path, "MISSING_UNION_BRANCH", "the reader's union has no branch for the writer's \(describe(writer, w))")
            }
            return .readerUnion(branch: branch, step: build(w, rb[branch], path: path))
        }
        switch (wn, rn) {
        case (.null, .null): return .null
        case (.boolean, .boolean): return .boolean
        case (.int, .int): return .int
        case (.long, .long): return .long
        case (.float, .float): return .float
        case (.double, .double): return .double
        case (.bytes, .bytes): return .bytes
        case (.string, .string): return .string
        case (.int, .long): return .intToLong
        case (.int, .float): return .intToFloat
        case (.int, .double): return .intToDouble
        case (.long, .float): return .longToFloat
        case (.long, .double): return .longToDouble
        case (.float, .double): return .floatToDouble
        case (.bytes, .string): return .bytesToString
        case (.string, .bytes): return .stringToBytes
        case (.fixed(let wName, let wSize, _), .fixed(let rName, let rSize, _)):
            guard AvroProgramBuilder.namesMatch(wName, rName) else {
                return issue(path, "NAME_MISMATCH", "the writer's fixed \(wName.fullName) is read as \(rName.fullName)")
            }
            guard wSize == rSize else {
                return issue(path, "FIXED_SIZE_MISMATCH", "fixed \(rName.fullName) has size \(rSize) in the reader and \(wSize) in the writer")
            }
            return .fixed(wSize)
        case (.enumeration(let wName, let wSymbols, _), .enumeration(let rName, let rSymbols, let rDefault)):
            guard AvroProgramBuilder.namesMatch(wName, rName) else {
                return issue(path, "NAME_MISMATCH", "the writer's enum \(wName.fullName) is read as \(rName.fullName)")
            }
            let map = wSymbols.map { rSymbols.firstIndex(of: $0) ?? -1 }
            let defaultIndex = rDefault.flatMap { rSymbols.firstIndex(of: $0) } ?? -1
            let missing = zip(wSymbols, map).filter { $0.1 < 0 }.map(\.0)
            if !missing.isEmpty, defaultIndex < 0 {
                issues.append(SchemaIncompatibility(path: path, rule: "MISSING_ENUM_SYMBOLS",
                    message: "the reader's enum \(rName.fullName) lacks the writer's symbols \(missing.joined(separator: ", ")) and has no default"))
            }
            return .enumeration(map: map, defaultIndex: defaultIndex, name: rName.fullName)
        case (.array(let wi), .array(let ri)):
            return .array(build(wi, ri, path: path + ".items"))
        case (.map(let wv), .map(let rv)):
            return .map(build(wv, rv, path: path + ".values"))
        case (.record(let wName, let wFields, _), .record(let rName, let rFields, _)):
            guard AvroProgramBuilder.namesMatch(wName, rName) else {
                return issue(path, "NAME_MISMATCH", "the writer's record \(wName.fullName) is read as \(rName.fullName)")
            }
            var ops: [AvroFieldOp] = []
            var filled = [Bool](repeating: false, count: rFields.count)
            for wf in wFields {
                if let slot = rFields.firstIndex(where: { $0.name == wf.name || $0.aliases.contains(wf.name) }) {
                    filled[slot] = true
                    ops.append(.read(slot: slot, step: build(wf.type, rFields[slot].type, path: "\(path).\(rFields[slot].name)")))
                } else {
                    ops.append(.skip(node: wf.type))
                }
            }
            var template = [AvroValue](repeating: .null, count: rFields.count)
            var broken = false
            for (slot, field) in rFields.enumerated() where !filled[slot] {
                if let d = field.defaultValue {
                    template[slot] = d
                } else {
                    broken = true
                    issues.append(SchemaIncompatibility(path: "\(path).\(field.name)", rule: "READER_FIELD_MISSING_DEFAULT_VALUE",
                        message: "the reader's field \"\(field.name)\" of \(rName.fullName) is not in the writer's schema and has no default"))
                }
            }
            if broken { return .fail("cannot read record \(rName.fullName): a reader field without default is missing in the writer's schema") }
            return .record(ops: ops, template: template)
        default:
            return issue(path, "TYPE_MISMATCH", "the writer's \(describe(writer, w)) cannot be read as \(describe(reader, r))")
        }
    }
}

/// Reads data written with one Avro schema (the writer's) as values of another (the reader's),
/// exactly as the Avro specification's "Schema Resolution" says: record fields matched by name
/// or reader alias, writer fields the reader lacks skipped, reader fields the writer lacks
/// filled from their defaults, promotions int→long→float→double and string↔bytes, enum symbols
/// mapped by name (the reader's default for unknown ones), unions resolved branch by branch.
///
/// The pair is compiled once into a program (no name lookups while reading). A resolver is an
/// immutable value, safe to share between threads.
///
/// ```swift
/// let resolver = try AvroResolver(writer: v1, reader: v2)
/// let value = try resolver.decode(bytesWrittenWithV1)   // a value of v2
/// ```
public struct AvroResolver: Sendable {
    public let writer: AvroSchema
    public let reader: AvroSchema
    let program: AvroReadProgram
    /// Every reason data of the writer may fail to be read (empty when the reader can read all
    /// of the writer's data: the reader is *backward compatible* with the writer).
    public let incompatibilities: [SchemaIncompatibility]

    /// Compiles the pair. Throws ``EddyError/Code/invalidArgument`` listing the reasons when the
    /// reader can read no data at all of the writer (top-level type mismatch, a reader field with
    /// no default missing in the writer); pairs where only some data fails (an enum symbol or
    /// union branch the reader lacks) compile, and such data fails when read.
    public init(writer: AvroSchema, reader: AvroSchema) throws {
        self.writer = writer
        self.reader = reader
        var builder = AvroProgramBuilder(writer: writer.nodes, reader: reader.nodes)
        let root = builder.build(writer.root, reader.root, path: reader.fullName ?? "root")
        if case .fail = builder.steps[root] {
            throw EddyError(.invalidArgument, "the reader schema cannot read the writer's data: " + builder.issues.map(\.description).joined(separator: "; "))
        }
        self.program = AvroReadProgram(steps: builder.steps, root: root, writerNodes: writer.nodes)
        self.incompatibilities = builder.issues
    }

    /// Every reason `reader` may fail to read data written with `writer`; empty when it can read it all.
    public static func incompatibilities(writer: AvroSchema, reader: AvroSchema) -> [SchemaIncompatibility] {
        var builder = AvroProgramBuilder(writer: writer.nodes, reader: reader.nodes)
        _ = builder.build(writer.root, reader.root, path: reader.fullName ?? "root")
        return builder.issues
    }

    /// Decodes one value written with ``writer`` as a value of ``reader``. Throws
    /// ``EddyError/Code/serialization`` for truncated or malformed data, trailing bytes, or data
    /// the reader cannot represent.
    public func decode(_ bytes: [UInt8]) throws -> AvroValue {
        try bytes.withUnsafeBufferPointer { buffer in
            var position = 0
            let value = try program.decode(buffer, position: &position)
            guard position == buffer.count else {
                throw EddyError(.serialization, "\(buffer.count - position) bytes left over after the Avro value")
            }
            return value
        }
    }
}

extension AvroSchema {
    /// Decodes one value written with this schema. Throws ``EddyError/Code/serialization`` for
    /// truncated or malformed data (and names the byte position) or trailing bytes.
    /// Costs O(size of the data); the read program is compiled once per schema and cached.
    public func decode(_ bytes: [UInt8]) throws -> AvroValue {
        try bytes.withUnsafeBufferPointer { try decode($0) }
    }

    /// Decodes one value from a buffer that must hold exactly one value.
    public func decode(_ buffer: UnsafeBufferPointer<UInt8>) throws -> AvroValue {
        var position = 0
        let value = try identityProgram.decode(buffer, position: &position)
        guard position == buffer.count else {
            throw EddyError(.serialization, "\(buffer.count - position) bytes left over after the Avro value")
        }
        return value
    }

    /// Decodes a value that starts at `position` in `buffer`, moving `position` past it.
    public func decode(_ buffer: UnsafeBufferPointer<UInt8>, position: inout Int) throws -> AvroValue {
        try identityProgram.decode(buffer, position: &position)
    }

    var identityProgram: AvroReadProgram { programCache.program }
}

/// The kind of a schema node, without payload: checked on the Codable hot paths instead of
/// pattern-matching ``AvroNode`` (which copies and retains its payload).
enum AvroKind: UInt8, Sendable {
    case null, boolean, int, long, float, double, bytes, string, record, enumeration, array, map, union, fixed
}

/// Copies `array` into a buffer owned by the caller (freed with `release`): the Codable hot
/// paths read these tables on every field, and a buffer read costs no retain/release.
func ownedBuffer<T>(_ array: [T]) -> UnsafeMutableBufferPointer<T> {
    let buffer = UnsafeMutableBufferPointer<T>.allocate(capacity: max(array.count, 1))
    _ = buffer.initialize(from: array)
    return UnsafeMutableBufferPointer(rebasing: buffer[0..<array.count])
}

func release<T>(_ buffer: UnsafeMutableBufferPointer<T>) {
    buffer.deinitialize()
    buffer.baseAddress?.deallocate()
}

/// A record's fields laid out for the Codable paths: names and types in plain buffers.
final class AvroRecordLayout: @unchecked Sendable {
    // @unchecked: the buffers are written once in init, only read afterwards, freed in deinit.
    let fullName: String
    let names: UnsafeMutableBufferPointer<String>
    let types: UnsafeMutableBufferPointer<Int>
    let fields: [AvroField]
    init(fullName: String, fields: [AvroField]) {
        self.fullName = fullName
        self.fields = fields
        names = ownedBuffer(fields.map(\.name))
        types = ownedBuffer(fields.map(\.type))
    }
    deinit {
        release(names)
        release(types)
    }
}

/// What is compiled once per schema (at parse time): the identity read program and the
/// per-node tables the Codable encoder and decoder use.
final class AvroProgramCache: @unchecked Sendable {
    // @unchecked: the buffers are written once in init, only read afterwards, freed in deinit.
    let program: AvroReadProgram
    let kinds: UnsafeMutableBufferPointer<AvroKind>
    let layouts: [AvroRecordLayout?]
    /// For a union: the index of its `null` branch, else -1.
    let nullBranch: UnsafeMutableBufferPointer<Int>
    /// For a union with exactly one non-null branch: that branch's index, else -1.
    let singleBranch: UnsafeMutableBufferPointer<Int>
    /// For such a union: the node of that branch, else -1.
    let singleBranchNode: UnsafeMutableBufferPointer<Int>
    /// For an enum: where its symbols start in ``symbols`` and how many it has (else 0, 0).
    let symbolStart: UnsafeMutableBufferPointer<Int>
    let symbolCount: UnsafeMutableBufferPointer<Int>
    /// The symbols of every enum, one after another (read without reference counting).
    let symbols: UnsafeMutableBufferPointer<String>

    deinit {
        release(kinds)
        release(nullBranch)
        release(singleBranch)
        release(singleBranchNode)
        release(symbolStart)
        release(symbolCount)
        release(symbols)
    }

    /// The index of `symbol` among enum `node`'s symbols, or nil.
    @inline(__always) func symbolIndex(_ symbol: String, node: Int) -> Int? {
        let start = symbolStart[node]
        for i in 0..<symbolCount[node] where symbols[start + i] == symbol { return i }
        return nil
    }

    init(nodes: [AvroNode], root: Int) {
        var builder = AvroProgramBuilder(writer: nodes, reader: nodes)
        let r = builder.build(root, root, path: "root")
        program = AvroReadProgram(steps: builder.steps, root: r, writerNodes: nodes)
        var kinds: [AvroKind] = [], layouts: [AvroRecordLayout?] = [], nullBranch: [Int] = [], singleBranch: [Int] = [], singleBranchNode: [Int] = []
        var symbolStart: [Int] = [], symbolCount: [Int] = [], symbols: [String] = []
        for node in nodes {
            if case .enumeration(_, let list, _) = node {
                symbolStart.append(symbols.count)
                symbolCount.append(list.count)
                symbols += list
            } else {
                symbolStart.append(0)
                symbolCount.append(0)
            }
            var layout: AvroRecordLayout? = nil
            var null = -1, single = -1, singleNode = -1
            let kind: AvroKind
            switch node {
            case .null: kind = .null
            case .boolean: kind = .boolean
            case .int: kind = .int
            case .long: kind = .long
            case .float: kind = .float
            case .double: kind = .double
            case .bytes: kind = .bytes
            case .string: kind = .string
            case .record(let name, let fields, _):
                kind = .record
                layout = AvroRecordLayout(fullName: name.fullName, fields: fields)
            case .enumeration: kind = .enumeration
            case .array: kind = .array
            case .map: kind = .map
            case .fixed: kind = .fixed
            case .union(let branches):
                kind = .union
                let nonNull = branches.indices.filter { if case .null = nodes[branches[$0]] { return false } else { return true } }
                null = branches.firstIndex { if case .null = nodes[$0] { true } else { false } } ?? -1
                single = nonNull.count == 1 ? nonNull[0] : -1
                singleNode = single >= 0 ? branches[single] : -1
            }
            kinds.append(kind)
            layouts.append(layout)
            nullBranch.append(null)
            singleBranch.append(single)
            singleBranchNode.append(singleNode)
        }
        self.kinds = ownedBuffer(kinds)
        self.layouts = layouts
        self.nullBranch = ownedBuffer(nullBranch)
        self.singleBranch = ownedBuffer(singleBranch)
        self.singleBranchNode = ownedBuffer(singleBranchNode)
        self.symbolStart = ownedBuffer(symbolStart)
        self.symbolCount = ownedBuffer(symbolCount)
        self.symbols = ownedBuffer(symbols)
    }
}
