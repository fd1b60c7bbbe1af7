import EddyCore

/// An Avro logical type: an annotation on a primitive or fixed type
/// (Avro specification, "Logical Types"). Invalid annotations are ignored as the spec says.
public enum AvroLogicalType: Hashable, Sendable {
    /// `int`: days since the Unix epoch.
    case date
    /// `int`: milliseconds after midnight.
    case timeMillis
    /// `long`: microseconds after midnight.
    case timeMicros
    /// `long`: milliseconds since the Unix epoch (UTC).
    case timestampMillis
    /// `long`: microseconds since the Unix epoch (UTC).
    case timestampMicros
    /// `long`: local (zone-less) milliseconds.
    case localTimestampMillis
    /// `long`: local (zone-less) microseconds.
    case localTimestampMicros
    /// `bytes` or `fixed`: a two's-complement big-endian unscaled integer with this scale.
    case decimal(precision: Int, scale: Int)
    /// `string` (or `fixed(16)`): an RFC 4122 UUID.
    case uuid
    /// `fixed(12)`: months, days, milliseconds as three little-endian unsigned ints.
    case duration

    var name: String {
        switch self {
        case .date: "date"
        case .timeMillis: "time-millis"
        case .timeMicros: "time-micros"
        case .timestampMillis: "timestamp-millis"
        case .timestampMicros: "timestamp-micros"
        case .localTimestampMillis: "local-timestamp-millis"
        case .localTimestampMicros: "local-timestamp-micros"
        case .decimal: "decimal"
        case .uuid: "uuid"
        case .duration: "duration"
        }
    }
}

/// The sort order of a record field (used by Avro's sort, kept for canonical identity).
enum AvroFieldOrder: String, Hashable, Sendable { case ascending, descending, ignore }

/// One field of a record schema.
struct AvroField: Hashable, Sendable {
    var name: String
    var type: Int
    var defaultValue: AvroValue?
    /// The default as written, for the normalized form.
    var defaultJSON: JSONValue?
    var aliases: [String]
    var order: AvroFieldOrder
}

/// A named type's name.
struct AvroName: Hashable, Sendable {
    var fullName: String
    var aliases: [String]
    var simpleName: Substring { fullName.split(separator: ".").last ?? Substring(fullName) }
    var namespace: String {
        guard let dot = fullName.lastIndex(of: ".") else { return "" }
        return String(fullName[..<dot])
    }
}

/// One node of a parsed schema; children are indices into ``AvroSchema/nodes``, so recursive
/// named types are plain cycles of indices (no reference cycles, value semantics).
enum AvroNode: Hashable, Sendable {
    case null
    case boolean
    case int(AvroLogicalType?)
    case long(AvroLogicalType?)
    case float
    case double
    case bytes(AvroLogicalType?)
    case string(AvroLogicalType?)
    case record(AvroName, fields: [AvroField], isError: Bool)
    case enumeration(AvroName, symbols: [String], defaultSymbol: String?)
    case array(items: Int)
    case map(values: Int)
    case union(branches: [Int])
    case fixed(AvroName, size: Int, logical: AvroLogicalType?)

    var kindName: String {
        switch self {
        case .null: "null"
        case .boolean: "boolean"
        case .int: "int"
        case .long: "long"
        case .float: "float"
        case .double: "double"
        case .bytes: "bytes"
        case .string: "string"
        case .record: "record"
        case .enumeration: "enum"
        case .array: "array"
        case .map: "map"
        case .union: "union"
        case .fixed: "fixed"
        }
    }

    var name: AvroName? {
        switch self {
        case .record(let n, _, _), .enumeration(let n, _, _), .fixed(let n, _, _): n
        default: nil
        }
    }
}

/// Limits on Avro schemas and data that come from outside.
public enum AvroLimits {
    /// Largest schema text accepted by ``AvroSchema/init(parsing:)``, 4 MiB.
    public static let maximumSchemaBytes = 4 * 1_048_576
    /// Most nodes (types) one schema may have.
    public static let maximumSchemaNodes = 100_000
    /// Deepest nesting of values decoded or encoded (recursive schemas); deeper data is refused
    /// with ``EddyError/Code/serialization`` instead of exhausting the stack.
    public static let maximumValueDepth = 200
    /// Most items one array or map block may announce.
    public static let maximumBlockItems = 16_777_216
}

