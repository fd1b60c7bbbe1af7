import EddyCore
import EddyState
@testable import EddyStreams
import Foundation
import Testing

/// The caches of the persistent task stores must never answer differently from the byte
/// stores under them.
@Suite("Persistent task stores and their caches")
struct PersistentTaskStoreTests {
    static func seed(_ test: String) -> UInt64 {
        let seed = ProcessInfo.processInfo.environment["EDDY_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 0...UInt64.max)
        print("\(test) seed: \(seed) (replay with EDDY_SEED=\(seed))")
        return seed
    }

    static func withDirectory(_ body: (TaskStateDirectory) throws -> Void) throws {
        let path = NSTemporaryDirectory() + "eddy-persistent-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let directory = try TaskStateDirectory(stateDirectory: path, application: "app", task: "0_0",
                                               environment: try RocksDBEnvironment())
        defer { directory.close() }
        try body(directory)
    }

    @Test("the window store answers like its byte store after each write-back, for restored and new windows, across commits and evictions")
    func windowStoreMatchesByteStore() throws {
        var rng = SeededGenerator(seed: Self.seed("windowStoreMatchesByteStore"))
        try Self.withDirectory { directory in
            let bytes = try directory.windowStore(named: "w", retentionMilliseconds: 50)
            let int64 = Int64Serde()
            // Windows 0...20 exist before the wrapper opens (as after a restoration).
            for start in stride(from: Int64(0), through: 20, by: 10) {
                for key in ["a", "b"] { try bytes.put(Array(key.utf8), windowStart: start, value: try int64.serialize(start + 1)) }
            }
            try bytes.commit()
            let store = PersistentTaskWindowStore<String, Int64>(bytes, windowSize: 10, keySerde: AnySerde(Serdes.string),
                                                                 valueSerde: AnySerde(Serdes.int64))
            let keys = ["a", "b", "c", "d"]
            var time: Int64 = 0
            for step in 0..<3_000 {
                time += Int64.random(in: 0...2, using: &rng)
                let start = max(0, (time - Int64.random(in: 0...60, using: &rng)) / 10 * 10)
                let key = keys.randomElement(using: &rng)!
                switch Int.random(in: 0..<10, using: &rng) {
                case 0: try store.put(key, windowStart: start, nil)
                case 1...3: try store.put(key, windowStart: start, Int64.random(in: -100...100, using: &rng))
                case 4: _ = try store.update(key, windowStart: start) { ($0 ?? 0) + 1 }
                case 5: try store.removeWindows(startingBefore: time - 50 + 1)
                case 6:
                    try store.writeBack()
                    try bytes.commit()
                default: break
                }
                // Changes reach the byte store at write-backs: between them the wrapper answers
                // from its cache, and a write-back must not change any answer.
                guard Int.random(in: 0..<4, using: &rng) == 0 else { continue }
                let probes = keys.flatMap { probe in stride(from: max(0, start - 30), through: start + 30, by: 10).map { (probe, $0) } }
                let before = try probes.map { try store.fetch($0.0, windowStart: $0.1) }
                try store.writeBack()
                for ((probe, s), cached) in zip(probes, before) {
                    let expected = try bytes.fetch(Array(probe.utf8), windowStart: s).map { try int64.deserialize($0) }
                    let got = try store.fetch(probe, windowStart: s)
                    #expect(got == expected, "step \(step): \(probe)@\(s) is \(String(describing: got)), byte store has \(String(describing: expected))")
                    #expect(cached == got, "step \(step): \(probe)@\(s) was \(String(describing: cached)) before the write-back, \(String(describing: got)) after")
                    if got != expected || cached != got { return }
                }
            }
        }
    }

    @Test("a write-back writes only the latest value per key and window, and nothing for windows the retention has passed")
    func writeBackSkipsExpiredWindows() throws {
        try Self.withDirectory { directory in
            let bytes = try directory.windowStore(named: "w", retentionMilliseconds: 20)
            let store = PersistentTaskWindowStore<String, Int64>(bytes, windowSize: 10, keySerde: AnySerde(Serdes.string),
                                                                 valueSerde: AnySerde(Serdes.int64))
            for start in stride(from: Int64(0), through: 100, by: 10) {
                for round in 0..<3 { _ = try store.update("k", windowStart: start) { ($0 ?? 0) + Int64(round + 1) } }
            }
            #expect(!bytes.hasUncommittedChanges)
            #expect(try store.fetch("k", windowStart: 100) == 6)
            #expect(try store.fetch("k", windowStart: 80) == nil)  // passed by the retention
            try store.writeBack()
            // Live windows: starts above 100 - 20. Only 90 and 100 are written.
            let written = try bytes.all().map { ($0.windowStart, try Int64Serde().deserialize($0.value)) }
            #expect(written.map(\.0) == [90, 100])
            #expect(written.map(\.1) == [6, 6])
            try bytes.commit()
            try store.writeBack()
            #expect(!bytes.hasUncommittedChanges)  // nothing changed since
            try store.put("k", windowStart: 100, nil)
            try store.writeBack()
            #expect(try bytes.fetch(Array("k".utf8), windowStart: 100) == nil)
            #expect(try store.fetch("k", windowStart: 100) == nil)
        }
    }

