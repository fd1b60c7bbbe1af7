import EddyCore
import EddyState
import Testing

@Suite("Window store conformance")
struct WindowStoreConformanceTests {
    private func starts(_ entries: [WindowEntry]) -> [Timestamp] { entries.map(\.windowStart) }
    private func pairs(_ entries: [WindowEntry]) -> [String] { entries.map { "\(text($0.key))@\($0.windowStart)" } }

    @Test("a window is written, read, overwritten and removed", arguments: Implementation.allCases)
    func putAndFetch(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try fixture.windowStore(retention: 10_000, segmentInterval: 1_000)
        #expect(store.observedStreamTime == nil)
        try store.put(bytes("k"), windowStart: 100, value: bytes("1"))
        #expect(try store.fetch(bytes("k"), windowStart: 100) == bytes("1"))
        #expect(try store.fetch(bytes("k"), windowStart: 101) == nil)
        #expect(try store.fetch(bytes("other"), windowStart: 100) == nil)
        try store.commit()
        try store.put(bytes("k"), windowStart: 100, value: bytes("2"))
        #expect(try store.fetch(bytes("k"), windowStart: 100) == bytes("2"))
        try store.commit()
        try store.put(bytes("k"), windowStart: 100, value: nil)
        #expect(try store.fetch(bytes("k"), windowStart: 100) == nil)
        #expect(try store.all().isEmpty)
        try store.commit()
        #expect(try store.fetch(bytes("k"), windowStart: 100) == nil)
        #expect(store.observedStreamTime == 100)
    }

    @Test("fetching one key over a time range includes both ends", arguments: Implementation.allCases)
    func timeRangeBounds(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try fixture.windowStore(retention: 100_000, segmentInterval: 1_000)
        for start: Timestamp in [0, 500, 999, 1_000, 1_500, 2_000, 7_000] {
            try store.put(bytes("k"), windowStart: start, value: bytes("\(start)"))
        }
        try store.put(bytes("j"), windowStart: 1_000, value: bytes("other key"))
        try store.commit()
        #expect(try starts(store.fetch(bytes("k"), from: 500, to: 1_500)) == [500, 999, 1_000, 1_500])
        #expect(try starts(store.fetch(bytes("k"), from: 501, to: 1_499)) == [999, 1_000])
        #expect(try starts(store.fetch(bytes("k"), from: 1_000, to: 1_000)) == [1_000])
        #expect(try starts(store.fetch(bytes("k"), from: 1_001, to: 1_499)) == [])
        #expect(try starts(store.fetch(bytes("k"), from: 2_000, to: 1_000)) == [])  // inverted
        #expect(try starts(store.fetch(bytes("k"), from: .min, to: .max)) == [0, 500, 999, 1_000, 1_500, 2_000, 7_000])
        #expect(try starts(store.fetch(bytes("k"), from: 0, to: 7_000, reverse: true, limit: .max)) == [7_000, 2_000, 1_500, 1_000, 999, 500, 0])
        #expect(try starts(store.fetch(bytes("k"), from: 0, to: 7_000, reverse: false, limit: 2)) == [0, 500])
        #expect(try starts(store.fetch(bytes("k"), from: 0, to: 7_000, reverse: true, limit: 2)) == [7_000, 2_000])
        #expect(try store.fetch(bytes("k"), from: 0, to: 0).map { text($0.value) } == ["0"])
    }

    @Test("a key's windows never include keys that merely share its bytes", arguments: Implementation.allCases)
    func keysArePrefixFree(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try fixture.windowStore(retention: 100_000, segmentInterval: 10_000)
        let keys: [[UInt8]] = [[0x61], [0x61, 0x00], [0x61, 0x00, 0x00], [0x61, 0x01], [0x61, 0x62]]
        for key in keys {
            for start: Timestamp in [0, 1, 256] { try store.put(key, windowStart: start, value: key) }
        }
        try store.commit()
        for key in keys {
            let entries = try store.fetch(key, from: 0, to: 1_000)
            #expect(entries.map(\.key) == [key, key, key])
            #expect(entries.map(\.windowStart) == [0, 1, 256])
        }
    }

