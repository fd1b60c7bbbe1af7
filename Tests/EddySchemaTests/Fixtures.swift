import EddySchema
import Foundation

/// A small seeded generator (SplitMix64) so randomised tests replay from their printed seed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

enum Fixtures {
    /// A record that uses every Avro type, named types, namespaces and logical types.
    static let everyTypeSchema = """
    {"type":"record","name":"Every","namespace":"eddy.test","fields":[
      {"name":"n","type":"null"},
      {"name":"b","type":"boolean"},
      {"name":"i","type":"int"},
      {"name":"l","type":"long"},
      {"name":"f","type":"float"},
      {"name":"d","type":"double"},
      {"name":"by","type":"bytes"},
      {"name":"s","type":"string"},
      {"name":"e","type":{"type":"enum","name":"Suit","symbols":["SPADES","HEARTS","DIAMONDS","CLUBS"]}},
      {"name":"a","type":{"type":"array","items":"long"}},
      {"name":"m","type":{"type":"map","values":"string"}},
      {"name":"u","type":["null","string","long"]},
      {"name":"fx","type":{"type":"fixed","name":"MD5","size":16}},
      {"name":"sub","type":{"type":"record","name":"Sub","fields":[{"name":"x","type":"int"},{"name":"tags","type":{"type":"array","items":"string"}}]}},
      {"name":"subs","type":{"type":"array","items":"Sub"}},
      {"name":"date","type":{"type":"int","logicalType":"date"}},
      {"name":"tms","type":{"type":"int","logicalType":"time-millis"}},
      {"name":"tus","type":{"type":"long","logicalType":"time-micros"}},
      {"name":"tsms","type":{"type":"long","logicalType":"timestamp-millis"}},
      {"name":"tsus","type":{"type":"long","logicalType":"timestamp-micros"}},
      {"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
      {"name":"uuid","type":{"type":"string","logicalType":"uuid"}},
      {"name":"optsub","type":["null","Sub"]}
    ]}
    """

    static func randomString<R: RandomNumberGenerator>(_ rng: inout R) -> String {
        let alphabet = Array("abcXYZ 09_é€😀")
        return String((0..<Int(rng.next() % 8)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
    }

    static func randomSub<R: RandomNumberGenerator>(_ rng: inout R) -> AvroValue {
        .record([.int(Int32(truncatingIfNeeded: rng.next())), .array((0..<Int(rng.next() % 3)).map { _ in .string(randomString(&rng)) })])
    }

    static func randomEveryTypeValue<R: RandomNumberGenerator>(_ rng: inout R) -> AvroValue {
        let union: AvroValue
        switch rng.next() % 3 {
        case 0: union = .union(0, .null)
        case 1: union = .union(1, .string(randomString(&rng)))
        default: union = .union(2, .long(Int64(bitPattern: rng.next())))
        }
        var map: [String: AvroValue] = [:]
        for _ in 0..<Int(rng.next() % 4) { map[randomString(&rng)] = .string(randomString(&rng)) }
        return .record([
            .null,
            .boolean(rng.next() % 2 == 0),
            .int(Int32(truncatingIfNeeded: rng.next())),
            .long(Int64(bitPattern: rng.next())),
            .float(Float(Int32(truncatingIfNeeded: rng.next())) / 7),
            .double(Double(Int64(bitPattern: rng.next())) / 3),
            .bytes((0..<Int(rng.next() % 10)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }),
            .string(randomString(&rng)),
            .enumeration(Int(rng.next() % 4)),
            .array((0..<Int(rng.next() % 5)).map { _ in .long(Int64(bitPattern: rng.next()) >> Int(rng.next() % 63)) }),
            .map(map),
            union,
            .fixed((0..<16).map { _ in UInt8(truncatingIfNeeded: rng.next()) }),
            randomSub(&rng),
            .array((0..<Int(rng.next() % 3)).map { _ in randomSub(&rng) }),
            .int(Int32(rng.next() % 40000)),
            .int(Int32(rng.next() % 86_400_000)),
            .long(Int64(rng.next() % 86_400_000_000)),
            .long(Int64(rng.next() % 4_000_000_000_000)),
            .long(Int64(rng.next() % 4_000_000_000_000_000)),
            .bytes([0x01, 0x02, UInt8(truncatingIfNeeded: rng.next())]),
            .string("0b7f0d0e-3c64-4c2a-9d3b-6b0f2b1c9e5\(rng.next() % 10)"),
            rng.next() % 2 == 0 ? .union(0, .null) : .union(1, randomSub(&rng)),
        ])
    }
}

/// Runs blocking work (a synchronous HTTP client, a child process) on its own thread, so it does
/// not hold one of the few cooperative-pool threads the in-process server needs to answer.
func offThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
        }
        thread.start()
    }
}
