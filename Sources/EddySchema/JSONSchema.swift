import EddyCore
import Foundation

/// One way a JSON value breaks a JSON Schema: where in the value, and which keyword.
public struct JSONSchemaViolation: Hashable, Sendable, CustomStringConvertible {
    /// JSON Pointer to the offending part of the value (`""` for the whole value, `/tags/2`).
    public var instancePath: String
    /// The schema keyword that failed (`type`, `required`, `maximum`, …).
    public var keyword: String
    public var message: String
    public var description: String { "\(instancePath.isEmpty ? "/" : instancePath): \(keyword): \(message)" }
}

/// Limits on JSON Schema documents and validation.
public enum JSONSchemaLimits {
    /// Deepest chain of nested subschemas and `$ref`s followed while validating one value;
    /// deeper (or endlessly self-referencing) schemas fail with a violation, never a crash.
    public static let maximumValidationDepth = 256
}

/// A JSON Schema (draft-07 or 2020-12), ready to validate values.
///
/// Supported keywords: `type`, `properties`, `patternProperties`, `required`,
/// `additionalProperties`, `minProperties`/`maxProperties`, `enum`, `const`, `minimum`,
/// `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`, `minLength`, `maxLength`,
/// `pattern`, `format` (`date-time`, `date`, `time`, `email`, `uuid`), `items`, `prefixItems`
/// (2020-12) or array-form `items` with `additionalItems` (draft-07), `minItems`, `maxItems`,
/// `uniqueItems`, `oneOf`, `anyOf`, `allOf`, `not`, `if`/`then`/`else`, and `$ref` to a place in
/// the same document (`#`, `#/definitions/…`, `#/$defs/…`, any JSON Pointer, or a `$anchor`).
/// The draft is taken from `$schema` (2020-12 when it names 2019-09 or 2020-12, else draft-07).
///
/// Parsing refuses (``EddyError/Code/invalidArgument``) malformed JSON, a schema that is not an
/// object or boolean, an invalid `pattern` regular expression and a `$ref` that does not resolve
/// inside the document. A schema is immutable and safe to share between threads.
///
/// ```swift
/// let schema = try JSONSchema(parsing: #"{"type":"object","required":["id"]}"#)
/// let problems = schema.validate(try JSONValue(parsing: #"{"name":"x"}"#))   // one `required` violation
/// ```
public struct JSONSchema: Hashable, Sendable {
    /// Which specification the document follows.
    public enum Draft: String, Hashable, Sendable { case draft07 = "draft-07", draft2020_12 = "2020-12" }

    public let root: JSONValue
    public let draft: Draft
    /// The document as compact JSON text (the registry's identity for it).
    public let canonicalText: String
    let regexes: RegexCache
    let anchors: [String: JSONValue]
    /// Documents `$ref`s may name by URL (schema references), each validating with its own
    /// anchors, patterns and further documents.
    let referencedDocuments: [String: JSONSchema]

    public static func == (a: JSONSchema, b: JSONSchema) -> Bool { a.root == b.root }
    public func hash(into hasher: inout Hasher) { hasher.combine(root) }

    /// The top-level `title`, used as the record name by the record-name subject strategies.
    public var title: String? { root["title"]?.stringValue }

    /// Parses and checks a schema document.
    public init(parsing text: String) throws {
        let json: JSONValue
        do {
            json = try JSONValue(parsing: text)
        } catch let error as EddyError {
            throw EddyError(.invalidArgument, "malformed JSON Schema: \(error.message)")
        }
        try self.init(json: json)
    }

    /// Parses a schema whose `$ref`s may also name other documents (Confluent's schema
    /// references): a `$ref` of `"address.json"` or `"address.json#/$defs/zip"` resolves in
    /// `referencedDocuments["address.json"]`. Errors as ``init(parsing:)``; a `$ref` naming no
    /// given document is refused.
    public init(parsing text: String, referencedDocuments: [String: JSONSchema]) throws {
        let json: JSONValue
        do {
            json = try JSONValue(parsing: text)
        } catch let error as EddyError {
            throw EddyError(.invalidArgument, "malformed JSON Schema: \(error.message)")
        }
        try self.init(json: json, referencedDocuments: referencedDocuments)
    }

    /// Checks a schema document already parsed as JSON.
    public init(json: JSONValue) throws {
        try self.init(json: json, referencedDocuments: [:])
    }