    @Test("fetching a key range over a time range includes both key ends and both time ends",
          arguments: Implementation.allCases)
    func keyRangeFetch(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try fixture.windowStore(retention: 100_000, segmentInterval: 1_000)
        for key in ["a", "b", "bb", "c", "d"] {
            for start: Timestamp in [100, 1_100, 2_100] {
                try store.put(bytes(key), windowStart: start, value: bytes(key))
            }
        }
        try store.commit()
        #expect(try pairs(store.fetch(keyFrom: bytes("b"), keyTo: bytes("c"), from: 1_100, to: 2_100))
                == ["b@1100", "bb@1100", "c@1100", "b@2100", "bb@2100", "c@2100"])
        #expect(try pairs(store.fetch(keyFrom: bytes("b"), keyTo: bytes("b"), from: 0, to: 200)) == ["b@100"])
        #expect(try pairs(store.fetch(keyFrom: bytes("c"), keyTo: bytes("b"), from: 0, to: 5_000)) == [])
        #expect(try pairs(store.fetch(keyFrom: bytes("a"), keyTo: bytes("d"), from: 101, to: 1_099)) == [])
        #expect(try store.fetch(keyFrom: bytes("a"), keyTo: bytes("d"), from: 0, to: 5_000, limit: 4).count == 4)
        #expect(try store.all().count == 15)
    }

    @Test("negative and extreme timestamps keep their order", arguments: Implementation.allCases)
    func negativeTimestamps(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try fixture.windowStore(retention: .max, segmentInterval: 1_000)
        for start: Timestamp in [-5_000, -1, 0, 1, 3_000] {
            try store.put(bytes("k"), windowStart: start, value: [1])
        }
        try store.commit()
        #expect(try starts(store.fetch(bytes("k"), from: .min, to: .max)) == [-5_000, -1, 0, 1, 3_000])
        #expect(try starts(store.fetch(bytes("k"), from: -1, to: 0)) == [-1, 0])
    }

    @Test("uncommitted writes and removals are merged into fetches", arguments: Implementation.allCases)
    func mergedFetches(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try fixture.windowStore(retention: 100_000, segmentInterval: 1_000)
        for start: Timestamp in [0, 1_000, 2_000] { try store.put(bytes("k"), windowStart: start, value: bytes("c")) }
        try store.commit()
        try store.put(bytes("k"), windowStart: 1_000, value: nil)
        try store.put(bytes("k"), windowStart: 1_500, value: bytes("u"))
        try store.put(bytes("k"), windowStart: 2_000, value: bytes("u"))
        #expect(try store.fetch(bytes("k"), from: 0, to: 5_000).map { "\($0.windowStart)\(text($0.value))" }
                == ["0c", "1500u", "2000u"])
        #expect(try starts(store.fetch(bytes("k"), from: 0, to: 5_000, reverse: true, limit: .max)) == [2_000, 1_500, 0])
        store.abort()
        #expect(try starts(store.fetch(bytes("k"), from: 0, to: 5_000)) == [0, 1_000, 2_000])
    }

    @Test("windows older than the retention expire, whole segments at a time", arguments: Implementation.allCases)
    func retentionExpiry(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        var store = try fixture.windowStore(retention: 3_000, segmentInterval: 1_000)
        for start: Timestamp in stride(from: 0, through: 4_500, by: 500) {
            try store.put(bytes("k"), windowStart: start, value: [1])
        }
        // Stream time 4_500: live windows start at 4_500 - 3_000 + 1 = 1_501 or later.
        #expect(store.observedStreamTime == 4_500)
        #expect(try starts(store.fetch(bytes("k"), from: 0, to: 10_000)) == [2_000, 2_500, 3_000, 3_500, 4_000, 4_500])
        #expect(try store.fetch(bytes("k"), windowStart: 1_500) == nil)
        #expect(try store.all().count == 6)
        try store.commit()
        #expect(try starts(store.fetch(bytes("k"), from: 0, to: 10_000)) == [2_000, 2_500, 3_000, 3_500, 4_000, 4_500])
        // A write of an expired window is ignored.
        try store.put(bytes("k"), windowStart: 1_000, value: [2])
        #expect(try store.fetch(bytes("k"), windowStart: 1_000) == nil)
        // Exactly at the boundary: streamTime - retention is expired, + 1 is live.
        try store.put(bytes("k"), windowStart: 1_500, value: [3])
        try store.put(bytes("k"), windowStart: 1_501, value: [3])
        #expect(try store.fetch(bytes("k"), windowStart: 1_500) == nil)
        #expect(try store.fetch(bytes("k"), windowStart: 1_501) == [3])
        try store.commit()
        // Advancing stream time drops further segments.
        try store.put(bytes("other"), windowStart: 6_000, value: [4])
        #expect(try starts(store.fetch(bytes("k"), from: 0, to: 10_000)) == [3_500, 4_000, 4_500])
        try store.commit()
        #expect(try store.all().count == 4)

        if implementation == .rocksDB {
            // Committed expiry survives a reopen; the raw data of dropped segments is gone, not filtered.
            store.close()
            try fixture.reopen()
            store = try fixture.windowStore(retention: 3_000, segmentInterval: 1_000)
            #expect(store.observedStreamTime == 6_000)
            #expect(try store.all().count == 4)
            store.close()
            // Segments below 3 (minimum live time 3_001) were range-deleted; segment 3 still holds
            // the expired 3_000, hidden by reads until its whole segment expires.
            let raw = try fixture.directory!.keyValueStore(named: "windows")
            #expect(try raw.all().count == 5)  // 3_000, 3_500 | 4_000, 4_500 | 6_000
        }
    }

    @Test("abort restores the stream time and undoes expiry", arguments: Implementation.allCases)
    func abortUndoesExpiry(_ implementation: Implementation) throws {
        let fixture = try StoreFixture(implementation)
        let store = try fixture.windowStore(retention: 1_000, segmentInterval: 500)
        try store.put(bytes("k"), windowStart: 0, value: [1])
        try store.commit()
        try store.put(bytes("k"), windowStart: 5_000, value: [2])
        #expect(try store.fetch(bytes("k"), windowStart: 0) == nil)
        store.abort()
        #expect(store.observedStreamTime == 0)
        #expect(try store.fetch(bytes("k"), windowStart: 0) == [1])
    }
}