/// A parsed Avro schema (Avro specification 1.11): records, enums, arrays, maps, unions, fixed,
/// named types with namespaces and aliases, defaults and logical types.
///
/// Parsing validates the whole schema: unknown type names, references to names not defined
/// earlier in the document, redefined names, invalid names, nested or duplicate union branches,
/// defaults that do not match their field's type, records that can only be infinite
/// (a field that refers back to its record with no union, array or map in between), all throw
/// ``EddyError/Code/invalidArgument`` with a message naming the place.
///
/// A schema is an immutable value, safe to share between threads. Parsing costs O(size of the text).
///
/// ```swift
/// let schema = try AvroSchema(parsing: #"{"type":"record","name":"User","fields":[{"name":"id","type":"long"}]}"#)
/// let bytes = try schema.encode(.record([.long(42)]))
/// ```
public struct AvroSchema: Hashable, Sendable, CustomStringConvertible {
    /// All types of the schema; `nodes[root]` is the top-level type.
    let nodes: [AvroNode]
    let root: Int
    /// Parsing Canonical Form (spec), computed at parse time.
    public let canonicalForm: String
    /// The registry's normalized form: canonical, but keeping defaults, logical types, aliases,
    /// field order attributes and enum defaults, which change how data is read.
    public let normalizedForm: String
    /// The compiled program that reads data written with this very schema.
    let programCache: AvroProgramCache

    public static func == (a: AvroSchema, b: AvroSchema) -> Bool { a.normalizedForm == b.normalizedForm }
    public func hash(into hasher: inout Hasher) { hasher.combine(normalizedForm) }

    /// The normalized form (a compact JSON text that parses back to an equal schema).
    public var description: String { normalizedForm }

    /// The 64-bit Rabin fingerprint (CRC-64-AVRO) of the Parsing Canonical Form, as the spec defines it.
    public var fingerprint: UInt64 { AvroSchema.rabinFingerprint(Array(canonicalForm.utf8)) }

    /// The full name of the top-level type when it is a record, enum or fixed, else nil.
    public var fullName: String? { nodes[root].name?.fullName }

    /// Parses a schema from its JSON text. See the type's documentation for what is refused.
    public init(parsing text: String) throws {
        try self.init(json: try AvroSchema.json(text, what: "Avro schema"))
    }

    /// Parses a schema that uses named types other schemas define (Confluent's schema references):
    /// each of `referencedSchemas` is parsed first, in order, and the records, enums and fixed
    /// types it defines can be used by name in the ones after it and in `text`. The result is
    /// self-contained: its ``canonicalForm`` and ``normalizedForm`` hold the referenced types
    /// inline where they are first used. Errors as ``init(parsing:)``, naming which text failed.
    public init(parsing text: String, referencedSchemas: [String]) throws {
        var referenced: [JSONValue] = []
        for (i, t) in referencedSchemas.enumerated() { referenced.append(try AvroSchema.json(t, what: "referenced Avro schema \(i + 1)")) }
        try self.init(json: try AvroSchema.json(text, what: "Avro schema"), referenced: referenced)
    }

    static func json(_ text: String, what: String) throws -> JSONValue {
        guard text.utf8.count <= AvroLimits.maximumSchemaBytes else {
            throw EddyError(.invalidArgument, "\(what) is \(text.utf8.count) bytes, over the limit of \(AvroLimits.maximumSchemaBytes) (AvroLimits.maximumSchemaBytes)")
        }
        do {
            return try JSONValue(parsing: text)
        } catch let error as EddyError {
            // A bare primitive name like `string` (without quotes) is not JSON; say so plainly.
            throw EddyError(.invalidArgument, "malformed \(what): \(error.message)")
        }
    }

    /// Parses a schema from an already parsed JSON value.
    public init(json: JSONValue) throws {
        try self.init(json: json, referenced: [])
    }

    init(json: JSONValue, referenced: [JSONValue]) throws {
        var parser = AvroSchemaParser()
        for (i, r) in referenced.enumerated() { _ = try parser.parse(r, namespace: "", path: "referenced schema \(i + 1)") }
        let root = try parser.parse(json, namespace: "", path: "schema")
        try parser.checkFinite()
        try parser.resolveDefaults()
        self.nodes = parser.nodes
        self.root = root
        self.canonicalForm = AvroCanonicalWriter(nodes: parser.nodes, normalized: false).write(root)
        self.normalizedForm = AvroCanonicalWriter(nodes: parser.nodes, normalized: true).write(root)
        self.programCache = AvroProgramCache(nodes: parser.nodes, root: root)
    }

