import EddyCore

/// A `.proto` file (proto2 or proto3) parsed into its messages, fields and enums: enough to
/// register Protobuf schemas, compute Confluent's message indexes and check compatibility.
///
/// Understood: `syntax`, `package`, `import` (resolved against the files given to
/// ``init(parsing:imports:)``; the types of an import not given are taken on trust),
/// `option` (skipped), `message` (nested messages and enums, fields with `optional`/`required`/
/// `repeated` labels, `map<K, V>`, `oneof`, `reserved` numbers, ranges and names, `extensions`
/// skipped), `enum` (values, `reserved`), `service` (skipped). Comments `//` and `/* */`.
/// Refused with ``EddyError/Code/invalidArgument`` naming line and column: syntax errors,
/// unknown field types (not a scalar, not a message or enum defined in the file or in a given
/// import, not qualified as coming from an import that was not given), duplicate field numbers
/// or names, numbers out of range or in the 19000–19999 range Protobuf reserves, fields using a
/// number the message reserved.
///
/// Imports (Confluent's schema references, whose names are the import paths): the messages and
/// enums of an imported file, and of the files it imports with `import public`, can be used by
/// the importing file by their full names or relative to its scope, and take part in
/// compatibility checks (see ``ProtobufCompatibility``). The identity (``canonicalText``) is the
/// file's own text; the registry tells apart the same text with other references.
public struct ProtobufSchema: Hashable, Sendable {
    /// A field of a message.
    public struct Field: Hashable, Sendable {
        public enum Label: String, Hashable, Sendable { case optional, required, repeated, singular = "" }
        public var name: String
        public var number: Int
        public var label: Label
        /// A scalar name (`int32`, `string`, …), or the full name of a message or enum (no leading dot),
        /// or `map<K,V>`.
        public var type: String
        /// The `oneof` the field belongs to, if any.
        public var oneof: String?
    }

    /// A message type.
    public struct Message: Hashable, Sendable {
        public var fullName: String
        public var fields: [Field]
        public var reservedNumbers: [ClosedRange<Int>]
        public var reservedNames: [String]
        /// Nested messages, in order (for message indexes).
        public var nested: [Message]
        func isReserved(_ n: Int) -> Bool { reservedNumbers.contains { $0.contains(n) } }
    }

    /// An enum type.
    public struct Enumeration: Hashable, Sendable {
        public var fullName: String
        public var values: [String: Int]
    }

    public var syntax: String
    public var package: String
    public var imports: [String]
    /// The imports marked `import public` (re-exported to files that import this one).
    public var publicImports: [String]
    /// Messages (nested ones included) and enums the given imports define, by full name.
    public var importedMessages: [String: Message]
    public var importedEnums: [String: Enumeration]
    /// Top-level messages in order.
    public var messages: [Message]
    /// Every enum, nested or not, by full name.
    public var enums: [String: Enumeration]
    /// The normalized definition (the registry's identity for the schema).
    public let canonicalText: String

    /// The full name of the first top-level message (the record-name strategies' name).
    public var firstMessageFullName: String? { messages.first?.fullName }

    static let scalars: Set<String> = ["double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
                                       "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes"]

    /// Every message, nested ones included, by full name.
    public var allMessages: [String: Message] {
        var out: [String: Message] = [:]
        func walk(_ m: Message) {
            out[m.fullName] = m
            m.nested.forEach(walk)
        }
        messages.forEach(walk)
        return out
    }

    /// Confluent's message indexes for a message: its position at each nesting level
    /// (`[0]` for the first top-level message). Nil if the file has no such message.
    public func messageIndexes(of fullName: String) -> [Int]? {
        func search(_ list: [Message], _ prefix: [Int]) -> [Int]? {
            for (i, m) in list.enumerated() {
                if m.fullName == fullName { return prefix + [i] }
                if let found = search(m.nested, prefix + [i]) { return found }
            }
            return nil
        }
        return search(messages, [])
    }

    /// The message at `indexes` (Confluent's message-index path), nil if out of range.
    public func message(at indexes: [Int]) -> Message? {
        var list = messages
        var found: Message?
        for i in indexes {
            guard i >= 0, i < list.count else { return nil }
            found = list[i]
            list = list[i].nested
        }
        return found
    }

    public static func == (a: ProtobufSchema, b: ProtobufSchema) -> Bool { a.canonicalText == b.canonicalText }
    public func hash(into hasher: inout Hasher) { hasher.combine(canonicalText) }

