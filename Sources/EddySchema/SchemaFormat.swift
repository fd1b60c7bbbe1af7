import EddyCore

/// The schema languages the registry knows, named as Confluent's REST API names them.
public enum SchemaType: String, Hashable, Sendable, CaseIterable, Codable {
    case avro = "AVRO"
    case protobuf = "PROTOBUF"
    case json = "JSON"

    /// Parses `avro`, `protobuf`, `json` in any case (`AVRO`, `Avro`, …).
    public init?(name: String) {
        self.init(rawValue: name.uppercased())
    }
}

/// How new versions of a subject must relate to the versions before them.
///
/// `BACKWARD`: consumers using the new schema can read data written with the previous one.
/// `FORWARD`: consumers using the previous schema can read data written with the new one.
/// `FULL`: both. The `_TRANSITIVE` forms check against every earlier (not deleted) version
/// instead of only the latest. `NONE` checks nothing.
public enum CompatibilityLevel: String, Hashable, Sendable, CaseIterable, Codable {
    case backward = "BACKWARD"
    case backwardTransitive = "BACKWARD_TRANSITIVE"
    case forward = "FORWARD"
    case forwardTransitive = "FORWARD_TRANSITIVE"
    case full = "FULL"
    case fullTransitive = "FULL_TRANSITIVE"
    case none = "NONE"

    /// Parses a level name in any case.
    public init?(name: String) { self.init(rawValue: name.uppercased()) }

    var isTransitive: Bool { self == .backwardTransitive || self == .forwardTransitive || self == .fullTransitive }
    var checksBackward: Bool { self == .backward || self == .backwardTransitive || self == .full || self == .fullTransitive }
    var checksForward: Bool { self == .forward || self == .forwardTransitive || self == .full || self == .fullTransitive }
}

/// A schema parsed in one of the registry's languages.
public enum ParsedSchema: Hashable, Sendable {
    case avro(AvroSchema)
    case json(JSONSchema)
    case protobuf(ProtobufSchema)

    /// Parses `text` as a schema of `type`. Throws ``EddyError/Code/invalidArgument`` with the
    /// parser's message for malformed text, unknown types and bad references.
    public init(type: SchemaType, text: String) throws {
        switch type {
        case .avro: self = .avro(try AvroSchema(parsing: text))
        case .json: self = .json(try JSONSchema(parsing: text))
        case .protobuf: self = .protobuf(try ProtobufSchema(parsing: text))
        }
    }

    /// Parses `text` as a schema of `type` that uses registered schemas through references:
    /// Avro sees the named types of `references.texts` (parsed first, in order); JSON Schema
    /// resolves `$ref`s to `references.documents` by name; Protobuf resolves `import`s to
    /// `references.documents` by import path (imports not among them are taken on trust).
    init(type: SchemaType, text: String, references: ResolvedReferences) throws {
        switch type {
        case .avro: self = .avro(try AvroSchema(parsing: text, referencedSchemas: references.texts))
        case .json:
            var documents: [String: JSONSchema] = [:]
            for (name, parsed) in references.documents {
                if case .json(let document) = parsed { documents[name] = document }
            }
            self = .json(try JSONSchema(parsing: text, referencedDocuments: documents))
        case .protobuf:
            var files: [String: ProtobufSchema] = [:]
            for (name, parsed) in references.documents {
                if case .protobuf(let file) = parsed { files[name] = file }
            }
            self = .protobuf(try ProtobufSchema(parsing: text, imports: files))
        }
    }

    public var type: SchemaType {
        switch self {
        case .avro: .avro
        case .json: .json
        case .protobuf: .protobuf
        }
    }

    /// The text that identifies the schema: two schemas with the same identity get the same id.
    /// Avro: the normalized form (Parsing Canonical Form plus defaults, logical types, aliases);
    /// JSON Schema: the document re-serialized compactly; Protobuf: the normalized definition.
    public var identity: String {
        switch self {
        case .avro(let s): s.normalizedForm
        case .json(let s): s.canonicalText
        case .protobuf(let s): s.canonicalText
        }
    }

    /// The record (message) name used by the record-name subject strategies, if the schema has one.
    public var recordName: String? {
        switch self {
        case .avro(let s): s.fullName
        case .json(let s): s.title
        case .protobuf(let s): s.firstMessageFullName
        }
    }

    /// Reasons a consumer using `self` cannot read data written with `writer` (empty: it can).
    public func incompatibilities(readingDataWrittenWith writer: ParsedSchema) -> [SchemaIncompatibility] {
        switch (self, writer) {
        case let (.avro(r), .avro(w)): return AvroResolver.incompatibilities(writer: w, reader: r)
        case let (.json(r), .json(w)): return JSONSchemaCompatibility.incompatibilities(writer: w, reader: r)
        case let (.protobuf(r), .protobuf(w)): return ProtobufCompatibility.incompatibilities(writer: w, reader: r)
        default:
            return [SchemaIncompatibility(path: "", rule: "TYPE_MISMATCH", message: "a \(type.rawValue) schema cannot be compared with a \(writer.type.rawValue) schema")]
        }
    }

    /// The reasons `new` may not follow `previous` (latest first) under `level`.
    public static func incompatibilities(of new: ParsedSchema, with previous: [ParsedSchema], level: CompatibilityLevel) -> [SchemaIncompatibility] {
        guard level != .none, !previous.isEmpty else { return [] }
        let against = level.isTransitive ? previous : [previous[0]]
        var issues: [SchemaIncompatibility] = []
        for old in against {
            if case .protobuf(let o) = old, case .protobuf(let n) = new {
                issues += ProtobufCompatibility.evolutionIssues(old: o, new: n)
            }
            if level.checksBackward {
                issues += new.incompatibilities(readingDataWrittenWith: old).map {
                    SchemaIncompatibility(path: $0.path, rule: $0.rule, message: "new schema reading old data: " + $0.message)
                }
            }
            if level.checksForward {
                issues += old.incompatibilities(readingDataWrittenWith: new).map {
                    SchemaIncompatibility(path: $0.path, rule: $0.rule, message: "old schema reading new data: " + $0.message)
                }
            }
        }
        var seen: Set<SchemaIncompatibility> = []
        return issues.filter { seen.insert($0).inserted }
    }
}

/// What a schema's references resolve to, for ``ParsedSchema/init(type:text:references:)``.
struct ResolvedReferences {
    /// The texts of every schema the references lead to, references of references first.
    var texts: [String]
    /// The directly referenced schemas by reference name.
    var documents: [String: ParsedSchema]
}

/// How a serializer names the subject a record's schema is registered under.
public enum SubjectNameStrategy: String, Hashable, Sendable, CaseIterable {
    /// `<topic>-key` / `<topic>-value` (Confluent's `TopicNameStrategy`, the default).
    case topicName
    /// The record's full name (`RecordNameStrategy`).
    case recordName
    /// `<topic>-<record full name>` (`TopicRecordNameStrategy`).
    case topicRecordName

    /// The subject for a key or value schema of `topic`. Throws ``EddyError/Code/invalidArgument``
    /// when the strategy needs a record name and the schema has none.
    public func subject(topic: String, isKey: Bool, schema: ParsedSchema) throws -> String {
        switch self {
        case .topicName: return topic + (isKey ? "-key" : "-value")
        case .recordName, .topicRecordName:
            guard let name = schema.recordName else {
                throw EddyError(.invalidArgument, "the \(rawValue) subject strategy needs a named record schema, and this \(schema.type.rawValue) schema has no name")
            }
            return self == .recordName ? name : topic + "-" + name
        }
    }
}