    static let rabinTable: [UInt64] = {
        let empty: UInt64 = 0xc15d_213a_a4d7_a795
        return (0..<256).map { i -> UInt64 in
            var fp = UInt64(i)
            for _ in 0..<8 { fp = (fp >> 1) ^ (empty & (0 &- (fp & 1))) }
            return fp
        }
    }()

    static func rabinFingerprint(_ bytes: [UInt8]) -> UInt64 {
        var fp: UInt64 = 0xc15d_213a_a4d7_a795
        for b in bytes { fp = (fp >> 8) ^ rabinTable[Int((fp ^ UInt64(b)) & 0xff)] }
        return fp
    }
}

/// Builds ``AvroSchema/nodes`` from JSON.
struct AvroSchemaParser {
    var nodes: [AvroNode] = []
    var named: [String: Int] = [:]
    /// Fields whose default JSON is checked after all types are known (node, field index, path).
    var pendingDefaults: [(Int, Int, String)] = []

    static let primitiveNames: Set<String> = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"]

    func fail(_ path: String, _ what: String) -> EddyError {
        EddyError(.invalidArgument, "invalid Avro schema at \(path): \(what)")
    }

    mutating func add(_ node: AvroNode) throws -> Int {
        guard nodes.count < AvroLimits.maximumSchemaNodes else {
            throw EddyError(.invalidArgument, "Avro schema has more than \(AvroLimits.maximumSchemaNodes) types (AvroLimits.maximumSchemaNodes)")
        }
        nodes.append(node)
        return nodes.count - 1
    }

    static func isValidName(_ s: Substring) -> Bool {
        guard let first = s.utf8.first, first == UInt8(ascii: "_") || (first | 0x20 >= UInt8(ascii: "a") && first | 0x20 <= UInt8(ascii: "z")) else { return false }
        return s.utf8.allSatisfy { c in
            c == UInt8(ascii: "_") || (c >= 0x30 && c <= 0x39) || (c | 0x20 >= UInt8(ascii: "a") && c | 0x20 <= UInt8(ascii: "z"))
        }
    }

    func fullName(_ name: String, namespace: String, path: String) throws -> String {
        let full = name.contains(".") || namespace.isEmpty ? name : namespace + "." + name
        let parts = full.split(separator: ".", omittingEmptySubsequences: false)
        for part in parts where !AvroSchemaParser.isValidName(part) {
            throw fail(path, "invalid name \"\(full)\" (each part must match [A-Za-z_][A-Za-z0-9_]*)")
        }
        return full
    }

    func lookup(_ name: String, namespace: String) -> Int? {
        if !name.contains("."), !namespace.isEmpty, let i = named[namespace + "." + name] { return i }
        return named[name]
    }

    static func logical(_ object: JSONValue, base: String, path: String) -> AvroLogicalType? {
        guard let name = object["logicalType"]?.stringValue else { return nil }
        switch (name, base) {
        case ("date", "int"): return .date
        case ("time-millis", "int"): return .timeMillis
        case ("time-micros", "long"): return .timeMicros
        case ("timestamp-millis", "long"): return .timestampMillis
        case ("timestamp-micros", "long"): return .timestampMicros
        case ("local-timestamp-millis", "long"): return .localTimestampMillis
        case ("local-timestamp-micros", "long"): return .localTimestampMicros
        case ("uuid", "string"): return .uuid
        case ("decimal", "bytes"):
            guard let precision = object["precision"]?.integerValue, precision > 0 else { return nil }
            let scale = object["scale"]?.integerValue ?? 0
            guard scale >= 0, scale <= precision else { return nil }
            return .decimal(precision: Int(precision), scale: Int(scale))
        default: return nil  // The spec: an invalid logical type is ignored.
        }
    }