    /// Checks a schema document already parsed as JSON, with the documents its `$ref`s may name.
    public init(json: JSONValue, referencedDocuments: [String: JSONSchema]) throws {
        switch json {
        case .object, .bool: break
        default: throw EddyError(.invalidArgument, "a JSON Schema must be an object or a boolean, not \(json)")
        }
        root = json
        let dialect = json["$schema"]?.stringValue ?? ""
        draft = dialect.contains("2020-12") || dialect.contains("2019-09") ? .draft2020_12 : .draft07
        canonicalText = json.description
        var patterns: [String: NSRegularExpression] = [:]
        var anchors: [String: JSONValue] = [:]
        var refs: [String] = []
        try JSONSchema.scan(json, patterns: &patterns, anchors: &anchors, refs: &refs, path: "#", depth: 0)
        regexes = RegexCache(patterns)
        self.anchors = anchors
        self.referencedDocuments = referencedDocuments
        for ref in refs where JSONSchema.resolve(ref, root: json, anchors: anchors) == nil && JSONSchema.external(ref, in: referencedDocuments) == nil {
            if ref.hasPrefix("#") || referencedDocuments.isEmpty {
                throw EddyError(.invalidArgument, "invalid JSON Schema: $ref \"\(ref)\" does not resolve inside the document (references to other documents need schema references)")
            }
            throw EddyError(.invalidArgument, "invalid JSON Schema: $ref \"\(ref)\" resolves neither inside the document nor in a referenced one (\(referencedDocuments.keys.sorted().joined(separator: ", ")))")
        }
    }

    /// A `$ref` to another document: that document and the subschema the fragment names.
    static func external(_ ref: String, in documents: [String: JSONSchema]) -> (document: JSONSchema, target: JSONValue)? {
        guard !ref.hasPrefix("#"), !documents.isEmpty else { return nil }
        let hash = ref.firstIndex(of: "#")
        let url = hash.map { String(ref[..<$0]) } ?? ref
        guard let document = documents[url] else { return nil }
        let fragment = hash.map { String(ref[$0...]) } ?? "#"
        guard let target = resolve(fragment, root: document.root, anchors: document.anchors) else { return nil }
        return (document, target)
    }

    /// Walks the document: compiles patterns, collects anchors and references.
    static func scan(_ node: JSONValue, patterns: inout [String: NSRegularExpression], anchors: inout [String: JSONValue],
                     refs: inout [String], path: String, depth: Int) throws {
        guard depth < JSONValue.maximumDepth else { return }
        switch node {
        case .object(let members):
            for (key, value) in members {
                switch key {
                case "pattern":
                    guard let p = value.stringValue else { throw EddyError(.invalidArgument, "invalid JSON Schema at \(path): \"pattern\" must be a string") }
                    try compile(p, into: &patterns, path: path)
                case "patternProperties":
                    for (p, _) in value.objectValue ?? [] { try compile(p, into: &patterns, path: path) }
                case "$ref":
                    guard let r = value.stringValue else { throw EddyError(.invalidArgument, "invalid JSON Schema at \(path): \"$ref\" must be a string") }
                    refs.append(r)
                case "$anchor":
                    if let a = value.stringValue { anchors[a] = node }
                case "type":
                    let names = value.stringValue.map { [$0] } ?? value.arrayValue?.compactMap(\.stringValue) ?? []
                    for n in names where !["null", "boolean", "object", "array", "number", "integer", "string"].contains(n) {
                        throw EddyError(.invalidArgument, "invalid JSON Schema at \(path): unknown type \"\(n)\"")
                    }
                    if value.stringValue == nil, value.arrayValue == nil {
                        throw EddyError(.invalidArgument, "invalid JSON Schema at \(path): \"type\" must be a string or an array of strings")
                    }
                case "enum", "const", "default", "examples":
                    continue  // Values, not subschemas.
                default: break
                }
                try scan(value, patterns: &patterns, anchors: &anchors, refs: &refs, path: path + "/" + key, depth: depth + 1)
            }
        case .array(let list):
            for (i, v) in list.enumerated() { try scan(v, patterns: &patterns, anchors: &anchors, refs: &refs, path: path + "/\(i)", depth: depth + 1) }
        default: break
        }
    }

