import EddyCore
import EddySchema
import Testing

@Suite struct AvroSchemaTests {
    @Test func primitiveNamesParseAsBareStringsAndObjects() throws {
        for name in ["null", "boolean", "int", "long", "float", "double", "bytes", "string"] {
            let bare = try AvroSchema(parsing: "\"\(name)\"")
            let wrapped = try AvroSchema(parsing: "{\"type\":\"\(name)\"}")
            #expect(bare.canonicalForm == "\"\(name)\"")
            #expect(wrapped.canonicalForm == bare.canonicalForm)
        }
    }

    @Test func canonicalFormExpandsNamesOrdersAttributesAndStripsTheRest() throws {
        let schema = try AvroSchema(parsing: """
        {"namespace": "com.example", "doc": "a user", "type": "record", "name": "User", "aliases": ["Person"],
         "fields": [
           {"type": "long", "name": "id", "doc": "the id", "default": 0},
           {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"], "default": "A"}},
           {"name": "again", "type": "Kind"},
           {"name": "tags", "type": {"type": "array", "items": "string"}},
           {"name": "hash", "type": {"type": "fixed", "size": 16, "name": "other.Hash"}},
           {"name": "when", "type": {"type": "long", "logicalType": "timestamp-millis"}}
         ]}
        """)
        #expect(schema.canonicalForm == #"{"name":"com.example.User","type":"record","fields":[{"name":"id","type":"long"},{"name":"kind","type":{"name":"com.example.Kind","type":"enum","symbols":["A","B"]}},{"name":"again","type":"com.example.Kind"},{"name":"tags","type":{"type":"array","items":"string"}},{"name":"hash","type":{"name":"other.Hash","type":"fixed","size":16}},{"name":"when","type":"long"}]}"#)
        #expect(schema.fullName == "com.example.User")
        #expect(schema.normalizedForm.contains("\"default\":0"))
        #expect(schema.normalizedForm.contains("timestamp-millis"))
        // The normalized form parses back to an equal schema.
        #expect(try AvroSchema(parsing: schema.normalizedForm) == schema)
    }

    @Test func schemasDifferingOnlyInWhitespaceAndDocAreEqual() throws {
        let a = try AvroSchema(parsing: #"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#)
        let b = try AvroSchema(parsing: "{ \"name\" : \"R\", \"doc\": \"x\",\n \"type\" : \"record\", \"fields\" : [ { \"type\": \"int\", \"name\": \"a\" } ] }")
        #expect(a == b)
        #expect(a.fingerprint == b.fingerprint)
    }

    @Test func recursiveRecordsThroughAUnionAreAccepted() throws {
        let list = try AvroSchema(parsing: #"{"type":"record","name":"Node","fields":[{"name":"value","type":"int"},{"name":"next","type":["null","Node"]}]}"#)
        let value = AvroValue.record([.int(1), .union(1, .record([.int(2), .union(0, .null)]))])
        #expect(try list.decode(list.encode(value)) == value)
        #expect(list.canonicalForm.contains(#"["null","Node"]"#))
    }

    @Test(arguments: [
        ("{\"type\":\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"a\",\"type\":\"A\"}]}", "refers to itself"),
        ("{\"type\":\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"b\",\"type\":\"B\"}]}", "unknown type \"B\""),
        ("\"strung\"", "unknown type"),
        ("{\"type\":\"blob\"}", "unknown type"),
        ("{\"type\":\"record\",\"name\":\"A\"}", "needs a \"fields\" array"),
        ("{\"type\":\"record\",\"name\":\"1A\",\"fields\":[]}", "invalid name"),
        ("{\"type\":\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"x\",\"type\":\"int\"},{\"name\":\"x\",\"type\":\"int\"}]}", "two fields named"),
        ("[\"int\",\"int\"]", "two branches"),
        ("[\"int\",[\"null\",\"long\"]]", "may not immediately contain another union"),
        ("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"A\"]}", "twice"),
        ("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"],\"default\":\"B\"}", "not one of its symbols"),
        ("{\"type\":\"fixed\",\"name\":\"F\"}", "size"),
        ("{\"type\":\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"x\",\"type\":\"int\",\"default\":\"no\"}]}", "does not match"),
        ("{\"type\":\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"x\",\"type\":{\"type\":\"record\",\"name\":\"A\",\"fields\":[]}}]}", "defined twice"),
        ("{\"type\":\"array\"}", "needs \"items\""),
        ("{\"type\": \"record\", ", "malformed"),
        ("42", "must be a type name"),
    ])
    func malformedSchemasAreRefusedWithAMessage(text: String, expected: String) {
        do {
            _ = try AvroSchema(parsing: text)
            Issue.record("accepted \(text)")
        } catch let error as EddyError {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains(expected), "\(error.message)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func invalidLogicalTypesAreIgnoredAsTheSpecSays() throws {
        let schema = try AvroSchema(parsing: #"{"type":"int","logicalType":"timestamp-millis"}"#)
        #expect(schema.normalizedForm == "\"int\"")
        let decimal = try AvroSchema(parsing: #"{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}"#)
        #expect(decimal.normalizedForm.contains("\"precision\":4"))
        #expect(decimal.canonicalForm == "\"bytes\"")
    }

    @Test func defaultsOfEveryKindConvert() throws {
        let schema = try AvroSchema(parsing: """
        {"type":"record","name":"D","fields":[
          {"name":"n","type":"null","default":null},
          {"name":"b","type":"boolean","default":true},
          {"name":"i","type":"int","default":-5},
          {"name":"l","type":"long","default":12345678901},
          {"name":"f","type":"float","default":1.5},
          {"name":"d","type":"double","default":2},
          {"name":"by","type":"bytes","default":"\\u00ff\\u0001"},
          {"name":"s","type":"string","default":"hi"},
          {"name":"e","type":{"type":"enum","name":"E","symbols":["X","Y"]},"default":"Y"},
          {"name":"a","type":{"type":"array","items":"int"},"default":[1,2]},
          {"name":"m","type":{"type":"map","values":"string"},"default":{"k":"v"}},
          {"name":"u","type":["null","string"],"default":null},
          {"name":"fx","type":{"type":"fixed","name":"F2","size":2},"default":"ab"},
          {"name":"r","type":{"type":"record","name":"In","fields":[{"name":"x","type":"int"}]},"default":{"x":7}}
        ]}
        """)
        #expect(schema.fieldNames.count == 14)
    }
}