    mutating func parse(_ json: JSONValue, namespace: String, path: String) throws -> Int {
        switch json {
        case .string(let name):
            switch name {
            case "null": return try add(.null)
            case "boolean": return try add(.boolean)
            case "int": return try add(.int(nil))
            case "long": return try add(.long(nil))
            case "float": return try add(.float)
            case "double": return try add(.double)
            case "bytes": return try add(.bytes(nil))
            case "string": return try add(.string(nil))
            default:
                if let index = lookup(name, namespace: namespace) { return index }
                throw fail(path, "unknown type \"\(name)\" (not a primitive type and no named type of that name is defined before this point)")
            }
        case .array(let branches):
            var indices: [Int] = []
            var seen: Set<String> = []
            for (i, branch) in branches.enumerated() {
                let index = try parse(branch, namespace: namespace, path: "\(path)[\(i)]")
                let node = nodes[index]
                if case .union = node { throw fail("\(path)[\(i)]", "a union may not immediately contain another union") }
                let key = node.name?.fullName ?? node.kindName
                if !seen.insert(key).inserted { throw fail("\(path)[\(i)]", "the union has two branches of type \(key)") }
                indices.append(index)
            }
            return try add(.union(branches: indices))
        case .object:
            guard let typeValue = json["type"] else { throw fail(path, "an object schema needs a \"type\" attribute") }
            guard case .string(let type) = typeValue else {
                // {"type": {...}} or {"type": [...]}: a wrapped type.
                return try parse(typeValue, namespace: namespace, path: path + ".type")
            }
            switch type {
            case "int", "long", "bytes", "string":
                let logical = AvroSchemaParser.logical(json, base: type, path: path)
                switch type {
                case "int": return try add(.int(logical))
                case "long": return try add(.long(logical))
                case "bytes": return try add(.bytes(logical))
                default: return try add(.string(logical))
                }
            case "null", "boolean", "float", "double":
                return try parse(.string(type), namespace: namespace, path: path)
            case "record", "error":
                return try parseRecord(json, namespace: namespace, path: path, isError: type == "error")
            case "enum":
                return try parseEnum(json, namespace: namespace, path: path)
            case "array":
                guard let items = json["items"] else { throw fail(path, "an array schema needs \"items\"") }
                let index = try add(.null)
                nodes[index] = .array(items: try parse(items, namespace: namespace, path: path + ".items"))
                return index
            case "map":
                guard let values = json["values"] else { throw fail(path, "a map schema needs \"values\"") }
                let index = try add(.null)
                nodes[index] = .map(values: try parse(values, namespace: namespace, path: path + ".values"))
                return index
            case "fixed":
                let (name, ns) = try declareName(json, namespace: namespace, path: path)
                guard let size = json["size"]?.integerValue, size >= 0, size <= Int64(Int32.max) else {
                    throw fail(path, "fixed \"\(name.fullName)\" needs a non-negative integer \"size\"")
                }
                _ = ns
                var logical: AvroLogicalType? = nil
                if let l = json["logicalType"]?.stringValue {
                    if l == "decimal", let precision = json["precision"]?.integerValue, precision > 0 {
                        let scale = json["scale"]?.integerValue ?? 0
                        // The largest precision `size` bytes can hold: floor(log10(2^(8*size-1) - 1)).
                        let maxPrecision = size > 0 ? Int64(Double(8 * size - 1) * 0.30102999566398120) : 0
                        if scale >= 0, scale <= precision, precision <= maxPrecision { logical = .decimal(precision: Int(precision), scale: Int(scale)) }
                    } else if l == "duration", size == 12 {
                        logical = .duration
                    } else if l == "uuid", size == 16 {
                        logical = .uuid
                    }
                }
                let index = try add(.fixed(name, size: Int(size), logical: logical))
                named[name.fullName] = index
                return index
            default:
                if let index = lookup(type, namespace: namespace) { return index }
                throw fail(path, "unknown type \"\(type)\"")
            }
        default:
            throw fail(path, "a schema must be a type name, an object or an array (union), not \(json)")
        }
    }

    /// Reads `name`, `namespace` and `aliases`; refuses a name defined twice.
    func declareName(_ json: JSONValue, namespace: String, path: String) throws -> (AvroName, String) {
        guard let name = json["name"]?.stringValue else { throw fail(path, "a named type needs a string \"name\"") }
        var ns = namespace
        if let explicit = json["namespace"] {
            guard case .string(let s) = explicit else { throw fail(path, "\"namespace\" must be a string") }
            ns = s
        }
        let full = try fullName(name, namespace: ns, path: path)
        if AvroSchemaParser.primitiveNames.contains(full) { throw fail(path, "\"\(full)\" is a primitive type name and cannot name a type") }
        if named[full] != nil { throw fail(path, "the name \"\(full)\" is defined twice") }
        let enclosing = full.contains(".") ? String(full[..<full.lastIndex(of: ".")!]) : ""
        var aliases: [String] = []
        if let a = json["aliases"] {
            guard let list = a.arrayValue else { throw fail(path, "\"aliases\" must be an array of names") }
            for alias in list {
                guard let s = alias.stringValue else { throw fail(path, "\"aliases\" must be an array of names") }
                aliases.append(try fullName(s, namespace: enclosing, path: path + ".aliases"))
            }
        }
        return (AvroName(fullName: full, aliases: aliases), enclosing)
    }

