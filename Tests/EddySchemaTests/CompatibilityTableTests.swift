import EddySchema
import Testing

/// One row of a compatibility table: earlier versions (oldest first), a new schema, and whether
/// the new schema is accepted under each level.
struct CompatibilityCase: CustomStringConvertible, Sendable {
    var name: String
    var type: SchemaType
    var previous: [String]
    var new: String
    /// Levels under which `new` is compatible; every other level (except NONE) refuses it.
    var compatibleUnder: Set<CompatibilityLevel>
    var description: String { name }
}

let B = CompatibilityLevel.backward, BT = CompatibilityLevel.backwardTransitive
let F = CompatibilityLevel.forward, FT = CompatibilityLevel.forwardTransitive
let U = CompatibilityLevel.full, UT = CompatibilityLevel.fullTransitive
let allLevels: Set<CompatibilityLevel> = [B, BT, F, FT, U, UT]

func avroRecord(_ fields: String) -> String { #"{"type":"record","name":"R","fields":["# + fields + "]}" }

let avroTable: [CompatibilityCase] = [
    CompatibilityCase(name: "avro: add a field with a default", type: .avro, previous: [avroRecord(#"{"name":"a","type":"int"}"#)],
          new: avroRecord(#"{"name":"a","type":"int"},{"name":"b","type":"string","default":"x"}"#), compatibleUnder: allLevels),
    CompatibilityCase(name: "avro: add a field without a default", type: .avro, previous: [avroRecord(#"{"name":"a","type":"int"}"#)],
          new: avroRecord(#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#), compatibleUnder: [F, FT]),
    CompatibilityCase(name: "avro: remove a field without a default", type: .avro, previous: [avroRecord(#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#)],
          new: avroRecord(#"{"name":"a","type":"int"}"#), compatibleUnder: [B, BT]),
    CompatibilityCase(name: "avro: remove a field with a default", type: .avro, previous: [avroRecord(#"{"name":"a","type":"int"},{"name":"b","type":"string","default":""}"#)],
          new: avroRecord(#"{"name":"a","type":"int"}"#), compatibleUnder: allLevels),
    CompatibilityCase(name: "avro: promote int to long", type: .avro, previous: [avroRecord(#"{"name":"a","type":"int"}"#)],
          new: avroRecord(#"{"name":"a","type":"long"}"#), compatibleUnder: [B, BT]),
    CompatibilityCase(name: "avro: demote long to int", type: .avro, previous: [avroRecord(#"{"name":"a","type":"long"}"#)],
          new: avroRecord(#"{"name":"a","type":"int"}"#), compatibleUnder: [F, FT]),
    CompatibilityCase(name: "avro: string and bytes interchange", type: .avro, previous: [avroRecord(#"{"name":"a","type":"string"}"#)],
          new: avroRecord(#"{"name":"a","type":"bytes"}"#), compatibleUnder: allLevels),
    CompatibilityCase(name: "avro: change string to int", type: .avro, previous: [avroRecord(#"{"name":"a","type":"string"}"#)],
          new: avroRecord(#"{"name":"a","type":"int"}"#), compatibleUnder: []),
    CompatibilityCase(name: "avro: add an enum symbol", type: .avro, previous: [#"{"type":"enum","name":"E","symbols":["A","B"]}"#],
          new: #"{"type":"enum","name":"E","symbols":["A","B","C"]}"#, compatibleUnder: [B, BT]),
    CompatibilityCase(name: "avro: add an enum symbol when the enum has a default", type: .avro, previous: [#"{"type":"enum","name":"E","symbols":["U","A"],"default":"U"}"#],
          new: #"{"type":"enum","name":"E","symbols":["U","A","B"],"default":"U"}"#, compatibleUnder: allLevels),
    CompatibilityCase(name: "avro: widen a field to a union", type: .avro, previous: [avroRecord(#"{"name":"a","type":"string"}"#)],
          new: avroRecord(#"{"name":"a","type":["null","string"],"default":null}"#), compatibleUnder: [B, BT]),
    CompatibilityCase(name: "avro: rename a record with an alias", type: .avro, previous: [#"{"type":"record","name":"Old","fields":[{"name":"a","type":"int"}]}"#],
          new: #"{"type":"record","name":"New","aliases":["Old"],"fields":[{"name":"a","type":"int"}]}"#, compatibleUnder: [B, BT]),
    CompatibilityCase(name: "avro: a field without default is fine against the latest version only", type: .avro,
          previous: [avroRecord(#"{"name":"a","type":"int"}"#), avroRecord(#"{"name":"a","type":"int"},{"name":"b","type":"string","default":""}"#)],
          new: avroRecord(#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#), compatibleUnder: [B, F, FT, U]),
    CompatibilityCase(name: "avro: a removed field is fine against the latest version only", type: .avro,
          previous: [avroRecord(#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#), avroRecord(#"{"name":"a","type":"int"},{"name":"b","type":"string","default":""}"#)],
          new: avroRecord(#"{"name":"a","type":"int"}"#), compatibleUnder: [B, BT, F, U]),
]

let jsonTable: [CompatibilityCase] = [
    CompatibilityCase(name: "json: add an optional property to a closed model", type: .json,
          previous: [#"{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}"#],
          new: #"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"additionalProperties":false}"#, compatibleUnder: [B, BT]),
    CompatibilityCase(name: "json: add a required property to an open model", type: .json,
          previous: [#"{"type":"object","properties":{"a":{"type":"string"}}}"#],
          new: #"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}},"required":["b"]}"#, compatibleUnder: [F, FT]),
    CompatibilityCase(name: "json: widen a type", type: .json, previous: [#"{"type":"string"}"#], new: #"{"type":["string","null"]}"#, compatibleUnder: [B, BT]),
    CompatibilityCase(name: "json: integer to number", type: .json, previous: [#"{"type":"integer"}"#], new: #"{"type":"number"}"#, compatibleUnder: [B, BT]),
    CompatibilityCase(name: "json: lower a maximum", type: .json, previous: [#"{"type":"integer","maximum":100}"#], new: #"{"type":"integer","maximum":50}"#, compatibleUnder: [F, FT]),
    CompatibilityCase(name: "json: add an enum value", type: .json, previous: [#"{"enum":["a","b"]}"#], new: #"{"enum":["a","b","c"]}"#, compatibleUnder: [B, BT]),
    CompatibilityCase(name: "json: identical schemas", type: .json, previous: [##"{"type":"object","properties":{"a":{"$ref":"#/$defs/s"}},"$defs":{"s":{"type":"string"}}}"##],
          new: ##"{"type":"object","properties":{"a":{"$ref":"#/$defs/s"}},"$defs":{"s":{"type":"string"}}}"##, compatibleUnder: allLevels),
    CompatibilityCase(name: "json: change a referenced type", type: .json, previous: [##"{"type":"object","properties":{"a":{"$ref":"#/$defs/s"}},"$defs":{"s":{"type":"string"}}}"##],
          new: ##"{"type":"object","properties":{"a":{"$ref":"#/$defs/s"}},"$defs":{"s":{"type":"integer"}}}"##, compatibleUnder: []),
    CompatibilityCase(name: "json: narrowed long ago, fine against the latest only", type: .json,
          previous: [#"{"type":["string","integer"]}"#, #"{"type":"string"}"#], new: #"{"type":"string","description":"text"}"#,
          compatibleUnder: [B, F, FT, U]),
]

let protoTable: [CompatibilityCase] = [
    CompatibilityCase(name: "protobuf: add a field", type: .protobuf, previous: [#"syntax = "proto3"; message M { int32 a = 1; }"#],
          new: #"syntax = "proto3"; message M { int32 a = 1; string b = 2; }"#, compatibleUnder: allLevels),
    CompatibilityCase(name: "protobuf: remove a field and reserve its number", type: .protobuf, previous: [#"syntax = "proto3"; message M { int32 a = 1; string b = 2; }"#],
          new: #"syntax = "proto3"; message M { int32 a = 1; reserved 2; reserved "b"; }"#, compatibleUnder: allLevels),
    CompatibilityCase(name: "protobuf: remove a field without reserving it", type: .protobuf, previous: [#"syntax = "proto3"; message M { int32 a = 1; string b = 2; }"#],
          new: #"syntax = "proto3"; message M { int32 a = 1; }"#, compatibleUnder: allLevels),
    CompatibilityCase(name: "protobuf: change int32 to string", type: .protobuf, previous: [#"syntax = "proto3"; message M { int32 a = 1; }"#],
          new: #"syntax = "proto3"; message M { string a = 1; }"#, compatibleUnder: []),
    CompatibilityCase(name: "protobuf: widen int32 to int64", type: .protobuf, previous: [#"syntax = "proto3"; message M { int32 a = 1; }"#],
          new: #"syntax = "proto3"; message M { int64 a = 1; }"#, compatibleUnder: allLevels),
    CompatibilityCase(name: "protobuf: reuse a reserved number", type: .protobuf, previous: [#"syntax = "proto3"; message M { int32 a = 1; reserved 2; }"#],
          new: #"syntax = "proto3"; message M { int32 a = 1; string c = 2; }"#, compatibleUnder: []),
    CompatibilityCase(name: "protobuf: add a message", type: .protobuf, previous: [#"syntax = "proto3"; message M { int32 a = 1; }"#],
          new: #"syntax = "proto3"; message M { int32 a = 1; } message N { M m = 1; }"#, compatibleUnder: [B, BT]),
    CompatibilityCase(name: "protobuf: change a message-typed field", type: .protobuf,
          previous: [#"syntax = "proto3"; message A {} message B {} message M { A x = 1; }"#],
          new: #"syntax = "proto3"; message A {} message B {} message M { B x = 1; }"#, compatibleUnder: []),
    CompatibilityCase(name: "protobuf: a number reused after an unreserved removal, fine against the latest only", type: .protobuf,
          previous: [#"syntax = "proto3"; message M { int32 a = 1; string b = 2; }"#, #"syntax = "proto3"; message M { int32 a = 1; reserved 3; }"#],
          new: #"syntax = "proto3"; message M { int32 a = 1; int32 b = 2; reserved 3; }"#, compatibleUnder: [B, F, U]),
]

@Suite struct CompatibilityTableTests {
    func check(_ row: CompatibilityCase) throws {
        let previous = try row.previous.reversed().map { try ParsedSchema(type: row.type, text: $0) }
        let new = try ParsedSchema(type: row.type, text: row.new)
        for level in CompatibilityLevel.allCases {
            let issues = ParsedSchema.incompatibilities(of: new, with: previous, level: level)
            let expected = level == .none || row.compatibleUnder.contains(level)
            #expect(issues.isEmpty == expected, "\(row.name) under \(level.rawValue): \(issues)")
        }
    }

    @Test("Avro schema pairs get the expected verdict at every level", arguments: avroTable)
    func avro(_ row: CompatibilityCase) throws { try check(row) }

    @Test("JSON Schema pairs get the expected verdict at every level", arguments: jsonTable)
    func json(_ row: CompatibilityCase) throws { try check(row) }

    @Test("Protobuf pairs get the expected verdict at every level", arguments: protoTable)
    func protobuf(_ row: CompatibilityCase) throws { try check(row) }

    @Test func theRegistryAppliesTheTableThroughItsLevels() throws {
        for row in avroTable + jsonTable + protoTable {
            for level in CompatibilityLevel.allCases {
                let registry = try SchemaRegistry(storage: InMemorySchemaStorage())
                try registry.setCompatibilityLevel(.none)
                for text in row.previous { try registry.register(subject: "s", type: row.type, schema: text) }
                try registry.setCompatibilityLevel(level, subject: "s")
                let expected = level == .none || row.compatibleUnder.contains(level)
                let accepted: Bool
                do {
                    try registry.register(subject: "s", type: row.type, schema: row.new)
                    accepted = true
                } catch let error as SchemaRegistryError {
                    #expect(error.code == 409)
                    #expect(!error.incompatibilities.isEmpty)
                    accepted = false
                }
                #expect(accepted == expected, "\(row.name) under \(level.rawValue)")
            }
        }
    }
}
