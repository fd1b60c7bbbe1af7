import EddyCore
@testable import EddyStreams
import Testing

@Suite("Serdes")
struct SerdesTests {
    @Test("numeric serdes write big-endian bytes like Kafka's and read them back")
    func numericBytes() throws {
        #expect(try Int64Serde().serialize(1) == [0, 0, 0, 0, 0, 0, 0, 1])
        #expect(try Int64Serde().serialize(-2) == [255, 255, 255, 255, 255, 255, 255, 254])
        #expect(try Int32Serde().serialize(258) == [0, 0, 1, 2])
        #expect(try IntSerde().serialize(256) == [0, 0, 0, 0, 0, 0, 1, 0])
        #expect(try DoubleSerde().serialize(1.0) == [0x3f, 0xf0, 0, 0, 0, 0, 0, 0])
        for v: Int64 in [0, 1, -1, .max, .min, 1 << 40] { #expect(try Int64Serde().deserialize(Int64Serde().serialize(v)) == v) }
        for v: Int32 in [0, -1, .max, .min] { #expect(try Int32Serde().deserialize(Int32Serde().serialize(v)) == v) }
        for v in [0.0, -1.5, .infinity, 3.14159] { #expect(try DoubleSerde().deserialize(DoubleSerde().serialize(v)) == v) }
    }

    @Test("wrong lengths and invalid UTF-8 throw serialization errors")
    func badBytes() {
        #expect(throws: EddyError.self) { try Int64Serde().deserialize([1, 2, 3]) }
        #expect(throws: EddyError.self) { try Int32Serde().deserialize([1]) }
        #expect(throws: EddyError.self) { try StringSerde().deserialize([0xff, 0xfe]) }
        #expect(throws: EddyError.self) { try JSONSerde<[String: Int]>().deserialize(Array("{nope".utf8)) }
    }

    @Test("the buffer forms of the serdes give the same bytes and values as the array forms")
    func bufferForms() throws {
        func check<S: Serde>(_ serde: S, _ values: [S.Value], sameAs equal: (S.Value, S.Value) -> Bool) throws {
            for value in values {
                let bytes = try serde.serialize(value)
                var buffer: [UInt8] = [42]
                try serde.serialize(value, appendingTo: &buffer)
                #expect(buffer == [42] + bytes)
                let back = try bytes.withUnsafeBytes { try serde.deserialize(from: $0) }
                #expect(equal(back, try serde.deserialize(bytes)))
            }
        }
        try check(StringSerde(), ["", "user-42", "grüße", "日本", String(repeating: "x", count: 100)], sameAs: ==)
        try check(Int64Serde(), [0, -1, .max, .min, 1 << 40], sameAs: ==)
        try check(IntSerde(), [0, -7, .max], sameAs: ==)
        try check(Int32Serde(), [0, -7, .max], sameAs: ==)
        try check(DoubleSerde(), [0, -1.5, .infinity], sameAs: ==)
        try check(BytesSerde(), [[], [1, 2, 3]], sameAs: ==)
        try check(AnySerde(StringSerde()), ["a", "ü"], sameAs: ==)
        try check(Serdes.optional(Serdes.int64), [5], sameAs: ==)
        try check(Serdes.json([String: Int].self), [["a": 1]], sameAs: ==)
        let bad: [[UInt8]] = [[1, 2, 3], [0xff, 0xfe]]
        #expect(throws: EddyError.self) { try bad[0].withUnsafeBytes { try Int64Serde().deserialize(from: $0) } }
        #expect(throws: EddyError.self) { try bad[0].withUnsafeBytes { try DoubleSerde().deserialize(from: $0) } }
        #expect(throws: EddyError.self) { try bad[1].withUnsafeBytes { try StringSerde().deserialize(from: $0) } }
    }

    @Test("JSON round-trips Codable values with sorted keys")
    func json() throws {
        struct Order: Codable, Equatable, Sendable { var id: String; var amount: Int }
        let serde = Serdes.json(Order.self)
        let bytes = try serde.serialize(Order(id: "o1", amount: 5))
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"amount":5,"id":"o1"}"#)
        #expect(try serde.deserialize(bytes) == Order(id: "o1", amount: 5))
    }

    @Test("windowed serdes put the window after the inner key")
    func windowed() throws {
        let tw = Serdes.timeWindowed(Serdes.string, windowSize: 10)
        let key = Windowed(key: "ab", window: Window(start: 20, end: 30))
        let bytes = try tw.serialize(key)
        #expect(bytes == [97, 98, 0, 0, 0, 0, 0, 0, 0, 20])
        #expect(try tw.deserialize(bytes) == key)
        let sw = Serdes.sessionWindowed(Serdes.string)
        let skey = Windowed(key: "ab", window: Window(start: 5, end: 9))
        #expect(try sw.deserialize(sw.serialize(skey)) == skey)
        #expect(throws: EddyError.self) { try sw.deserialize([1, 2]) }
    }

    @Test("the optional serde stands for nulls")
    func optional() throws {
        let serde = Serdes.optional(Serdes.string)
        #expect(serde.nullValue == nil)
        #expect(serde.isNull(nil))
        #expect(!serde.isNull("x"))
        #expect(try serde.deserialize(Array("x".utf8)) == "x")
        #expect(Nullability<String?>.of(serde) != nil)
        #expect(Nullability<String>.of(Serdes.string) == nil)
        #expect(Nullability<String?>.of(AnySerde(serde)) != nil)
    }
}