    mutating func parseRecord(_ json: JSONValue, namespace: String, path: String, isError: Bool) throws -> Int {
        let (name, ns) = try declareName(json, namespace: namespace, path: path)
        guard let fieldList = json["fields"]?.arrayValue else { throw fail(path, "record \"\(name.fullName)\" needs a \"fields\" array") }
        // Registered before its fields are parsed, so fields may refer to the record itself.
        let index = try add(.record(name, fields: [], isError: isError))
        named[name.fullName] = index
        var fields: [AvroField] = []
        var seen: Set<String> = []
        for (i, fieldJSON) in fieldList.enumerated() {
            let fieldPath = "\(path).fields[\(i)]"
            guard case .object = fieldJSON, let fieldName = fieldJSON["name"]?.stringValue else {
                throw fail(fieldPath, "a field must be an object with a string \"name\"")
            }
            guard AvroSchemaParser.isValidName(Substring(fieldName)) else { throw fail(fieldPath, "invalid field name \"\(fieldName)\"") }
            guard seen.insert(fieldName).inserted else { throw fail(fieldPath, "record \"\(name.fullName)\" has two fields named \"\(fieldName)\"") }
            guard let typeJSON = fieldJSON["type"] else { throw fail(fieldPath, "field \"\(fieldName)\" needs a \"type\"") }
            let type = try parse(typeJSON, namespace: ns, path: "\(path).\(fieldName)")
            var aliases: [String] = []
            if let a = fieldJSON["aliases"] {
                guard let list = a.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else { throw fail(fieldPath, "\"aliases\" must be an array of names") }
                aliases = list.compactMap(\.stringValue)
            }
            var order = AvroFieldOrder.ascending
            if let o = fieldJSON["order"] {
                guard let s = o.stringValue, let parsed = AvroFieldOrder(rawValue: s) else { throw fail(fieldPath, "\"order\" must be ascending, descending or ignore") }
                order = parsed
            }
            fields.append(AvroField(name: fieldName, type: type, defaultValue: nil, defaultJSON: fieldJSON["default"], aliases: aliases, order: order))
            if fieldJSON["default"] != nil { pendingDefaults.append((index, fields.count - 1, "\(path).\(fieldName)")) }
        }
        nodes[index] = .record(name, fields: fields, isError: isError)
        return index
    }

    mutating func parseEnum(_ json: JSONValue, namespace: String, path: String) throws -> Int {
        let (name, _) = try declareName(json, namespace: namespace, path: path)
        guard let list = json["symbols"]?.arrayValue else { throw fail(path, "enum \"\(name.fullName)\" needs a \"symbols\" array") }
        var symbols: [String] = []
        for s in list {
            guard let symbol = s.stringValue, AvroSchemaParser.isValidName(Substring(symbol)) else {
                throw fail(path, "enum \"\(name.fullName)\" has an invalid symbol \(s)")
            }
            guard !symbols.contains(symbol) else { throw fail(path, "enum \"\(name.fullName)\" lists the symbol \"\(symbol)\" twice") }
            symbols.append(symbol)
        }
        var defaultSymbol: String? = nil
        if let d = json["default"] {
            guard let s = d.stringValue, symbols.contains(s) else { throw fail(path, "enum \"\(name.fullName)\" has a default \(d) that is not one of its symbols") }
            defaultSymbol = s
        }
        let index = try add(.enumeration(name, symbols: symbols, defaultSymbol: defaultSymbol))
        named[name.fullName] = index
        return index
    }

    /// Refuses records that have no finite value (every path through them leads back to them).
    func checkFinite() throws {
        var finite = [Bool](repeating: false, count: nodes.count)
        var changed = true
        while changed {
            changed = false
            for (i, node) in nodes.enumerated() where !finite[i] {
                let value: Bool
                switch node {
                case .record(_, let fields, _): value = fields.allSatisfy { finite[$0.type] }
                case .union(let branches): value = branches.contains { finite[$0] }
                default: value = true
                }
                if value { finite[i] = true; changed = true }
            }
        }
        for (i, node) in nodes.enumerated() where !finite[i] {
            if case .record(let name, _, _) = node {
                throw EddyError(.invalidArgument, "invalid Avro schema: record \"\(name.fullName)\" refers to itself with no union, array or map in between, so no value of it can be finite")
            }
        }
    }

