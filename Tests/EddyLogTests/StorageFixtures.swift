import EddyCore
@testable import EddyLog
import Foundation

/// Seeded SplitMix64 for the storage engine's randomised tests (seeds are printed and replayable).
struct StorageRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A seed from EDDY_SEED if set (to replay a failure), else a fresh one.
    static func seed(_ name: String) -> UInt64 {
        if let text = ProcessInfo.processInfo.environment["EDDY_SEED"], let seed = UInt64(text) { return seed }
        let seed = UInt64.random(in: 1...UInt64.max)
        print("\(name): seed \(seed) (replay with EDDY_SEED=\(seed))")
        return seed
    }
}

/// Round counts of the randomised suites: `normal`, or `long` with EDDY_LONG_TESTS=1.
func storageRounds(_ normal: Int, long: Int) -> Int {
    ProcessInfo.processInfo.environment["EDDY_LONG_TESTS"] != nil ? long : normal
}

/// A decoded record as the tests compare them.
struct StoredRecord: Hashable, CustomStringConvertible {
    var offset: Offset
    var key: [UInt8]?
    var value: [UInt8]?
    var timestamp: Timestamp
    var description: String { "#\(offset) key=\(key.map { String(decoding: $0, as: UTF8.self) } ?? "nil") value=\(value?.count ?? -1)B ts=\(timestamp)" }
}

/// Shared helpers of the storage engine's tests.
enum StorageFixture {
    static let topicPartition = TopicPartition("orders", 0)

    /// An in-memory environment that simulates crashes, with a manual clock.
    static func memory(clock: ManualLogClock = ManualLogClock()) -> (LogEnvironment, InMemoryFileSystem, ManualLogClock) {
        let fileSystem = InMemoryFileSystem(simulatesCrashes: true)
        return (LogEnvironment(fileSystem: fileSystem, clock: clock), fileSystem, clock)
    }

    /// A fresh temporary directory on disk (removed by the caller with `removeTemporary`).
    static func temporaryDirectory(_ name: String = "eddy-log-test") -> String {
        let path = NSTemporaryDirectory() + "/\(name)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func removeTemporary(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

    static func open(_ environment: LogEnvironment, _ configuration: TopicConfiguration = TopicConfiguration(),
                     directory: String = "/data/orders-0") throws -> PartitionLog {
        try PartitionLog(topicPartition: topicPartition, directory: directory, configuration: configuration,
                         environment: environment)
    }

    /// One batch of `records`.
    static func batch(_ records: [Record], compression: CompressionCodec = .none, producerID: Int64 = -1,
                      transactional: Bool = false) throws -> [UInt8] {
        var builder = RecordBatchBuilder(compression: compression, producerID: producerID,
                                         producerEpoch: producerID >= 0 ? 0 : -1, isTransactional: transactional)
        for record in records { builder.append(record) }
        return try builder.build()
    }

    static func record(_ key: String?, _ value: String?, _ timestamp: Timestamp = 1_000) -> Record {
        Record(key: key.map { Array($0.utf8) }, value: value.map { Array($0.utf8) }, timestamp: timestamp)
    }

    /// Appends and returns the result.
    @discardableResult
    static func append(_ log: PartitionLog, _ records: [Record], producerID: Int64 = -1, transactional: Bool = false) throws -> PartitionLog.AppendResult {
        var bytes = try batch(records, producerID: producerID, transactional: transactional)
        return try log.append(&bytes)
    }

    /// Decodes fetched bytes into records (control batches skipped), checking every CRC.
    static func decode(_ bytes: [UInt8], includeControl: Bool = false) throws -> [StoredRecord] {
        var result: [StoredRecord] = []
        try bytes.withUnsafeBytes { raw in
            var at = 0
            while at < raw.count {
                let batch = UnsafeRawBufferPointer(rebasing: raw[at...])
                let header = try RecordBatch.parseHeader(batch)
                let whole = UnsafeRawBufferPointer(rebasing: raw[at..<(at + header.totalSize)])
                guard RecordBatch.crcMatches(whole) else { throw EddyError(.corrupt, "test decode: CRC mismatch at \(at)") }
                if !header.isControl || includeControl {
                    try RecordBatch.forEachRecord(in: whole, maximumBytes: Limits.maximumRecordBytesCeiling) { view in
                        result.append(StoredRecord(offset: view.offset, key: view.key.map { Array($0) },
                                                   value: view.value.map { Array($0) }, timestamp: view.timestamp))
                    }
                }
                at += header.totalSize
            }
        }
        return result
    }

    /// Every record from `from` to the end, fetching `maxBytes` at a time.
    static func readAll(_ log: PartitionLog, from: Offset? = nil, maxBytes: Int = 1 << 16,
                        isolation: IsolationLevel = .readUncommitted) throws -> [StoredRecord] {
        var offset = from ?? log.startOffset
        var result: [StoredRecord] = []
        while true {
            let fetched = try log.read(from: offset, maxBytes: maxBytes, isolation: isolation)
            if fetched.bytes.isEmpty { break }
            let next = try lastOffset(of: fetched.bytes) + 1
            result += try decode(fetched.bytes).filter { $0.offset >= offset }
            offset = next
        }
        return result
    }

    /// Last offset of the last batch in `bytes`.
    static func lastOffset(of bytes: [UInt8]) throws -> Offset {
        try bytes.withUnsafeBytes { raw in
            var at = 0
            var last: Offset = -1
            while at < raw.count {
                let header = try RecordBatch.parseHeader(UnsafeRawBufferPointer(rebasing: raw[at...]))
                last = header.lastOffset
                at += header.totalSize
            }
            return last
        }
    }
}
