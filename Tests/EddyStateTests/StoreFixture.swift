import EddyCore
import EddyState
import Foundation

/// The store implementations every conformance test runs against.
enum Implementation: String, CaseIterable, CustomStringConvertible, Sendable {
    case rocksDB, inMemory
    var description: String { rawValue }
}

/// A temporary state directory and the stores of one test, for either implementation.
/// RocksDB stores live in `<tmp>/app/0_0`; `reopen()` closes and reopens that directory.
final class StoreFixture {
    let implementation: Implementation
    let root: String
    let environment: RocksDBEnvironment
    let logLines = LogLines()
    private(set) var directory: TaskStateDirectory?

    init(_ implementation: Implementation, configuration: RocksDBConfiguration = StoreFixture.smallConfiguration) throws {
        self.implementation = implementation
        root = NSTemporaryDirectory() + "eddy-state-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let lines = logLines
        environment = try RocksDBEnvironment(configuration: configuration) { lines.append($0) }
        if implementation == .rocksDB { directory = try openDirectory() }
    }

    static var smallConfiguration: RocksDBConfiguration {
        RocksDBConfiguration(blockCacheBytes: 8 << 20, writeBufferBytes: 8 << 20, backgroundThreads: 1)
    }

    func openDirectory() throws -> TaskStateDirectory {
        try TaskStateDirectory(stateDirectory: root, application: "app", task: "0_0", environment: environment)
    }

    /// Closes the RocksDB directory (stores must be closed by the caller) and opens it again.
    func reopen() throws {
        directory?.close()
        directory = try openDirectory()
    }

    var taskPath: String { "\(root)/app/0_0" }

    func keyValueStore(_ name: String = "kv", changelog: TopicPartition? = nil) throws -> any KeyValueStore {
        switch implementation {
        case .rocksDB: return try directory!.keyValueStore(named: name, changelog: changelog)
        case .inMemory: return try InMemoryKeyValueStore(name: name, changelog: changelog)
        }
    }

    func windowStore(_ name: String = "windows", retention: Int64, segmentInterval: Int64,
                     changelog: TopicPartition? = nil) throws -> any WindowStore {
        switch implementation {
        case .rocksDB:
            return try directory!.windowStore(named: name, retentionMilliseconds: retention,
                                              segmentIntervalMilliseconds: segmentInterval, changelog: changelog)
        case .inMemory:
            return try InMemoryWindowStore(name: name, retentionMilliseconds: retention,
                                           segmentIntervalMilliseconds: segmentInterval, changelog: changelog)
        }
    }

    func sessionStore(_ name: String = "sessions", retention: Int64, segmentInterval: Int64,
                      changelog: TopicPartition? = nil) throws -> any SessionStore {
        switch implementation {
        case .rocksDB:
            return try directory!.sessionStore(named: name, retentionMilliseconds: retention,
                                               segmentIntervalMilliseconds: segmentInterval, changelog: changelog)
        case .inMemory:
            return try InMemorySessionStore(name: name, retentionMilliseconds: retention,
                                            segmentIntervalMilliseconds: segmentInterval, changelog: changelog)
        }
    }

    deinit {
        directory?.close()
        try? FileManager.default.removeItem(atPath: root)
    }
}

/// Log lines captured from a ``RocksDBEnvironment``.
final class LogLines: @unchecked Sendable {
    // @unchecked Sendable: guarded by `lock`.
    private let lock = NSLock()
    private var storage: [String] = []
    func append(_ line: String) { lock.withLock { storage.append(line) } }
    var lines: [String] { lock.withLock { storage } }
}

/// SplitMix64: a small seeded generator, so randomised tests replay from their printed seed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The seed of a randomised test: `EDDY_SEED` if set, else a fresh one. Printed either way.
func testSeed(_ test: String) -> UInt64 {
    let seed = ProcessInfo.processInfo.environment["EDDY_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max / 2)
    print("\(test): seed \(seed) (replay with EDDY_SEED=\(seed))")
    return seed
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