    @Test("an oversized key or a failing serde fails the update that causes it, not a later write-back")
    func writeBackErrorsFailTheRecord() throws {
        struct Refusing: Serde {
            func serialize(_ value: Int64) throws -> [UInt8] {
                guard value >= 0 else { throw EddyError(.serialization, "negative \(value)") }
                return try Int64Serde().serialize(value)
            }
            func deserialize(_ bytes: [UInt8]) throws -> Int64 { try Int64Serde().deserialize(bytes) }
        }
        try Self.withDirectory { directory in
            let bytes = try directory.windowStore(named: "w", retentionMilliseconds: 20)
            let store = PersistentTaskWindowStore<String, Int64>(bytes, windowSize: 10, keySerde: AnySerde(Serdes.string),
                                                                 valueSerde: AnySerde(Refusing()))
            let huge = String(repeating: "x", count: StateLimits.maximumKeyBytes + 1)
            #expect(throws: EddyError.self) { try store.put(huge, windowStart: 0, 1) }
            #expect(throws: EddyError.self) { _ = try store.update("k", windowStart: 0) { _ in -1 } }
            #expect(try store.fetch("k", windowStart: 0) == nil)
            _ = try store.update("k", windowStart: 0) { _ in 2 }
            try store.writeBack()
            #expect(try bytes.all().count == 1)
            // The emit-final path: a failing aggregator or serde leaves the window as it was,
            // for a new key and for an existing one.
            struct Refused: Error {}
            #expect(throws: EddyError.self) { try store.accumulate("new", windowStart: 10) { _ in -1 } }
            #expect(throws: Refused.self) { try store.accumulate("new", windowStart: 10) { _ in throw Refused() } }
            #expect(try store.fetch("new", windowStart: 10) == nil)
            try store.accumulate("new", windowStart: 10) { old in (old ?? 0) + 5 }
            #expect(throws: EddyError.self) { try store.accumulate("new", windowStart: 10) { _ in -1 } }
            #expect(try store.fetch("new", windowStart: 10) == 5)
            try store.accumulate("new", windowStart: 10) { old in (old ?? 0) + 1 }
            #expect(try store.fetch("new", windowStart: 10) == 6)
            try store.writeBack()
            #expect(try bytes.fetch(Array("new".utf8), windowStart: 10).map { try Int64Serde().deserialize($0) } == 6)
        }
    }

    @Test("cached windows list their keys in byte order, also when the keys share long prefixes or are prefixes of each other")
    func sortedIndicesFollowByteOrder() {
        var rng = SeededGenerator(seed: Self.seed("sortedIndicesFollowByteOrder"))
        for round in 0..<200 {
            let shared = Array("user-".utf8).prefix(Int.random(in: 0...5, using: &rng))
            let keys: [[UInt8]] = (0..<Int.random(in: 0...60, using: &rng)).map { _ in
                Array(shared) + (0..<Int.random(in: 0...12, using: &rng)).map { _ in UInt8.random(in: 0...3, using: &rng) }
            }
            let sorted = StoreBytes.sortedIndices(keys).map { keys[$0] }
            let expected = keys.sorted { StoreBytes.less($0, $1) }
            #expect(sorted == expected, "round \(round)")
            if sorted != expected { return }
        }
    }

    @Test("the key-value store answers like its byte store through puts, deletes and commits")
    func keyValueStoreMatchesByteStore() throws {
        var rng = SeededGenerator(seed: Self.seed("keyValueStoreMatchesByteStore"))
        try Self.withDirectory { directory in
            let bytes = try directory.keyValueStore(named: "kv")
            try bytes.put(Array("a".utf8), Array("restored".utf8))
            try bytes.commit()
            let store = PersistentTaskKeyValueStore<String, String>(bytes, keySerde: AnySerde(Serdes.string),
                                                                    valueSerde: AnySerde(Serdes.string))
            let keys = (0..<8).map { "k\($0)" } + ["a"]
            for step in 0..<2_000 {
                let key = keys.randomElement(using: &rng)!
                switch Int.random(in: 0..<6, using: &rng) {
                case 0: try store.delete(key)
                case 1: try store.put(key, nil)
                case 2, 3: try store.put(key, "v\(step)")
                case 4: try bytes.commit()
                default: break
                }
                for probe in keys {
                    let expected = try bytes.get(Array(probe.utf8)).map { String(decoding: $0, as: UTF8.self) }
                    let got = try store.get(probe)
                    #expect(got == expected, "step \(step): \(probe) is \(String(describing: got)), byte store has \(String(describing: expected))")
                    if got != expected { return }
                }
            }
        }
    }
}
