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

    @Test("the window store answers like its byte store, for restored and new windows, across commits and evictions")
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
                case 1...4: try store.put(key, windowStart: start, Int64.random(in: -100...100, using: &rng))
                case 5: try store.removeWindows(startingBefore: time - 50 + 1)
                case 6: try bytes.commit()
                default: break
                }
                for probe in keys {
                    for s in stride(from: max(0, start - 30), through: start + 30, by: 10) {
                        let expected = try bytes.fetch(Array(probe.utf8), windowStart: s).map { try int64.deserialize($0) }
                        let got = try store.fetch(probe, windowStart: s)
                        #expect(got == expected, "step \(step): \(probe)@\(s) is \(String(describing: got)), byte store has \(String(describing: expected))")
                        if got != expected { return }
                    }
                }
            }
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
