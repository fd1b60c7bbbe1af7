import EddyCore

/// A generic Avro value, shaped by a schema it is read with or written against.
///
/// Records hold their field values in the schema's field order (no names: reading and writing
/// never hash field names); enums hold the symbol's index in the schema's symbol list; unions
/// hold the branch index and the branch's value. Logical types are carried by their underlying
/// type (a `timestamp-millis` is a `.long`, a `decimal` is `.bytes` or `.fixed`).
public indirect enum AvroValue: Hashable, Sendable {
    case null
    case boolean(Bool)
    case int(Int32)
    case long(Int64)
    case float(Float)
    case double(Double)
    case bytes([UInt8])
    case string(String)
    /// Field values in the schema's field order.
    case record([AvroValue])
    /// The index of the symbol in the schema's `symbols`.
    case enumeration(Int)
    case array([AvroValue])
    case map([String: AvroValue])
    /// The branch index in the union and the value of that branch.
    case union(Int, AvroValue)
    case fixed([UInt8])

    /// Converts a JSON default (Avro specification, "default values": bytes and fixed as strings
    /// of code points 0–255, unions by the first branch that accepts the value) to a value of `node`.
    static func fromDefault(_ json: JSONValue, node: Int, nodes: [AvroNode], depth: Int) throws -> AvroValue {
        guard depth < AvroLimits.maximumValueDepth else { throw EddyError(.invalidArgument, "default nested too deeply") }
        func mismatch() -> EddyError { EddyError(.invalidArgument, "expected a \(nodes[node].kindName), found \(json)") }
        func latin1(_ s: String) throws -> [UInt8] {
            try s.unicodeScalars.map { scalar in
                guard scalar.value < 256 else { throw EddyError(.invalidArgument, "bytes defaults must use code points 0-255") }
                return UInt8(scalar.value)
            }
        }
        switch nodes[node] {
        case .null:
            guard json == .null else { throw mismatch() }
            return .null
        case .boolean:
            guard let b = json.boolValue else { throw mismatch() }
            return .boolean(b)
        case .int:
            guard case .integer(let i) = json, let v = Int32(exactly: i) else { throw mismatch() }
            return .int(v)
        case .long:
            guard case .integer(let i) = json else { throw mismatch() }
            return .long(i)
        case .float:
            guard let d = json.doubleValue else { throw mismatch() }
            return .float(Float(d))
        case .double:
            guard let d = json.doubleValue else { throw mismatch() }
            return .double(d)
        case .bytes:
            guard let s = json.stringValue else { throw mismatch() }
            return .bytes(try latin1(s))
        case .string:
            guard let s = json.stringValue else { throw mismatch() }
            return .string(s)
        case .fixed(let name, let size, _):
            guard let s = json.stringValue else { throw mismatch() }
            let bytes = try latin1(s)
            guard bytes.count == size else { throw EddyError(.invalidArgument, "fixed \(name.fullName) needs \(size) bytes, the default has \(bytes.count)") }
            return .fixed(bytes)
        case .enumeration(let name, let symbols, _):
            guard let s = json.stringValue, let i = symbols.firstIndex(of: s) else {
                throw EddyError(.invalidArgument, "\(json) is not a symbol of enum \(name.fullName)")
            }
            return .enumeration(i)
        case .array(let items):
            guard let list = json.arrayValue else { throw mismatch() }
            return .array(try list.map { try fromDefault($0, node: items, nodes: nodes, depth: depth + 1) })
        case .map(let values):
            guard let members = json.objectValue else { throw mismatch() }
            var map: [String: AvroValue] = [:]
            for (k, v) in members { map[k] = try fromDefault(v, node: values, nodes: nodes, depth: depth + 1) }
            return .map(map)
        case .record(let name, let fields, _):
            guard json.objectValue != nil else { throw mismatch() }
            return .record(try fields.map { field in
                if let v = json[field.name] { return try fromDefault(v, node: field.type, nodes: nodes, depth: depth + 1) }
                if let d = field.defaultValue { return d }
                if let d = field.defaultJSON { return try fromDefault(d, node: field.type, nodes: nodes, depth: depth + 1) }
                throw EddyError(.invalidArgument, "record \(name.fullName) default lacks field \"\(field.name)\"")
            })
        case .union(let branches):
            var firstError: EddyError?
            for (i, b) in branches.enumerated() {
                do {
                    return .union(i, try fromDefault(json, node: b, nodes: nodes, depth: depth + 1))
                } catch let error as EddyError {
                    if firstError == nil { firstError = error }
                }
            }
            throw firstError ?? mismatch()
        }
    }
}

extension AvroSchema {
    /// Converts a JSON value to a value of this schema, reading it as Avro reads defaults
    /// (records as objects by field name, enums as symbol strings, bytes and fixed as strings of
    /// code points 0–255, unions as the first branch that accepts the value).
    /// Throws ``EddyError/Code/invalidArgument`` when the JSON does not fit the schema.
    public func value(fromJSON json: JSONValue) throws -> AvroValue {
        try AvroValue.fromDefault(json, node: root, nodes: nodes, depth: 0)
    }

    /// Converts a value of this schema to JSON, the inverse of ``value(fromJSON:)`` (unions are
    /// written as their branch's value, unwrapped). Throws ``EddyError/Code/serialization`` if the
    /// value does not match the schema.
    public func json(from value: AvroValue) throws -> JSONValue {
        try json(value, node: root, depth: 0)
    }

    func json(_ value: AvroValue, node: Int, depth: Int) throws -> JSONValue {
        guard depth < AvroLimits.maximumValueDepth else { throw EddyError(.serialization, "value nested deeper than \(AvroLimits.maximumValueDepth)") }
        func latin1(_ b: [UInt8]) -> JSONValue { .string(String(String.UnicodeScalarView(b.map { Unicode.Scalar($0) }))) }
        switch (nodes[node], value) {
        case (.null, .null): return .null
        case (.boolean, .boolean(let b)): return .bool(b)
        case (.int, .int(let i)): return .integer(Int64(i))
        case (.long, .long(let i)): return .integer(i)
        case (.float, .float(let f)): return .number(Double(f))
        case (.double, .double(let d)): return .number(d)
        case (.bytes, .bytes(let b)), (.fixed, .fixed(let b)): return latin1(b)
        case (.string, .string(let s)): return .string(s)
        case (.enumeration(_, let symbols, _), .enumeration(let i)) where i >= 0 && i < symbols.count: return .string(symbols[i])
        case (.array(let items), .array(let list)): return .array(try list.map { try json($0, node: items, depth: depth + 1) })
        case (.map(let values), .map(let map)):
            return .object(try map.sorted { $0.key < $1.key }.map { ($0.key, try json($0.value, node: values, depth: depth + 1)) })
        case (.record(_, let fields, _), .record(let list)) where list.count == fields.count:
            return .object(try zip(fields, list).map { ($0.name, try json($1, node: $0.type, depth: depth + 1)) })
        case (.union(let branches), .union(let i, let v)) where i >= 0 && i < branches.count:
            return try json(v, node: branches[i], depth: depth + 1)
        default:
            throw EddyError(.serialization, "value \(value) does not match Avro type \(nodes[node].kindName)")
        }
    }

    /// The names of the top-level record's fields in order (empty for other types).
    public var fieldNames: [String] {
        if case .record(_, let fields, _) = nodes[root] { return fields.map(\.name) }
        return []
    }
}