    /// Every message this file can use: its own (nested included) and those of its imports.
    var visibleMessages: [String: Message] { allMessages.merging(importedMessages) { own, _ in own } }
    /// Every enum this file can use: its own and those of its imports.
    var visibleEnums: [String: Enumeration] { enums.merging(importedEnums) { own, _ in own } }

    /// What a file that imports this one sees of it: its own messages and enums, and what its
    /// public imports export.
    var exportedMessages: [String: Message] {
        var out = allMessages
        for path in publicImports { out.merge(reexportedMessages[path] ?? [:]) { own, _ in own } }
        return out
    }
    var exportedEnums: [String: Enumeration] {
        var out = enums
        for path in publicImports { out.merge(reexportedEnums[path] ?? [:]) { own, _ in own } }
        return out
    }
    /// Per given import path, what that file exports (for this file's public imports).
    private var reexportedMessages: [String: [String: Message]] = [:]
    private var reexportedEnums: [String: [String: Enumeration]] = [:]

    /// Parses `.proto` text. See the type's documentation for what is refused.
    public init(parsing text: String) throws {
        try self.init(parsing: text, imports: [:])
    }

    /// Parses `.proto` text whose `import`s are resolved in `imports`, parsed files by import
    /// path (the registry passes the schemas a version's references name). Imports missing from
    /// `imports` are taken on trust (qualified types from them are accepted unchecked, as for
    /// well-known types); given files that the text does not import are ignored. Errors as
    /// ``init(parsing:)``.
    public init(parsing text: String, imports importedFiles: [String: ProtobufSchema]) throws {
        var parser = ProtoParser(text: text)
        try parser.parseFile()
        syntax = parser.syntax
        package = parser.package
        imports = parser.imports
        publicImports = parser.publicImports
        messages = parser.messages
        enums = parser.enums
        importedMessages = [:]
        importedEnums = [:]
        for path in parser.imports {
            guard let file = importedFiles[path] else { continue }
            let (m, e) = (file.exportedMessages, file.exportedEnums)
            importedMessages.merge(m) { first, _ in first }
            importedEnums.merge(e) { first, _ in first }
            reexportedMessages[path] = m
            reexportedEnums[path] = e
        }
        var out = "syntax=\(parser.syntax);package=\(parser.package);"
        func render(_ m: Message) {
            out += "message \(m.fullName){"
            for f in m.fields.sorted(by: { $0.number < $1.number }) {
                out += "\(f.label.rawValue) \(f.type) \(f.name)=\(f.number)\(f.oneof.map { " oneof \($0)" } ?? "");"
            }
            if !m.reservedNumbers.isEmpty { out += "reserved " + m.reservedNumbers.map { "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",") + ";" }
            if !m.reservedNames.isEmpty { out += "reserved " + m.reservedNames.joined(separator: ",") + ";" }
            m.nested.forEach(render)
            out += "}"
        }
        parser.messages.forEach(render)
        for e in parser.enums.keys.sorted() {
            out += "enum \(e){" + parser.enums[e]!.values.sorted { ($0.value, $0.key) < ($1.value, $1.key) }.map { "\($0.key)=\($0.value);" }.joined() + "}"
        }
        canonicalText = out
        try validateTypes()
    }

    /// Resolves every field's type name against the messages and enums of the file and its imports.
    private mutating func validateTypes() throws {
        let known = Set(visibleMessages.keys).union(visibleEnums.keys)
        let trustsImports = imports.contains { path in reexportedMessages[path] == nil }
        func resolve(_ name: String, scope: String) -> String? {
            if name.hasPrefix(".") { return known.contains(String(name.dropFirst())) ? String(name.dropFirst()) : nil }
            var parts = scope.split(separator: ".").map(String.init)
            while true {
                let candidate = (parts + [name]).joined(separator: ".")
                if known.contains(candidate) { return candidate }
                if parts.isEmpty { return nil }
                parts.removeLast()
            }
        }
        func fix(_ m: inout Message) throws {
            for i in m.fields.indices {
                var types: [String] = [m.fields[i].type]
                var isMap = false
                if m.fields[i].type.hasPrefix("map<") {
                    isMap = true
                    let inner = m.fields[i].type.dropFirst(4).dropLast()
                    types = inner.split(separator: ",").map { String($0) }
                }
                var resolved: [String] = []
                for t in types {
                    if ProtobufSchema.scalars.contains(t) { resolved.append(t); continue }
                    if let r = resolve(t, scope: m.fullName) { resolved.append(r); continue }
                    // A qualified name from an import that was not given is taken on trust.
                    if trustsImports, t.contains(".") { resolved.append(t.hasPrefix(".") ? String(t.dropFirst()) : t); continue }
                    throw EddyError(.invalidArgument, "invalid Protobuf schema: field \"\(m.fields[i].name)\" of \(m.fullName) has unknown type \"\(t)\"")
                }
                m.fields[i].type = isMap ? "map<\(resolved.joined(separator: ","))>" : resolved[0]
            }
            for j in m.nested.indices { try fix(&m.nested[j]) }
        }
        for i in messages.indices { try fix(&messages[i]) }
    }
}

/// A tokenizer and recursive-descent parser for `.proto` files.
struct ProtoParser {
    enum Token: Equatable { case word(String), string(String), symbol(Character), end }
    let chars: [Character]
    var index = 0
    var line = 1
    var column = 1
    var syntax = "proto2"
    var package = ""
    var imports: [String] = []
    var publicImports: [String] = []
    var messages: [ProtobufSchema.Message] = []
    var enums: [String: ProtobufSchema.Enumeration] = [:]
    var peeked: Token?
    var depth = 0
    static let maximumNesting = 64

    init(text: String) { chars = Array(text) }

    func fail(_ what: String) -> EddyError {
        EddyError(.invalidArgument, "invalid Protobuf schema at line \(line), column \(column): \(what)")
    }

    mutating func advanceChar() {
        if chars[index] == "\n" { line += 1; column = 1 } else { column += 1 }
        index += 1
    }

    mutating func skipSpaceAndComments() throws {
        while index < chars.count {
            let c = chars[index]
            if c.isWhitespace { advanceChar(); continue }
            if c == "/", index + 1 < chars.count, chars[index + 1] == "/" {
                while index < chars.count, chars[index] != "\n" { advanceChar() }
                continue
            }
            if c == "/", index + 1 < chars.count, chars[index + 1] == "*" {
                advanceChar(); advanceChar()
                while index + 1 < chars.count, !(chars[index] == "*" && chars[index + 1] == "/") { advanceChar() }
                guard index + 1 < chars.count else { throw fail("unterminated comment") }
                advanceChar(); advanceChar()
                continue
            }
            return
        }
    }

    mutating func next() throws -> Token {
        if let p = peeked { peeked = nil; return p }
        try skipSpaceAndComments()
        guard index < chars.count else { return .end }
        let c = chars[index]
        if c == "\"" || c == "'" {
            advanceChar()
            var s = ""
            while index < chars.count, chars[index] != c {
                if chars[index] == "\\", index + 1 < chars.count { advanceChar() }
                s.append(chars[index])
                advanceChar()
            }
            guard index < chars.count else { throw fail("unterminated string") }
            advanceChar()
            return .string(s)
        }
        if c.isLetter || c.isNumber || c == "_" || c == "." || c == "-" || c == "+" {
            var s = ""
            while index < chars.count, chars[index].isLetter || chars[index].isNumber || chars[index] == "_" || chars[index] == "." || ((chars[index] == "-" || chars[index] == "+") && s.isEmpty) {
                s.append(chars[index])
                advanceChar()
            }
            return .word(s)
        }
        advanceChar()
        return .symbol(c)
    }

    mutating func peek() throws -> Token {
        if let p = peeked { return p }
        let t = try next()
        peeked = t
        return t
    }

    mutating func expect(_ symbol: Character) throws {
        let t = try next()
        guard t == .symbol(symbol) else { throw fail("expected '\(symbol)', found \(describe(t))") }
    }

    func describe(_ t: Token) -> String {
        switch t {
        case .word(let w): "'\(w)'"
        case .string(let s): "\"\(s)\""
        case .symbol(let c): "'\(c)'"
        case .end: "the end of the text"
        }
    }

    mutating func word() throws -> String {
        let t = try next()
        guard case .word(let w) = t else { throw fail("expected a name, found \(describe(t))") }
        return w
    }

    mutating func integer() throws -> Int {
        let w = try word()
        let value: Int?
        if w.lowercased().hasPrefix("0x") { value = Int(w.dropFirst(2), radix: 16) } else { value = Int(w) }
        guard let value else { throw fail("expected a number, found '\(w)'") }
        return value
    }

    /// Skips a statement up to `;` or a balanced `{…}` block.
    mutating func skipStatement() throws {
        var braces = 0
        while true {
            let t = try next()
            switch t {
            case .end: throw fail("unexpected end of the text")
            case .symbol("{"): braces += 1
            case .symbol("}"):
                braces -= 1
                if braces == 0 { return }
            case .symbol(";") where braces == 0: return
            default: break
            }
        }
    }

    mutating func parseFile() throws {
        var sawAnything = false
        while true {
            let t = try next()
            switch t {
            case .end:
                guard sawAnything else { throw fail("the schema is empty") }
                return
            case .word("syntax"), .word("edition"):
                try expect("=")
                guard case .string(let s) = try next() else { throw fail("expected a quoted syntax") }
                guard s == "proto2" || s == "proto3" else { throw fail("unsupported syntax \"\(s)\"") }
                syntax = s
                try expect(";")
            case .word("package"):
                package = try word()
                try expect(";")
            case .word("import"):
                var n = try next()
                let isPublic = n == .word("public")
                if isPublic || n == .word("weak") { n = try next() }
                guard case .string(let s) = n else { throw fail("expected a quoted import path") }
                imports.append(s)
                if isPublic { publicImports.append(s) }
                try expect(";")
            case .word("option"): try skipStatement()
            case .word("message"): messages.append(try parseMessage(scope: package))
            case .word("enum"): try parseEnum(scope: package)
            case .word("service"), .word("extend"): try skipStatement()
            case .symbol(";"): break
            default: throw fail("unexpected \(describe(t)) at the top level")
            }
            sawAnything = true
        }
    }

    mutating func parseEnum(scope: String) throws {
        let name = try word()
        let full = scope.isEmpty ? name : scope + "." + name
        try expect("{")
        var values: [String: Int] = [:]
        while true {
            let t = try next()
            switch t {
            case .symbol("}"):
                enums[full] = ProtobufSchema.Enumeration(fullName: full, values: values)
                return
            case .word("option"), .word("reserved"): try skipStatement()
            case .symbol(";"): break
            case .word(let valueName):
                try expect("=")
                let number = try integer()
                if try peek() == .symbol("[") { while try next() != .symbol("]") {} }
                try expect(";")
                values[valueName] = number
            default: throw fail("unexpected \(describe(t)) in enum \(full)")
            }
        }
    }

    mutating func parseReserved(_ message: inout ProtobufSchema.Message) throws {
        while true {
            let t = try next()
            switch t {
            case .string(let s): message.reservedNames.append(s)
            case .word(let w):
                guard let low = Int(w) else { throw fail("expected a reserved number, found '\(w)'") }
                var high = low
                if try peek() == .word("to") {
                    _ = try next()
                    let h = try word()
                    high = h == "max" ? 536_870_911 : (Int(h) ?? -1)
                    guard high >= low else { throw fail("invalid reserved range \(low) to \(h)") }
                }
                message.reservedNumbers.append(low...high)
            default: throw fail("unexpected \(describe(t)) in reserved")
            }
            let sep = try next()
            if sep == .symbol(";") { return }
            guard sep == .symbol(",") else { throw fail("expected ',' or ';' in reserved") }
        }
    }

    mutating func parseField(label: ProtobufSchema.Field.Label, type: String, oneof: String?, into message: inout ProtobufSchema.Message) throws {
        let name = try word()
        try expect("=")
        let number = try integer()
        if try peek() == .symbol("[") {
            var depth = 0
            repeat {
                let t = try next()
                if t == .symbol("[") { depth += 1 }
                if t == .symbol("]") { depth -= 1 }
                if t == .end { throw fail("unterminated field options") }
            } while depth > 0
        }
        try expect(";")
        guard (1...536_870_911).contains(number), !(19000...19999).contains(number) else {
            throw fail("field \"\(name)\" of \(message.fullName) has number \(number), outside 1–536870911 or in the reserved 19000–19999")
        }
        guard !message.fields.contains(where: { $0.number == number }) else { throw fail("\(message.fullName) uses the field number \(number) twice") }
        guard !message.fields.contains(where: { $0.name == name }) else { throw fail("\(message.fullName) has two fields named \"\(name)\"") }
        message.fields.append(ProtobufSchema.Field(name: name, number: number, label: label, type: type, oneof: oneof))
    }

    mutating func parseType(_ first: String) throws -> String {
        guard first == "map" else { return first }
        try expect("<")
        let k = try word()
        try expect(",")
        let v = try word()
        try expect(">")
        return "map<\(k),\(v)>"
    }

    mutating func parseMessage(scope: String) throws -> ProtobufSchema.Message {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maximumNesting else { throw fail("messages nested deeper than \(Self.maximumNesting)") }
        let name = try word()
        let full = scope.isEmpty ? name : scope + "." + name
        var message = ProtobufSchema.Message(fullName: full, fields: [], reservedNumbers: [], reservedNames: [], nested: [])
        try expect("{")
        while true {
            let t = try next()
            switch t {
            case .symbol("}"):
                for f in message.fields where message.isReserved(f.number) || message.reservedNames.contains(f.name) {
                    throw fail("field \"\(f.name)\" of \(full) uses a reserved number or name")
                }
                return message
            case .symbol(";"): break
            case .word("message"): message.nested.append(try parseMessage(scope: full))
            case .word("enum"): try parseEnum(scope: full)
            case .word("option"), .word("extensions"), .word("extend"): try skipStatement()
            case .word("reserved"): try parseReserved(&message)
            case .word("oneof"):
                let oneofName = try word()
                try expect("{")
                while true {
                    let u = try next()
                    if u == .symbol("}") { break }
                    if u == .word("option") { try skipStatement(); continue }
                    guard case .word(let type) = u else { throw fail("unexpected \(describe(u)) in oneof \(oneofName)") }
                    try parseField(label: .singular, type: try parseType(type), oneof: oneofName, into: &message)
                }
            case .word(let w):
                let label: ProtobufSchema.Field.Label
                let type: String
                switch w {
                case "optional", "required", "repeated":
                    label = ProtobufSchema.Field.Label(rawValue: w)!
                    type = try parseType(try word())
                default:
                    label = .singular
                    type = try parseType(w)
                }
                if label == .required, syntax == "proto3" { throw fail("proto3 does not allow required fields") }
                try parseField(label: label, type: type, oneof: nil, into: &message)
            default: throw fail("unexpected \(describe(t)) in message \(full)")
            }
        }
    }
}

/// Compatibility of two `.proto` schemas.
///
/// Reading rules (can a reader built from one parse messages written with the other?), checked
/// per message present in both (by full name), per field number: `FIELD_KIND_CHANGED` (scalar vs
/// message vs map, or repeated vs singular), `FIELD_SCALAR_KIND_CHANGED` (scalar types that are
/// not wire-compatible; the groups int32/int64/uint32/uint64/bool, sint32/sint64,
/// fixed32/sfixed32, fixed64/sfixed64 and string/bytes are), `FIELD_NAMED_TYPE_CHANGED`,
/// `REQUIRED_FIELD_ADDED`, `REQUIRED_FIELD_REMOVED`, `MESSAGE_MISSING` (the reader lacks a
/// message of the writer's), `PACKAGE_CHANGED`, `SYNTAX_CHANGED`. A field only one side has is
/// fine: Protobuf skips unknown fields and defaults missing ones.
///
/// Messages from imports (``ProtobufSchema/init(parsing:imports:)``) are checked by the same
/// rules when the writer's own messages reach them through fields (directly, through map
/// values, or through other imported messages) and the reader sees them too (its own file or
/// its imports); a message the reader lacks because its import was not given is not reported.
/// Fields of imported enum types count as enums, not messages.
///
/// Evolution rule (new version against an earlier one, whatever the direction):
/// `RESERVED_FIELD_REUSED`, a field number or name the earlier version reserved is used again.
public enum ProtobufCompatibility {
    static let wireGroups: [Set<String>] = [["int32", "int64", "uint32", "uint64", "bool"], ["sint32", "sint64"],
                                            ["fixed32", "sfixed32"], ["fixed64", "sfixed64"], ["string", "bytes"]]

    /// Reasons `reader` may misread messages written with `writer` (empty: none found).
    public static func incompatibilities(writer: ProtobufSchema, reader: ProtobufSchema) -> [SchemaIncompatibility] {
        var issues: [SchemaIncompatibility] = []
        func add(_ path: String, _ rule: String, _ message: String) { issues.append(SchemaIncompatibility(path: path, rule: rule, message: message)) }
        if writer.package != reader.package { add("package", "PACKAGE_CHANGED", "the package changed from \"\(writer.package)\" to \"\(reader.package)\"") }
        if writer.syntax != reader.syntax { add("syntax", "SYNTAX_CHANGED", "the syntax changed from \(writer.syntax) to \(reader.syntax)") }
        let rMessages = reader.visibleMessages
        let wMessages = writer.visibleMessages
        let (wEnums, rEnums) = (writer.visibleEnums, reader.visibleEnums)
        let isMessage = Set(wMessages.keys).union(rMessages.keys)
        func kind(_ f: ProtobufSchema.Field) -> String {
            if f.type.hasPrefix("map<") { return "map" }
            if ProtobufSchema.scalars.contains(f.type) { return "scalar" }
            return isMessage.contains(f.type) ? "message" : (wEnums[f.type] != nil || rEnums[f.type] != nil ? "enum" : "message")
        }
        // The writer's own messages, then the imported ones they reach.
        let own = writer.allMessages
        var reached: Set<String> = []
        var pending = Array(own.values)
        while let m = pending.popLast() {
            for f in m.fields {
                let names = f.type.hasPrefix("map<") ? f.type.dropFirst(4).dropLast().split(separator: ",").map(String.init) : [f.type]
                for t in names where own[t] == nil {
                    if let imported = writer.importedMessages[t], reached.insert(t).inserted { pending.append(imported) }
                }
            }
        }
        let checked = own.sorted(by: { $0.key < $1.key }).map { ($0.key, $0.value, true) }
            + reached.sorted().compactMap { name in wMessages[name].map { (name, $0, false) } }
        for (name, w, isOwn) in checked {
            guard let r = rMessages[name] else {
                if isOwn { add(name, "MESSAGE_MISSING", "the reader's schema has no message \(name)") }
                continue
            }
            for wf in w.fields {
                let path = "\(name).\(wf.name)"
                guard let rf = r.fields.first(where: { $0.number == wf.number }) else {
                    if wf.label == .required { add(path, "REQUIRED_FIELD_REMOVED", "the required field \(wf.name) = \(wf.number) is not in the reader's schema") }
                    continue
                }
                let (wk, rk) = (kind(wf), kind(rf))
                if wk != rk || (wf.label == .repeated) != (rf.label == .repeated) {
                    add(path, "FIELD_KIND_CHANGED", "field \(wf.number) changed from \(wf.label == .repeated ? "repeated " : "")\(wf.type) to \(rf.label == .repeated ? "repeated " : "")\(rf.type)")
                } else if wk == "scalar", wf.type != rf.type, !wireGroups.contains(where: { $0.contains(wf.type) && $0.contains(rf.type) }) {
                    add(path, "FIELD_SCALAR_KIND_CHANGED", "field \(wf.number) changed from \(wf.type) to \(rf.type), which are not wire-compatible")
                } else if wk != "scalar", wf.type != rf.type {
                    add(path, "FIELD_NAMED_TYPE_CHANGED", "field \(wf.number) changed type from \(wf.type) to \(rf.type)")
                }
            }
            for rf in r.fields where rf.label == .required && !w.fields.contains(where: { $0.number == rf.number }) {
                add("\(name).\(rf.name)", "REQUIRED_FIELD_ADDED", "the reader requires the field \(rf.name) = \(rf.number), which the writer's schema lacks")
            }
        }
        return issues
    }

    /// Reasons `new` may not follow `old` as a later version of the same schema, whatever the
    /// compatibility direction: reuse of numbers or names `old` reserved.
    public static func evolutionIssues(old: ProtobufSchema, new: ProtobufSchema) -> [SchemaIncompatibility] {
        var issues: [SchemaIncompatibility] = []
        let newMessages = new.allMessages
        for (name, o) in old.allMessages.sorted(by: { $0.key < $1.key }) {
            guard let n = newMessages[name] else { continue }
            for f in n.fields where !o.fields.contains(where: { $0.number == f.number }) && (o.isReserved(f.number) || o.reservedNames.contains(f.name)) {
                issues.append(SchemaIncompatibility(path: "\(name).\(f.name)", rule: "RESERVED_FIELD_REUSED",
                    message: "field \(f.name) = \(f.number) uses a number or name an earlier version reserved"))
            }
        }
        return issues
    }
}