    static func compile(_ pattern: String, into patterns: inout [String: NSRegularExpression], path: String) throws {
        guard patterns[pattern] == nil else { return }
        do {
            patterns[pattern] = try NSRegularExpression(pattern: pattern)
        } catch {
            throw EddyError(.invalidArgument, "invalid JSON Schema at \(path): the pattern \"\(pattern)\" is not a valid regular expression")
        }
    }

    /// Resolves `#`, `#/json/pointer` and `#anchor` within the document.
    static func resolve(_ ref: String, root: JSONValue, anchors: [String: JSONValue]) -> JSONValue? {
        guard ref.hasPrefix("#") else { return nil }
        let fragment = ref.dropFirst()
        if fragment.isEmpty { return root }
        guard fragment.hasPrefix("/") else { return anchors[String(fragment)] }
        var node = root
        for raw in fragment.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            let token = (raw.removingPercentEncoding ?? String(raw)).replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            switch node {
            case .object: guard let next = node[token] else { return nil }; node = next
            case .array(let list): guard let i = Int(token), i >= 0, i < list.count else { return nil }; node = list[i]
            default: return nil
            }
        }
        return node
    }

    /// Every way `value` breaks the schema (empty: valid). Costs O(size of value × schema);
    /// `oneOf`/`anyOf` try each branch.
    public func validate(_ value: JSONValue) -> [JSONSchemaViolation] {
        var violations: [JSONSchemaViolation] = []
        validate(value, against: root, path: "", depth: 0, into: &violations)
        return violations
    }

    /// Whether `value` is valid.
    public func isValid(_ value: JSONValue) -> Bool { validate(value).isEmpty }

    static func pointerEscape(_ s: String) -> String {
        s.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }

    static func typeName(_ v: JSONValue) -> String {
        switch v {
        case .null: "null"
        case .bool: "boolean"
        case .integer: "integer"
        case .number(let d): d.rounded() == d && d.isFinite ? "integer" : "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    static func isType(_ v: JSONValue, _ name: String) -> Bool {
        let actual = typeName(v)
        return actual == name || (name == "number" && actual == "integer")
    }

    func validate(_ value: JSONValue, against schema: JSONValue, path: String, depth: Int, into out: inout [JSONSchemaViolation]) {
        func fail(_ keyword: String, _ message: String) { out.append(JSONSchemaViolation(instancePath: path, keyword: keyword, message: message)) }
        guard depth < JSONSchemaLimits.maximumValidationDepth else {
            fail("$ref", "the schema nests (or refers to itself) deeper than \(JSONSchemaLimits.maximumValidationDepth) levels (JSONSchemaLimits.maximumValidationDepth)")
            return
        }
        switch schema {
        case .bool(let b):
            if !b { fail("false", "no value is allowed here") }
            return
        case .object: break
        default: return
        }
        func sub(_ v: JSONValue, _ s: JSONValue, _ p: String) -> [JSONSchemaViolation] {
            var list: [JSONSchemaViolation] = []
            validate(v, against: s, path: p, depth: depth + 1, into: &list)
            return list
        }
        if let ref = schema["$ref"]?.stringValue {
            if let target = JSONSchema.resolve(ref, root: root, anchors: anchors) {
                validate(value, against: target, path: path, depth: depth + 1, into: &out)
            } else if let (document, target) = JSONSchema.external(ref, in: referencedDocuments) {
                // The other document validates with its own anchors, patterns and references.
                document.validate(value, against: target, path: path, depth: depth + 1, into: &out)
            }
            // In draft-07 $ref overrides its siblings; in 2020-12 they apply too.
            if draft == .draft07 { return }
        }
        if let type = schema["type"] {
            let names = type.stringValue.map { [$0] } ?? type.arrayValue?.compactMap(\.stringValue) ?? []
            if !names.contains(where: { JSONSchema.isType(value, $0) }) {
                fail("type", "expected \(names.joined(separator: " or ")), found \(JSONSchema.typeName(value))")
            }
        }
        if let list = schema["enum"]?.arrayValue, !list.contains(value) {
            fail("enum", "\(value) is not one of \(JSONValue.array(list))")
        }
        if let c = schema["const"], c != value { fail("const", "\(value) is not \(c)") }

        if let x = value.doubleValue {
            if let m = schema["minimum"]?.doubleValue, x < m { fail("minimum", "\(x) is less than \(m)") }
            if let m = schema["maximum"]?.doubleValue, x > m { fail("maximum", "\(x) is greater than \(m)") }
            if let m = schema["exclusiveMinimum"]?.doubleValue, x <= m { fail("exclusiveMinimum", "\(x) is not greater than \(m)") }
            if let m = schema["exclusiveMaximum"]?.doubleValue, x >= m { fail("exclusiveMaximum", "\(x) is not less than \(m)") }
            // draft-04 style boolean exclusive bounds, still seen in draft-07 documents.
            if schema["exclusiveMinimum"]?.boolValue == true, let m = schema["minimum"]?.doubleValue, x == m { fail("exclusiveMinimum", "\(x) equals the exclusive minimum") }
            if schema["exclusiveMaximum"]?.boolValue == true, let m = schema["maximum"]?.doubleValue, x == m { fail("exclusiveMaximum", "\(x) equals the exclusive maximum") }
            if let m = schema["multipleOf"]?.doubleValue, m > 0 {
                let q = x / m
                if q.isFinite, abs(q - q.rounded()) > 1e-9 { fail("multipleOf", "\(x) is not a multiple of \(m)") }
            }
        }
        if case .string(let s) = value {
            let length = s.unicodeScalars.count
            if let m = schema["minLength"]?.integerValue, length < m { fail("minLength", "the string has \(length) characters, fewer than \(m)") }
            if let m = schema["maxLength"]?.integerValue, length > m { fail("maxLength", "the string has \(length) characters, more than \(m)") }
            if let p = schema["pattern"]?.stringValue, !regexes.matches(p, s) { fail("pattern", "\"\(s)\" does not match \(p)") }
            if let f = schema["format"]?.stringValue, !JSONSchema.checkFormat(f, s) { fail("format", "\"\(s)\" is not a valid \(f)") }
        }
        if case .array(let items) = value {
            if let m = schema["minItems"]?.integerValue, items.count < m { fail("minItems", "the array has \(items.count) items, fewer than \(m)") }
            if let m = schema["maxItems"]?.integerValue, items.count > m { fail("maxItems", "the array has \(items.count) items, more than \(m)") }
            if schema["uniqueItems"]?.boolValue == true, Set(items).count != items.count { fail("uniqueItems", "the array has duplicate items") }
            var prefix: [JSONValue] = []
            var rest: JSONValue? = nil
            if draft == .draft2020_12 {
                prefix = schema["prefixItems"]?.arrayValue ?? []
                rest = schema["items"]
            } else if let tuple = schema["items"]?.arrayValue {
                prefix = tuple
                rest = schema["additionalItems"]
            } else {
                prefix = schema["prefixItems"]?.arrayValue ?? []
                rest = schema["items"]
            }
            for (i, item) in items.enumerated() {
                if i < prefix.count {
                    out += sub(item, prefix[i], path + "/\(i)")
                } else if let rest {
                    out += sub(item, rest, path + "/\(i)")
                }
            }
            if let c = schema["contains"], !items.contains(where: { sub($0, c, path).isEmpty }) { fail("contains", "no item matches the `contains` schema") }
        }
        if case .object(let members) = value {
            if let m = schema["minProperties"]?.integerValue, members.count < m { fail("minProperties", "the object has \(members.count) properties, fewer than \(m)") }
            if let m = schema["maxProperties"]?.integerValue, members.count > m { fail("maxProperties", "the object has \(members.count) properties, more than \(m)") }
            for name in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where value[name] == nil {
                fail("required", "the required property \"\(name)\" is missing")
            }
            let properties = schema["properties"]?.objectValue ?? []
            let patternProperties = schema["patternProperties"]?.objectValue ?? []
            for (name, v) in members {
                let p = path + "/" + JSONSchema.pointerEscape(name)
                var matched = false
                if let s = properties.first(where: { $0.0 == name })?.1 {
                    matched = true
                    out += sub(v, s, p)
                }
                for (pattern, s) in patternProperties where regexes.matches(pattern, name) {
                    matched = true
                    out += sub(v, s, p)
                }
                if !matched, let additional = schema["additionalProperties"] {
                    if additional == .bool(false) {
                        out.append(JSONSchemaViolation(instancePath: p, keyword: "additionalProperties", message: "the property \"\(name)\" is not allowed"))
                    } else {
                        out += sub(v, additional, p)
                    }
                }
            }
        }
        if let all = schema["allOf"]?.arrayValue {
            for s in all { out += sub(value, s, path) }
        }
        if let any = schema["anyOf"]?.arrayValue, !any.contains(where: { sub(value, $0, path).isEmpty }) {
            fail("anyOf", "the value matches none of the \(any.count) `anyOf` schemas")
        }
        if let one = schema["oneOf"]?.arrayValue {
            let count = one.filter { sub(value, $0, path).isEmpty }.count
            if count != 1 { fail("oneOf", "the value matches \(count) of the `oneOf` schemas, not exactly one") }
        }
        if let not = schema["not"], sub(value, not, path).isEmpty { fail("not", "the value matches the `not` schema") }
        if let condition = schema["if"] {
            if sub(value, condition, path).isEmpty {
                if let then = schema["then"] { out += sub(value, then, path) }
            } else if let otherwise = schema["else"] {
                out += sub(value, otherwise, path)
            }
        }
    }

    static func checkFormat(_ format: String, _ s: String) -> Bool {
        func digits(_ t: Substring, _ n: Int) -> Int? { t.count == n && t.allSatisfy(\.isASCII) ? Int(t) : nil }
        func date(_ t: Substring) -> Bool {
            let parts = t.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 3, let y = digits(parts[0], 4), let m = digits(parts[1], 2), let d = digits(parts[2], 2), (1...12).contains(m) else { return false }
            let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
            let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
            return (1...days).contains(d)
        }
        func time(_ t: Substring) -> Bool {
            var rest = t
            // Offset: Z or ±hh:mm.
            if rest.last == "Z" || rest.last == "z" {
                rest = rest.dropLast()
            } else if let sign = rest.lastIndex(where: { $0 == "+" || $0 == "-" }) {
                let offset = rest[rest.index(after: sign)...].split(separator: ":", omittingEmptySubsequences: false)
                guard offset.count == 2, let oh = digits(offset[0], 2), let om = digits(offset[1], 2), oh < 24, om < 60 else { return false }
                rest = rest[..<sign]
            } else {
                return false
            }
            var main = rest
            if let dot = rest.firstIndex(of: ".") {
                let fraction = rest[rest.index(after: dot)...]
                guard !fraction.isEmpty, fraction.allSatisfy({ $0.isASCII && $0.isNumber }) else { return false }
                main = rest[..<dot]
            }
            let hms = main.split(separator: ":", omittingEmptySubsequences: false)
            guard hms.count == 3, let h = digits(hms[0], 2), let m = digits(hms[1], 2), let sec = digits(hms[2], 2) else { return false }
            return h < 24 && m < 60 && sec <= 60
        }
        switch format {
        case "date-time":
            guard let t = s.firstIndex(where: { $0 == "T" || $0 == "t" }) else { return false }
            return date(s[..<t]) && time(s[s.index(after: t)...])
        case "date": return date(Substring(s))
        case "time": return time(Substring(s))
        case "email":
            let parts = s.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, parts[0].count <= 64 else { return false }
            let domain = parts[1]
            guard !domain.hasPrefix("."), !domain.hasSuffix("."), !domain.contains(".."), !parts[0].hasPrefix("."), !parts[0].hasSuffix(".") else { return false }
            return !s.contains(where: { $0.isWhitespace }) && domain.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }
        case "uuid":
            let u = Array(s.utf8)
            guard u.count == 36 else { return false }
            for (i, c) in u.enumerated() {
                if [8, 13, 18, 23].contains(i) {
                    guard c == UInt8(ascii: "-") else { return false }
                } else {
                    let isHex = (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x66)
                    guard isHex else { return false }
                }
            }
            return true
        default:
            return true  // Unknown formats are annotations only, as both drafts allow.
        }
    }
}

/// Compiled `pattern` regular expressions of one schema.
final class RegexCache: Sendable {
    // NSRegularExpression is immutable after creation and safe to use from several threads.
    let patterns: [String: NSRegularExpression]
    init(_ patterns: [String: NSRegularExpression]) { self.patterns = patterns }

    func matches(_ pattern: String, _ s: String) -> Bool {
        guard let regex = patterns[pattern] else { return true }
        let range = NSRange(s.startIndex..<s.endIndex, in: s)
        return regex.firstMatch(in: s, options: [], range: range) != nil
    }
}
