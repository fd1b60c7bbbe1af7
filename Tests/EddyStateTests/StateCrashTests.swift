import EddyCore
import EddyState
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// TEST FAKE — reads the file changelog written by `EddyTestChild state-crash` (format in
/// Sources/EddyTestChild/StateCrashChild.swift): complete, checksummed frames only, so a frame
/// torn by SIGKILL is not part of the log.
final class FileChangelogReader: LogConsumer {
    let records: [ConsumerRecord]
    let partition: TopicPartition
    private var position: Offset = 0

    init(path: String, partition: TopicPartition) throws {
        self.partition = partition
        let bytes = [UInt8]((try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data())
        func u32(_ i: Int) -> UInt32 { UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24 }
        var result: [ConsumerRecord] = []
        var at = 0
        while at + 8 <= bytes.count {
            let length = Int(u32(at)), crc = u32(at + 4)
            guard at + 8 + length <= bytes.count, CRC32C.checksum(bytes[(at + 8)..<(at + 8 + length)]) == crc else { break }
            var p = at + 8
            let first = Offset(UInt64(u32(p)) | UInt64(u32(p + 4)) << 32)
            let count = Int(u32(p + 8))
            p += 12
            #expect(first == Offset(result.count), "frames are contiguous")
            for index in 0..<count {
                let keyLength = Int(u32(p)); p += 4
                let key = Array(bytes[p..<(p + keyLength)]); p += keyLength
                let valueLength = Int32(bitPattern: u32(p)); p += 4
                var value: [UInt8]?
                if valueLength >= 0 { value = Array(bytes[p..<(p + Int(valueLength))]); p += Int(valueLength) }
                result.append(ConsumerRecord(topic: partition.topic, partition: partition.partition,
                                             offset: first + Offset(index), timestamp: 0, key: key, value: value))
            }
            at += 8 + length
        }
        records = result
    }

    /// The latest value per key: the state as of the last committed changelog offset.
    var latestValues: [[UInt8]: [UInt8]] {
        var state: [[UInt8]: [UInt8]] = [:]
        for record in records { state[record.key!] = record.value }
        return state
    }

    func subscribe(_ topics: [String], listener: (any RebalanceListener)?) throws { throw EddyError(.unsupported, "subscribe") }
    func assign(_ partitions: [TopicPartition]) throws {}
    func unsubscribe() throws {}
    func assignment() -> [TopicPartition] { [partition] }
    func poll(timeoutMilliseconds: Int) throws -> [ConsumerRecord] {
        let end = min(records.count, Int(position) + 5_000)
        defer { position = Offset(end) }
        return Array(records[Int(position)..<end])
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

@Suite("State crash consistency")
struct StateCrashTests {
    static var childPath: String {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("EddyTestChild").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return directory.appendingPathComponent("EddyTestChild").path
    }

    @Test("a store killed with SIGKILL at random moments equals its changelog after reopen and restore")
    func killedChildRestoresToChangelog() throws {
        let seed = testSeed("killedChildRestoresToChangelog")
        var random = SeededGenerator(seed: seed)
        let kills = ProcessInfo.processInfo.environment["EDDY_LONG_TESTS"] == "1" ? 300 : 60
        let root = NSTemporaryDirectory() + "eddy-state-crash-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let changelogPath = root + "/changelog"
        let changelog = TopicPartition("crash-kv-changelog", 0)
        let environment = try RocksDBEnvironment(configuration: StoreFixture.smallConfiguration) { _ in }
        #expect(FileManager.default.isExecutableFile(atPath: Self.childPath), "build EddyTestChild first: \(Self.childPath)")

        var replays = 0, lastEnd = 0
        for kill in 0..<kills {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: Self.childPath)
            child.arguments = ["state-crash", root + "/state", changelogPath, String(seed &+ UInt64(kill))]
            child.standardOutput = FileHandle.nullDevice
            try child.run()
            usleep(UInt32.random(in: 30_000...400_000, using: &random))
            #expect(child.isRunning, "the child died on its own (kill \(kill), seed \(seed))")
            Glibc.kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()

            let directory = try TaskStateDirectory(stateDirectory: root + "/state", application: "crash", task: "0_0",
                                                   environment: environment)
            let store = try directory.keyValueStore(named: "kv", changelog: changelog)
            let reader = try FileChangelogReader(path: changelogPath, partition: changelog)
            let result = try StateRestorer.restore(store, consumer: reader)
            if result.records > 0 { replays += 1 }
            let expected = reader.latestValues
            let actual = try store.all()
            #expect(actual.count == expected.count, "kill \(kill), seed \(seed)")
            #expect(actual.allSatisfy { expected[$0.key] == $0.value }, "kill \(kill), seed \(seed)")
            #expect(store.checkpoint ?? 0 == Offset(reader.records.count), "kill \(kill), seed \(seed)")
            lastEnd = reader.records.count
            store.close()
            directory.close()
        }
        print("killedChildRestoresToChangelog: \(kills) kills, \(lastEnd) changelog records, \(replays) restores replayed records")
        #expect(lastEnd > 0)
    }

    @Test("a restore killed with SIGKILL midway keeps the old checkpoint, and the next restore gives the changelog's state")
    func killedRestoreRestarts() throws {
        let seed = testSeed("killedRestoreRestarts")
        var random = SeededGenerator(seed: seed)
        let runs = ProcessInfo.processInfo.environment["EDDY_LONG_TESTS"] == "1" ? 40 : 8
        let root = NSTemporaryDirectory() + "eddy-restore-crash-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let changelogPath = root + "/changelog"
        let changelog = TopicPartition("crash-kv-changelog", 0)
        let environment = try RocksDBEnvironment(configuration: StoreFixture.smallConfiguration) { _ in }
        #expect(FileManager.default.isExecutableFile(atPath: Self.childPath), "build EddyTestChild first: \(Self.childPath)")

        let chunk = 30_000
        var previousEnd: Offset = 0, interrupted = 0
        for run in 0..<runs {
            // Alternate the two ways a batch is written: WriteBatches without the write-ahead log
            // (batches of 3,000) and ingested SST files (batches of 15,000 distinct-enough keys).
            let batchRecords = run % 2 == 0 ? 3_000 : 15_000
            let child = Process()
            child.executableURL = URL(fileURLWithPath: Self.childPath)
            child.arguments = ["state-restore-crash", root + "/state", changelogPath, String(seed &+ UInt64(run)),
                               String(chunk), String(batchRecords)]
            let output = Pipe()
            child.standardOutput = output
            try child.run()
            // Kill after a random number of progress lines, short of the last batch: the child is
            // then applying a batch, flushing, or writing its checkpoint.
            let killAfter = Int.random(in: 1..<(chunk / batchRecords), using: &random)
            var text = "", progressLines = 0
            while progressLines < killAfter && !text.contains("restored") {
                let data = output.fileHandleForReading.availableData
                if data.isEmpty { break }
                text += String(decoding: data, as: UTF8.self)
                progressLines = text.components(separatedBy: "progress ").count - 1
            }
            Glibc.kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            #expect(progressLines >= killAfter || text.contains("restored"), "the child died on its own (run \(run), seed \(seed)): \(text)")

            let directory = try TaskStateDirectory(stateDirectory: root + "/state", application: "crash", task: "0_0",
                                                   environment: environment)
            let store = try directory.keyValueStore(named: "kv", changelog: changelog)
            let reader = try FileChangelogReader(path: changelogPath, partition: changelog)
            let end = Offset(reader.records.count)
            #expect(end == previousEnd + Offset(chunk), "run \(run), seed \(seed)")
            let expected = reader.latestValues
            func matches() throws -> Bool {
                let actual = try store.all()
                return actual.count == expected.count && actual.allSatisfy { expected[$0.key] == $0.value }
            }
            if store.checkpoint == end {
                // The child finished before the kill: a checkpoint is written only over complete data.
                #expect(try matches(), "checkpoint \(end) over incomplete data (run \(run), seed \(seed))")
            } else {
                #expect(store.checkpoint ?? 0 == previousEnd, "run \(run), seed \(seed)")
                interrupted += 1
            }
            let result = try StateRestorer.restore(store, consumer: reader)
            #expect(store.checkpoint == end, "run \(run), seed \(seed)")
            #expect(try matches(), "run \(run), seed \(seed), replayed \(result.records)")
            previousEnd = end
            store.close()
            directory.close()
        }
        print("killedRestoreRestarts: \(runs) runs, \(interrupted) restores killed midway, \(previousEnd) changelog records")
        #expect(interrupted > 0)
    }
}
