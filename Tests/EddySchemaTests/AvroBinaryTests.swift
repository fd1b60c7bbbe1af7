import EddyCore
import EddySchema
import Testing

@Suite struct AvroBinaryTests {
    @Test func integersUseZigZagVarintsAsInTheSpecification() throws {
        let long = try AvroSchema(parsing: "\"long\"")
        let table: [(Int64, [UInt8])] = [(0, [0x00]), (-1, [0x01]), (1, [0x02]), (-2, [0x03]), (2, [0x04]),
                                         (-64, [0x7f]), (64, [0x80, 0x01]), (Int64.max, [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])]
        for (value, bytes) in table {
            #expect(try long.encode(.long(value)) == bytes)
            #expect(try long.decode(bytes) == .long(value))
        }
    }

    @Test func theSpecificationsExamplesEncodeToTheirBytes() throws {
        #expect(try AvroSchema(parsing: "\"string\"").encode(.string("foo")) == [0x06, 0x66, 0x6f, 0x6f])
        let record = try AvroSchema(parsing: #"{"type":"record","name":"test","fields":[{"name":"a","type":"long"},{"name":"b","type":"string"}]}"#)
        #expect(try record.encode(.record([.long(27), .string("foo")])) == [0x36, 0x06, 0x66, 0x6f, 0x6f])
        let array = try AvroSchema(parsing: #"{"type":"array","items":"long"}"#)
        #expect(try array.encode(.array([.long(3), .long(27)])) == [0x04, 0x06, 0x36, 0x00])
        let union = try AvroSchema(parsing: #"["null","string"]"#)
        #expect(try union.encode(.union(0, .null)) == [0x00])
        #expect(try union.encode(.union(1, .string("a"))) == [0x02, 0x02, 0x61])
        #expect(try union.encode(.string("a")) == [0x02, 0x02, 0x61])
        #expect(try AvroSchema(parsing: "\"boolean\"").encode(.boolean(true)) == [1])
        #expect(try AvroSchema(parsing: "\"float\"").encode(.float(1)) == [0, 0, 0x80, 0x3f])
    }

    @Test func blocksWithByteSizesDecodeAndSkip() throws {
        // An array written as one block with a negative count and a byte size.
        let array = try AvroSchema(parsing: #"{"type":"array","items":"long"}"#)
        #expect(try array.decode([0x03, 0x04, 0x06, 0x36, 0x00]) == .array([.long(3), .long(27)]))
        let writer = try AvroSchema(parsing: #"{"type":"record","name":"R","fields":[{"name":"xs","type":{"type":"array","items":"long"}},{"name":"k","type":"int"}]}"#)
        let reader = try AvroSchema(parsing: #"{"type":"record","name":"R","fields":[{"name":"k","type":"int"}]}"#)
        let resolver = try AvroResolver(writer: writer, reader: reader)
        #expect(try resolver.decode([0x03, 0x04, 0x06, 0x36, 0x00, 0x0e]) == .record([.int(7)]))
    }

    @Test func truncatedAndHostileDataIsRefusedWithoutCrashing() throws {
        let schema = try AvroSchema(parsing: #"{"type":"record","name":"R","fields":[{"name":"s","type":"string"},{"name":"xs","type":{"type":"array","items":"null"}},{"name":"d","type":"double"}]}"#)
        let good = try schema.encode(.record([.string("hello"), .array([.null, .null]), .double(1.5)]))
        for cut in 0..<good.count {
            #expect(throws: EddyError.self) { try schema.decode(Array(good[..<cut])) }
        }
        #expect(throws: EddyError.self) { try schema.decode(good + [0]) }
        // A string claiming to be huge, an array of nulls claiming 2^40 items, a 20-byte varint.
        #expect(throws: EddyError.self) { try schema.decode([0xfe, 0xff, 0xff, 0xff, 0x0f]) }
        #expect(throws: EddyError.self) { try schema.decode([0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]) }
        #expect(throws: EddyError.self) { try schema.decode([UInt8](repeating: 0xff, count: 20)) }
        let boolean = try AvroSchema(parsing: "\"boolean\"")
        #expect(throws: EddyError.self) { try boolean.decode([2]) }
    }

    @Test func randomBytesNeverCrashTheDecoder() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("AvroBinaryTests.randomBytesNeverCrashTheDecoder seed \(seed)")
        var rng = SplitMix(seed: seed)
        let schema = try AvroSchema(parsing: Fixtures.everyTypeSchema)
        for _ in 0..<3000 {
            let count = Int(rng.next() % 64)
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            _ = try? schema.decode(bytes)
        }
    }

    @Test func everyTypeRoundTripsThroughRandomValues() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("AvroBinaryTests.everyTypeRoundTripsThroughRandomValues seed \(seed)")
        var rng = SplitMix(seed: seed)
        let schema = try AvroSchema(parsing: Fixtures.everyTypeSchema)
        for _ in 0..<300 {
            let value = Fixtures.randomEveryTypeValue(&rng)
            let bytes = try schema.encode(value)
            #expect(try schema.decode(bytes) == value)
        }
    }

    @Test func valuesThatDoNotMatchTheSchemaAreRefusedNamingTheField() throws {
        let schema = try AvroSchema(parsing: #"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":{"type":"fixed","name":"F","size":2}}]}"#)
        do {
            _ = try schema.encode(.record([.int(1), .fixed([1, 2, 3])]))
            Issue.record("accepted a fixed of the wrong size")
        } catch let error as EddyError {
            #expect(error.code == .serialization)
            #expect(error.message.contains("R.b"))
        }
        #expect(throws: EddyError.self) { try schema.encode(.record([.string("x"), .fixed([1, 2])])) }
        #expect(throws: EddyError.self) { try schema.encode(.record([.int(1)])) }
    }

    @Test func jsonConversionRoundTrips() throws {
        let schema = try AvroSchema(parsing: Fixtures.everyTypeSchema)
        var rng = SplitMix(seed: 7)
        for _ in 0..<50 {
            let value = Fixtures.randomEveryTypeValue(&rng)
            let json = try schema.json(from: value)
            #expect(try schema.value(fromJSON: json) == value)
        }
    }
}
