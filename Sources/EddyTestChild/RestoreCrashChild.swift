// Mode "state-restore-crash": appends a chunk of changes (puts and tombstones) to a file
// changelog, then restores a logged RocksDB key-value store from it with StateRestorer, printing
// "progress N" after every restore batch, so that the parent can kill it with SIGKILL in the
// middle of the restore. Prints "restored" if it gets to the end.
//
// Usage: EddyTestChild state-restore-crash STATE_DIR CHANGELOG_FILE SEED RECORDS BATCH_RECORDS
//
// The changelog file has the format of mode "state-crash" (StateCrashChild.swift). The parent is
// Tests/EddyStateTests/StateCrashTests.swift.
import EddyCore
import EddyState
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Reads the complete frames of a file changelog written by ``FileChangelogProducer`` and
/// serves them through `LogConsumer` (assign, seek, poll; the rest is unsupported).
final class FileChangelogConsumer: LogConsumer {
    let partition: TopicPartition
    private var records: [ConsumerRecord] = []
    private var position: Offset = 0

    init(path: String, partition: TopicPartition) throws {
        self.partition = partition
        let bytes = [UInt8]((try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data())
        var at = 0
        while at + 8 <= bytes.count {
            let length = Int(FileChangelogProducer.u32(bytes, at)), crc = FileChangelogProducer.u32(bytes, at + 4)
            guard at + 8 + length <= bytes.count, CRC32C.checksum(bytes[(at + 8)..<(at + 8 + length)]) == crc else { break }
            var p = at + 8
            let first = Offset(FileChangelogProducer.u64(bytes, p))
            let count = Int(FileChangelogProducer.u32(bytes, p + 8))
            p += 12
            for index in 0..<count {
                let keyLength = Int(FileChangelogProducer.u32(bytes, p)); p += 4
                let key = Array(bytes[p..<(p + keyLength)]); p += keyLength
                let valueLength = Int32(bitPattern: FileChangelogProducer.u32(bytes, p)); p += 4
                var value: [UInt8]?
                if valueLength >= 0 { value = Array(bytes[p..<(p + Int(valueLength))]); p += Int(valueLength) }
                records.append(ConsumerRecord(topic: partition.topic, partition: partition.partition,
                                              offset: first + Offset(index), timestamp: 0, key: key, value: value))
            }
            at += 8 + length
        }
    }

    func subscribe(_ topics: [String], listener: (any RebalanceListener)?) throws { throw EddyError(.unsupported, "subscribe") }
    func assign(_ partitions: [TopicPartition]) throws {}
    func unsubscribe() throws {}
    func assignment() -> [TopicPartition] { [partition] }
    func poll(timeoutMilliseconds: Int) throws -> [ConsumerRecord] {
        let start = min(records.count, Int(position)), end = min(records.count, start + 2_000)
        position = Offset(end)
        return Array(records[start..<end])
    }
    func position(_ partition: TopicPartition) throws -> Offset { position }
    func seek(_ partition: TopicPartition, to offset: Offset) throws { position = offset }
    func seekToBeginning(_ partitions: [TopicPartition]) throws { position = 0 }
    func seekToEnd(_ partitions: [TopicPartition]) throws { position = Offset(records.count) }
    func offsets(forTimes times: [TopicPartition: Timestamp]) throws -> [TopicPartition: Offset?] { throw EddyError(.unsupported, "offsets") }
    func beginningOffsets(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset] { [partition: 0] }
    func endOffsets(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset] { [partition: Offset(records.count)] }
    func pause(_ partitions: [TopicPartition]) {}
    func resume(_ partitions: [TopicPartition]) {}
    func commit(_ offsets: [TopicPartition: Offset]) throws { throw EddyError(.unsupported, "commit") }
    func committed(_ partitions: [TopicPartition]) throws -> [TopicPartition: Offset] { [:] }
    func groupMetadata() -> ConsumerGroupMetadata? { nil }
    func close() throws {}
}

func runStateRestoreCrashChild(_ arguments: [String]) throws -> Never {
    guard arguments.count == 7, let seed = UInt64(arguments[4]), let records = Int(arguments[5]),
          let batchRecords = Int(arguments[6]) else {
        FileHandleOutput.error("usage: EddyTestChild state-restore-crash STATE_DIR CHANGELOG_FILE SEED RECORDS BATCH_RECORDS")
        exit(2)
    }
    var random = ChildRandom(state: seed)
    let changelog = TopicPartition("crash-kv-changelog", 0)
    // The chunk this run restores: one frame per 1,000 changes, a fifth of them tombstones of
    // keys that earlier chunks may have written.
    let producer = try FileChangelogProducer(path: arguments[3])
    for index in 0..<records {
        let key = Array("k\(Int.random(in: 0..<50_000, using: &random))".utf8)
        let value: [UInt8]? = Int.random(in: 0..<5, using: &random) == 0
            ? nil : [UInt8](repeating: UInt8.random(in: 0...255, using: &random), count: Int.random(in: 0...40, using: &random))
        try producer.send(ProducerRecord(topic: changelog.topic, partition: 0, key: key, value: value))
        if index % 1_000 == 999 { try producer.flush() }
    }
    try producer.flush()

    let environment = try RocksDBEnvironment(configuration: RocksDBConfiguration(blockCacheBytes: 8 << 20, writeBufferBytes: 4 << 20,
                                                                               minimumWriteBufferBytesPerStore: 256 << 10))
    let directory = try TaskStateDirectory(stateDirectory: arguments[2], application: "crash", task: "0_0", environment: environment)
    let store = try directory.keyValueStore(named: "kv", changelog: changelog)
    let consumer = try FileChangelogConsumer(path: arguments[3], partition: changelog)
    FileHandleOutput.line("restoring")
    try StateRestorer.restore(store, consumer: consumer, batchRecords: batchRecords) { progress in
        FileHandleOutput.line("progress \(progress.records)")
    }
    FileHandleOutput.line("restored")
    store.close()
    directory.close()
    exit(0)
}
