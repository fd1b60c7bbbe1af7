import EddyCore
import EddyState
import Testing

/// Test serdes: UTF-8 strings and big-endian integers (whose bytes sort like their values).
struct UTF8Serde: Serde {
    func serialize(_ value: String) throws -> [UInt8] { Array(value.utf8) }
    func deserialize(_ bytes: [UInt8]) throws -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw EddyError(.serialization, "not UTF-8") }
        return text
    }
}

struct BigEndianUInt32Serde: Serde {
    func serialize(_ value: UInt32) throws -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }
    func deserialize(_ bytes: [UInt8]) throws -> UInt32 {
        guard bytes.count == 4 else { throw EddyError(.serialization, "expected 4 bytes, got \(bytes.count)") }
        return bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }
}

@Suite("Typed store views")
struct TypedKeyValueStoreTests {
    @Test("a typed key-value view round-trips values and ranges through its serdes", arguments: Implementation.allCases)
    func typedKeyValue(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let counts = TypedKeyValueStore(try fixture.keyValueStore(), keySerde: BigEndianUInt32Serde(), valueSerde: UTF8Serde())
        for key: UInt32 in [300, 1, 70_000, 2] { try counts.put(key, "v\(key)") }
        #expect(try counts.get(300) == "v300")
        #expect(try counts.putIfAbsent(1, "other") == "v1")
        #expect(try counts.range(from: 2, to: 70_000).map(\.key) == [2, 300])
        #expect(try counts.delete(2) == "v2")
        try counts.store.commit()
        #expect(try counts.all().map(\.key) == [1, 300, 70_000])
        try counts.store.put([1, 2], [0xFF])
        #expect(throws: EddyError.self) { _ = try counts.all() }
    }

    @Test("a typed window view round-trips through its serdes", arguments: Implementation.allCases)
    func typedWindow(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let windows = TypedWindowStore(try fixture.windowStore(retention: 10_000, segmentInterval: 1_000),
                                       keySerde: UTF8Serde(), valueSerde: BigEndianUInt32Serde())
        try windows.put("clicks", windowStart: 1_000, value: 3)
        try windows.put("clicks", windowStart: 2_000, value: 5)
        #expect(try windows.fetch("clicks", windowStart: 2_000) == 5)
        #expect(try windows.fetch("clicks", from: 0, to: 5_000).map(\.value) == [3, 5])
    }
}
