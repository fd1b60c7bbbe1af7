import EddyCore
import EddySchema
import Testing

@Suite struct JSONSchemaTests {
    func violations(_ schema: String, _ value: String) throws -> [String] {
        try JSONSchema(parsing: schema).validate(JSONValue(parsing: value)).map(\.keyword)
    }

    @Test func typesPropertiesRequiredAndAdditionalProperties() throws {
        let schema = #"{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"}},"required":["id"],"additionalProperties":false}"#
        #expect(try violations(schema, #"{"id":1,"name":"x"}"#).isEmpty)
        #expect(try violations(schema, #"{"id":1.0}"#).isEmpty)
        #expect(try violations(schema, #"{"id":1.5}"#) == ["type"])
        #expect(try violations(schema, #"{"name":"x"}"#) == ["required"])
        #expect(try violations(schema, #"{"id":1,"extra":true}"#) == ["additionalProperties"])
        #expect(try violations(schema, "[]") == ["type"])
        #expect(try violations(#"{"type":["string","null"]}"#, "null").isEmpty)
        #expect(try violations(#"{"additionalProperties":{"type":"string"}}"#, #"{"a":1}"#) == ["type"])
        #expect(try violations(#"{"patternProperties":{"^n_":{"type":"number"}}}"#, #"{"n_x":"s","m":"s"}"#) == ["type"])
    }

    @Test func enumConstAndBounds() throws {
        #expect(try violations(#"{"enum":["a",1,null]}"#, "1").isEmpty)
        #expect(try violations(#"{"enum":["a",1,null]}"#, "2") == ["enum"])
        #expect(try violations(#"{"const":{"a":[1]}}"#, #"{"a":[1]}"#).isEmpty)
        #expect(try violations(#"{"const":{"a":[1]}}"#, #"{"a":[2]}"#) == ["const"])
        let numeric = #"{"minimum":1,"maximum":10,"exclusiveMaximum":10,"multipleOf":0.5}"#
        #expect(try violations(numeric, "2.5").isEmpty)
        #expect(try violations(numeric, "0") == ["minimum"])
        #expect(try violations(numeric, "10") == ["exclusiveMaximum"])
        #expect(try violations(numeric, "11").sorted() == ["exclusiveMaximum", "maximum"])
        #expect(try violations(numeric, "2.25") == ["multipleOf"])
        let text = #"{"minLength":2,"maxLength":3,"pattern":"^[a-z€]+$"}"#
        #expect(try violations(text, #""€€""#).isEmpty)
        #expect(try violations(text, #""a""#) == ["minLength"])
        #expect(try violations(text, #""abcd""#) == ["maxLength"])
        #expect(try violations(text, #""AB""#) == ["pattern"])
    }

    @Test func formats() throws {
        for (format, good, bad) in [("date-time", "2024-02-29T12:30:00.5+01:00", "2023-02-29T12:30:00Z"),
                                    ("date-time", "1999-12-31t23:59:60z", "1999-12-31 23:59:59Z"),
                                    ("email", "ada@example.com", "ada@@example.com"),
                                    ("email", "a.b+c@x.io", "no-at-sign"),
                                    ("uuid", "0B7F0D0E-3C64-4C2A-9D3B-6B0F2B1C9E51", "0b7f0d0e3c644c2a9d3b6b0f2b1c9e51")] {
            let schema = "{\"format\":\"\(format)\"}"
            #expect(try violations(schema, "\"\(good)\"").isEmpty, "\(good)")
            #expect(try violations(schema, "\"\(bad)\"") == ["format"], "\(bad)")
        }
    }

    @Test func itemsFollowEachDraft() throws {
        let draft07 = #"{"$schema":"http://json-schema.org/draft-07/schema#","items":[{"type":"string"},{"type":"integer"}],"additionalItems":false}"#
        #expect(try violations(draft07, #"["a",1]"#).isEmpty)
        #expect(try violations(draft07, #"["a","b"]"#) == ["type"])
        #expect(try violations(draft07, #"["a",1,2]"#) == ["false"])
        let modern = #"{"$schema":"https://json-schema.org/draft/2020-12/schema","prefixItems":[{"type":"string"}],"items":{"type":"integer"},"minItems":1,"maxItems":3,"uniqueItems":true}"#
        #expect(try violations(modern, #"["a",1,2]"#).isEmpty)
        #expect(try violations(modern, #"["a","b"]"#) == ["type"])
        #expect(try violations(modern, "[]") == ["minItems"])
        #expect(try violations(modern, #"["a",1,1]"#) == ["uniqueItems"])
    }

