import EddyCore
@testable import EddyTopologies
import Foundation
import Testing

@Suite("JSON values of the registered topologies")
struct JSONValueTests {
    @Test("JSON text keeps member order and number text through a round trip")
    func roundTrip() throws {
        let text = #"{"z":1.10,"a":[true,false,null,"é\n\"",123456789012345678901234567890],"m":{}}"#
        let value = try JSONValueSerde().deserialize(Array(text.utf8))
        #expect(String(decoding: try JSONValueSerde().serialize(value), as: UTF8.self) == text)
        #expect(throws: EddyError.self) { try JSONObjectSerde().deserialize(Array("[1]".utf8)) }
    }

    @Test("mutated and random bytes either decode to JSON that re-reads the same, or throw a serialization error")
    func fuzz() throws {
        var random = SeededGenerator(seed: testSeed("JSONValueSerde fuzz"))
        let seeds = [#"{"a":[1,2.5e-3,{"b":"c\u00e9"}],"d":null,"e":true}"#, #"[-0,"\ud83d\ude00",[]]"#, #""x\\y""#, "12", "{}"]
        var decoded = 0
        for _ in 0..<20_000 {
            var bytes = Array(seeds.randomElement(using: &random)!.utf8)
            if Bool.random(using: &random) {
                bytes = (0..<Int.random(in: 0...24, using: &random)).map { _ in
                    Array(#"{}[]",:0123456789.eE+-\"tfnul "#.utf8).randomElement(using: &random)!
                }
            } else {
                for _ in 0..<Int.random(in: 1...3, using: &random) where !bytes.isEmpty {
                    let i = Int.random(in: 0..<bytes.count, using: &random)
                    switch Int.random(in: 0..<3, using: &random) {
                    case 0: bytes[i] = UInt8.random(in: 0...255, using: &random)
                    case 1: bytes.remove(at: i)
                    default: bytes.insert(UInt8.random(in: 0...255, using: &random), at: i)
                    }
                }
            }
            // Foundation's parser is the reference, except that it refuses numbers beyond a
            // Double's range (`1E400`), which JSON's grammar allows and the topologies pass on,
            // and that it takes NUL bytes around a value (`1\0`) and trailing commas (`[1,]`),
            // which are not JSON.
            let compact = String(decoding: bytes.filter { ![0x20, 0x0A, 0x0D, 0x09].contains($0) }, as: UTF8.self)
            let lenient = bytes.contains(0) || compact.contains(",]") || compact.contains(",}")
            let foundation = !lenient
                && (try? JSONSerialization.jsonObject(with: Data(bytes), options: .fragmentsAllowed)) != nil
            let exponent = bytes.contains(UInt8(ascii: "e")) || bytes.contains(UInt8(ascii: "E"))
            do {
                let value = try JSONValueSerde().deserialize(bytes)
                let text = try JSONValueSerde().serialize(value)
                #expect(try JSONValueSerde().deserialize(text) == value, "\(bytes)")
                // Lenient inputs have no reference verdict (",}" may also sit inside a string).
                #expect(foundation || exponent || lenient,
                        "accepted, but Foundation refuses: \(String(decoding: bytes, as: UTF8.self))")
                decoded += 1
            } catch let error as EddyError {
                #expect(error.code == .serialization)
                #expect(!foundation, "refused, but Foundation accepts: \(bytes)")
            }
        }
        #expect(decoded > 100)
    }
}
