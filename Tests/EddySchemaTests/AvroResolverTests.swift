import EddyCore
import EddySchema
import Testing

@Suite struct AvroResolverTests {
    func schema(_ text: String) throws -> AvroSchema { try AvroSchema(parsing: text) }

    @Test func readerFieldsMissingInTheWriterTakeTheirDefaultsAndExtraWriterFieldsAreSkipped() throws {
        let writer = try schema(#"{"type":"record","name":"U","fields":[{"name":"id","type":"long"},{"name":"old","type":{"type":"map","values":"string"}},{"name":"name","type":"string"}]}"#)
        let reader = try schema(#"{"type":"record","name":"U","fields":[{"name":"name","type":"string"},{"name":"age","type":"int","default":-1},{"name":"id","type":"long"}]}"#)
        let bytes = try writer.encode(.record([.long(9), .map(["a": .string("b")]), .string("Ada")]))
        let value = try AvroResolver(writer: writer, reader: reader).decode(bytes)
        #expect(value == .record([.string("Ada"), .int(-1), .long(9)]))
    }

    @Test func promotionsFollowTheSpecification() throws {
        let cases: [(String, String, AvroValue, AvroValue)] = [
            ("int", "long", .int(-7), .long(-7)),
            ("int", "float", .int(3), .float(3)),
            ("int", "double", .int(3), .double(3)),
            ("long", "float", .long(5), .float(5)),
            ("long", "double", .long(1 << 40), .double(Double(1 << 40))),
            ("float", "double", .float(1.5), .double(1.5)),
            ("string", "bytes", .string("hé"), .bytes(Array("hé".utf8))),
            ("bytes", "string", .bytes(Array("ok".utf8)), .string("ok")),
        ]
        for (w, r, written, read) in cases {
            let writer = try schema("\"\(w)\""), reader = try schema("\"\(r)\"")
            #expect(try AvroResolver(writer: writer, reader: reader).decode(writer.encode(written)) == read, "\(w) -> \(r)")
        }
        // No demotion.
        #expect(throws: EddyError.self) { try AvroResolver(writer: schema("\"long\""), reader: schema("\"int\"")) }
        #expect(throws: EddyError.self) { try AvroResolver(writer: schema("\"double\""), reader: schema("\"float\"")) }
    }

    @Test func enumSymbolsMapByNameAndUnknownOnesTakeTheReadersDefault() throws {
        let writer = try schema(#"{"type":"enum","name":"E","symbols":["A","B","C"]}"#)
        let withDefault = try schema(#"{"type":"enum","name":"E","symbols":["UNKNOWN","C","A"],"default":"UNKNOWN"}"#)
        let without = try schema(#"{"type":"enum","name":"E","symbols":["C","A"]}"#)
        let r1 = try AvroResolver(writer: writer, reader: withDefault)
        #expect(try r1.decode([0x00]) == .enumeration(2))
        #expect(try r1.decode([0x02]) == .enumeration(0))
        #expect(try r1.decode([0x04]) == .enumeration(1))
        let r2 = try AvroResolver(writer: writer, reader: without)
        #expect(r2.incompatibilities.map(\.rule) == ["MISSING_ENUM_SYMBOLS"])
        #expect(try r2.decode([0x04]) == .enumeration(0))
        #expect(throws: EddyError.self) { try r2.decode([0x02]) }
    }

    @Test func unionsResolveBranchByBranch() throws {
        let writer = try schema(#"["null","int","string"]"#)
        let reader = try schema(#"["string","null","long"]"#)
        let resolver = try AvroResolver(writer: writer, reader: reader)
        #expect(try resolver.decode([0x00]) == .union(1, .null))
        #expect(try resolver.decode([0x02, 0x06]) == .union(2, .long(3)))
        #expect(try resolver.decode([0x04, 0x02, 0x61]) == .union(0, .string("a")))
        // Writer union, reader not a union: branches that do not match fail when read.
        let plain = try AvroResolver(writer: writer, reader: schema("\"long\""))
        #expect(try plain.decode([0x02, 0x06]) == .long(3))
        #expect(throws: EddyError.self) { try plain.decode([0x00]) }
        #expect(plain.incompatibilities.count == 2)
        // Reader union, writer not: the first exact match wins over a promotion.
        let exact = try AvroResolver(writer: schema("\"int\""), reader: schema(#"["long","int"]"#))
        #expect(try exact.decode([0x06]) == .union(1, .int(3)))
        let promoted = try AvroResolver(writer: schema("\"int\""), reader: schema(#"["null","long"]"#))
        #expect(try promoted.decode([0x06]) == .union(1, .long(3)))
    }

    @Test func namedTypesMatchByNameOrAlias() throws {
        let writer = try schema(#"{"type":"record","name":"a.Old","fields":[{"name":"x","type":"int"}]}"#)
        let renamed = try schema(#"{"type":"record","name":"b.New","aliases":["a.Old"],"fields":[{"name":"y","type":"int","aliases":["x"]}]}"#)
        #expect(try AvroResolver(writer: writer, reader: renamed).decode([0x04]) == .record([.int(2)]))
        let other = try schema(#"{"type":"record","name":"b.Other","fields":[{"name":"x","type":"int"}]}"#)
        #expect(AvroResolver.incompatibilities(writer: writer, reader: other).map(\.rule) == ["NAME_MISMATCH"])
        let f1 = try schema(#"{"type":"fixed","name":"F","size":4}"#), f2 = try schema(#"{"type":"fixed","name":"F","size":8}"#)
        #expect(AvroResolver.incompatibilities(writer: f1, reader: f2).map(\.rule) == ["FIXED_SIZE_MISMATCH"])
    }

    @Test func aMissingDefaultIsNamedInTheRefusal() throws {
        let writer = try schema(#"{"type":"record","name":"U","fields":[{"name":"id","type":"long"}]}"#)
        let reader = try schema(#"{"type":"record","name":"U","fields":[{"name":"id","type":"long"},{"name":"email","type":"string"}]}"#)
        let issues = AvroResolver.incompatibilities(writer: writer, reader: reader)
        #expect(issues.count == 1)
        #expect(issues.first?.rule == "READER_FIELD_MISSING_DEFAULT_VALUE")
        #expect(issues.first?.path == "U.email")
        #expect(throws: EddyError.self) { try AvroResolver(writer: writer, reader: reader) }
    }

    @Test func recursiveSchemasResolve() throws {
        let writer = try schema(#"{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"]}]}"#)
        let reader = try schema(#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]},{"name":"v","type":"long"},{"name":"w","type":"string","default":"-"}]}"#)
        let bytes = try writer.encode(.record([.int(1), .union(1, .record([.int(2), .union(0, .null)]))]))
        let value = try AvroResolver(writer: writer, reader: reader).decode(bytes)
        #expect(value == .record([.union(1, .record([.union(0, .null), .long(2), .string("-")])), .long(1), .string("-")]))
    }

    @Test func deeplyNestedDataIsRefusedNotACrash() throws {
        let list = try schema(#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#)
        // 10,000 levels of "branch 1" then a null.
        let bytes = [UInt8](repeating: 0x02, count: 10_000) + [0x00]
        #expect(throws: EddyError.self) { try list.decode(bytes) }
    }
}
