import EddyCore
import EddySchema
import Foundation
import Testing

/// Seeded mutation fuzzing of every decoder that reads untrusted bytes or text: each must either
/// decode or throw an `EddyError`, never crash or hang. Sized for a debug build (a few seconds);
/// `EDDY_LONG_TESTS=1` runs ten times more iterations.
@Suite struct DecoderFuzzTests {
    static let scale = ProcessInfo.isLong ? 10 : 1

    static func mutate(_ input: [UInt8], _ rng: inout SplitMix) -> [UInt8] {
        var bytes = input
        for _ in 0..<(1 + Int(rng.next() % 4)) {
            switch rng.next() % 5 {
            case 0 where !bytes.isEmpty: bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
            case 1 where !bytes.isEmpty: bytes.remove(at: Int(rng.next() % UInt64(bytes.count)))
            case 2: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: Int(rng.next() % UInt64(bytes.count + 1)))
            case 3 where !bytes.isEmpty: bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count))))
            default:
                if !bytes.isEmpty { bytes[Int(rng.next() % UInt64(bytes.count))] ^= 0x80 }
            }
        }
        return bytes
    }

    @Test func mutatedAvroDataNeverCrashesTheGenericTypedOrResolvingDecoders() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("DecoderFuzzTests.mutatedAvroData seed \(seed)")
        var rng = SplitMix(seed: seed)
        let schema = try AvroSchema(parsing: Fixtures.everyTypeSchema)
        let reader = try AvroSchema(parsing: Fixtures.everyTypeSchema.replacingOccurrences(of: #"{"name":"i","type":"int"}"#, with: #"{"name":"i","type":"double"},{"name":"extra","type":"string","default":"x"}"#))
        let resolver = try AvroResolver(writer: schema, reader: reader)
        let users = try AvroSchema(parsing: AvroCodableTests.userSchema)
        let userBytes = try AvroEncoder(schema: users).encode(AvroCodableTests.ada)
        var decoded = 0
        for _ in 0..<(1500 * Self.scale) {
            let base = try schema.encode(Fixtures.randomEveryTypeValue(&rng))
            let bytes = Self.mutate(base, &rng)
            if (try? schema.decode(bytes)) != nil { decoded += 1 }
            _ = try? resolver.decode(bytes)
            _ = try? AvroDecoder(schema: users).decode(AvroCodableTests.User.self, from: Self.mutate(userBytes, &rng))
        }
        print("DecoderFuzzTests: \(decoded) mutated inputs still decoded")
    }

    @Test func mutatedJSONSchemaAndProtoTextNeverCrashTheParsers() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("DecoderFuzzTests.mutatedText seed \(seed)")
        var rng = SplitMix(seed: seed)
        let texts = [Fixtures.everyTypeSchema, AvroCodableTests.userSchema, ProtobufSchemaTests.proto,
                     ##"{"type":"object","properties":{"a":{"$ref":"#/$defs/x"}},"$defs":{"x":{"type":"string","pattern":"^a+$"}}}"##]
        for _ in 0..<(800 * Self.scale) {
            let text = String(decoding: Self.mutate(Array(texts[Int(rng.next() % UInt64(texts.count))].utf8), &rng), as: UTF8.self)
            _ = try? JSONValue(parsing: text)
            _ = try? AvroSchema(parsing: text)
            if let schema = try? JSONSchema(parsing: text) { _ = schema.validate(.object([("a", .string("aaa"))])) }
            _ = try? ProtobufSchema(parsing: text)
        }
    }

    @Test func mutatedWireFramesNeverCrashTheSerdes() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("DecoderFuzzTests.mutatedWireFrames seed \(seed)")
        var rng = SplitMix(seed: seed)
        let registry = try SchemaRegistry(storage: InMemorySchemaStorage())
        let schema = try AvroSchema(parsing: AvroCodableTests.userSchema)
        let serde = try AvroSerde<AvroCodableTests.User>(schema: schema, client: registry, topic: "t")
        let generic = try GenericAvroSerde(schema: schema, client: registry, topic: "t")
        let frame = try serde.serialize(AvroCodableTests.ada)
        for _ in 0..<(1500 * Self.scale) {
            let bytes = Self.mutate(frame, &rng)
            _ = try? serde.deserialize(bytes)
            _ = try? generic.deserialize(bytes)
            _ = try? SchemaWireFormat.parseHeader(bytes, hasMessageIndexes: true)
        }
    }
}

extension ProcessInfo {
    /// Whether `EDDY_LONG_TESTS=1` asks for the bigger randomised runs.
    static var isLong: Bool { processInfo.environment["EDDY_LONG_TESTS"] == "1" }
}