    /// Converts every field default from JSON to a value of the field's type.
    mutating func resolveDefaults() throws {
        for (node, field, path) in pendingDefaults {
            guard case .record(let name, var fields, let isError) = nodes[node] else { continue }
            let json = fields[field].defaultJSON!
            do {
                fields[field].defaultValue = try AvroValue.fromDefault(json, node: fields[field].type, nodes: nodes, depth: 0)
            } catch let error as EddyError {
                throw fail(path, "the default \(json) does not match the field's type: \(error.message)")
            }
            nodes[node] = .record(name, fields: fields, isError: isError)
        }
    }
}

/// Writes the Parsing Canonical Form (spec, "Parsing Canonical Form for Schemas") or, with
/// `normalized`, the same plus the attributes that change how data is read.
struct AvroCanonicalWriter {
    let nodes: [AvroNode]
    let normalized: Bool

    func write(_ root: Int) -> String {
        var out = ""
        var written: Set<Int> = []
        write(root, into: &out, written: &written)
        return out
    }

    private func write(_ index: Int, into out: inout String, written: inout Set<Int>) {
        func str(_ s: String) { JSONValue.writeString(s, to: &out) }
        func primitive(_ name: String, _ logical: AvroLogicalType?) {
            if normalized, let logical {
                out += "{\"type\":"; str(name)
                out += ",\"logicalType\":"; str(logical.name)
                if case .decimal(let p, let s) = logical { out += ",\"precision\":\(p),\"scale\":\(s)" }
                out += "}"
            } else {
                str(name)
            }
        }
        func aliases(_ list: [String]) {
            guard normalized, !list.isEmpty else { return }
            out += ",\"aliases\":["
            out += list.map { a -> String in var s = ""; JSONValue.writeString(a, to: &s); return s }.joined(separator: ",")
            out += "]"
        }
        let node = nodes[index]
        if let name = node.name {
            if written.contains(index) { str(name.fullName); return }
            written.insert(index)
        }
        switch node {
        case .null: str("null")
        case .boolean: str("boolean")
        case .int(let l): primitive("int", l)
        case .long(let l): primitive("long", l)
        case .float: str("float")
        case .double: str("double")
        case .bytes(let l): primitive("bytes", l)
        case .string(let l): primitive("string", l)
        case .record(let name, let fields, let isError):
            out += "{\"name\":"; str(name.fullName)
            out += ",\"type\":"; str(isError && normalized ? "error" : "record")
            aliases(name.aliases)
            out += ",\"fields\":["
            for (i, field) in fields.enumerated() {
                if i > 0 { out += "," }
                out += "{\"name\":"; str(field.name)
                out += ",\"type\":"
                write(field.type, into: &out, written: &written)
                if normalized {
                    if let d = field.defaultJSON { out += ",\"default\":"; d.write(to: &out) }
                    aliases(field.aliases)
                    if field.order != .ascending { out += ",\"order\":"; str(field.order.rawValue) }
                }
                out += "}"
            }
            out += "]}"
        case .enumeration(let name, let symbols, let defaultSymbol):
            out += "{\"name\":"; str(name.fullName)
            out += ",\"type\":\"enum\""
            aliases(name.aliases)
            out += ",\"symbols\":["
            for (i, s) in symbols.enumerated() {
                if i > 0 { out += "," }
                str(s)
            }
            out += "]"
            if normalized, let d = defaultSymbol { out += ",\"default\":"; str(d) }
            out += "}"
        case .array(let items):
            out += "{\"type\":\"array\",\"items\":"
            write(items, into: &out, written: &written)
            out += "}"
        case .map(let values):
            out += "{\"type\":\"map\",\"values\":"
            write(values, into: &out, written: &written)
            out += "}"
        case .union(let branches):
            out += "["
            for (i, b) in branches.enumerated() {
                if i > 0 { out += "," }
                write(b, into: &out, written: &written)
            }
            out += "]"
        case .fixed(let name, let size, let logical):
            out += "{\"name\":"; str(name.fullName)
            out += ",\"type\":\"fixed\""
            aliases(name.aliases)
            out += ",\"size\":\(size)"
            if normalized, let logical {
                out += ",\"logicalType\":"; str(logical.name)
                if case .decimal(let p, let s) = logical { out += ",\"precision\":\(p),\"scale\":\(s)" }
            }
            out += "}"
        }
    }
}