    @Test func combinatorsAndReferences() throws {
        let schema = ##"""
        {"$defs":{"pos":{"type":"integer","minimum":1},"node":{"type":"object","properties":{"v":{"$ref":"#/$defs/pos"},"next":{"$ref":"#/$defs/node"}}}},
         "oneOf":[{"$ref":"#/$defs/node"},{"type":"string"}],
         "not":{"const":"forbidden"}}
        """##
        #expect(try violations(schema, #"{"v":1,"next":{"v":2}}"#).isEmpty)
        #expect(try violations(schema, #"{"v":1,"next":{"v":0}}"#) == ["oneOf"])
        #expect(try violations(schema, #""text""#).isEmpty)
        #expect(try violations(schema, #""forbidden""#) == ["not"])
        #expect(try violations(#"{"anyOf":[{"type":"string"},{"minimum":5}]}"#, "3") == ["anyOf"])
        #expect(try violations(#"{"allOf":[{"minimum":1},{"maximum":2}]}"#, "3") == ["maximum"])
        // A schema that refers to itself endlessly fails validation instead of recursing forever.
        #expect(try violations(##"{"$ref":"#"}"##, "1") == ["$ref"])
    }

    @Test func malformedSchemasAreRefused() throws {
        for text in ["[1]", "{\"type\":\"strng\"}", "{\"pattern\":\"(\"}", "{\"$ref\":\"#/definitions/missing\"}", "{\"$ref\":\"other.json\"}", "{", "{\"type\":3}"] {
            #expect(throws: EddyError.self, "\(text)") { try JSONSchema(parsing: text) }
        }
        #expect(try JSONSchema(parsing: "true").isValid(.null))
        #expect(try !JSONSchema(parsing: "false").isValid(.null))
    }

    @Test func jsonTextParsesStrictly() throws {
        #expect(try JSONValue(parsing: #"{"a":[1,-2.5e3,"\u00e9\ud83d\ude00",true,null]}"#) ==
                .object([("a", .array([.integer(1), .number(-2500), .string("é😀"), .bool(true), .null]))]))
        for bad in ["", "{", "[1,]", "01", "{\"a\":1,\"a\":2}", "\"\u{1}\"", "tru", "[1] x", "\"\\ud800\""] {
            #expect(throws: EddyError.self, "\(bad)") { try JSONValue(parsing: bad) }
        }
        let deep = String(repeating: "[", count: 300) + String(repeating: "]", count: 300)
        #expect(throws: EddyError.self) { try JSONValue(parsing: deep) }
    }
}

@Suite struct ProtobufSchemaTests {
    static let proto = """
    syntax = "proto3";
    package shop.v1;
    import "google/protobuf/timestamp.proto";
    option java_package = "x";
    // An order.
    message Order {
      string id = 1;
      repeated Line lines = 2;
      map<string, int64> counts = 3 [deprecated = true];
      oneof payment { string card = 4; Cash cash = 5; }
      Status status = 6;
      google.protobuf.Timestamp at = 7;
      reserved 8, 10 to 12;
      reserved "old";
      message Line { string sku = 1; int32 quantity = 2; }
      enum Status { UNKNOWN = 0; PAID = 1; }
    }
    /* cash */ message Cash { double amount = 1; }
    service Shop { rpc Place(Order) returns (Order); }
    """

    @Test func aProtoFileParsesIntoMessagesWithIndexes() throws {
        let schema = try ProtobufSchema(parsing: Self.proto)
        #expect(schema.package == "shop.v1")
        #expect(schema.firstMessageFullName == "shop.v1.Order")
        #expect(schema.messageIndexes(of: "shop.v1.Cash") == [1])
        #expect(schema.messageIndexes(of: "shop.v1.Order.Line") == [0, 0])
        #expect(schema.message(at: [0, 0])?.fullName == "shop.v1.Order.Line")
        let order = try #require(schema.allMessages["shop.v1.Order"])
        #expect(order.fields.map(\.type) == ["string", "shop.v1.Order.Line", "map<string,int64>", "string", "shop.v1.Cash", "shop.v1.Order.Status", "google.protobuf.Timestamp"])
        #expect(order.fields.first { $0.name == "cash" }?.oneof == "payment")
        // Comments and whitespace do not change the identity.
        let again = try ProtobufSchema(parsing: Self.proto.replacingOccurrences(of: "// An order.", with: ""))
        #expect(again == schema)
    }

    @Test(arguments: [
        "message {", "syntax = \"proto4\";", "message M { int32 a = 1; int32 b = 1; }", "message M { int32 a = 1; string a = 2; }",
        "message M { Unknown x = 1; }", "message M { int32 a = 19000; }", "message M { int32 a = 0; }",
        "message M { int32 a = 2; reserved 2; }", "syntax = \"proto3\"; message M { required int32 a = 1; }", "", "message M { int32 a = 1 }",
    ])
    func malformedProtoFilesAreRefused(text: String) {
        #expect(throws: EddyError.self) { try ProtobufSchema(parsing: text) }
    }
}
