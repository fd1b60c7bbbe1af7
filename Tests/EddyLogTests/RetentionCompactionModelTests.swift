import EddyCore
@testable import EddyLog
import Testing

/// Retention and compaction checked against a simple model: a list of surviving records.
@Suite struct RetentionCompactionModelTests {
    typealias F = StorageFixture

    struct ModelRecord: Hashable {
        var stored: StoredRecord
        var batchMaxTimestamp: Int64
    }

    /// What the log must hold after retention, given its segments before it (whole segments,
    /// oldest first, never the active one).
    static func applyRetention(_ model: inout [ModelRecord], start: inout Offset, segments: [PartitionLog.SegmentSummary],
                               configuration: TopicConfiguration, now: Int64) {
        guard configuration.cleanupPolicy.deletes else { return }
        var remaining = segments[...]
        if let retention = configuration.retentionMilliseconds {
            while remaining.count > 1, remaining.first!.largestTimestamp < now - retention { remaining = remaining.dropFirst() }
        }
        if let retention = configuration.retentionBytes {
            var total = remaining.reduce(Int64(0)) { $0 + $1.sizeBytes }
            while remaining.count > 1, total > retention {
                total -= remaining.first!.sizeBytes
                remaining = remaining.dropFirst()
            }
        }
        start = remaining.first!.baseOffset
        model.removeAll { $0.stored.offset < start }
    }

    /// What the log must hold after compaction: below the active segment, the latest record per
    /// key, tombstones only while younger than delete.retention (from their batch's max timestamp).
    static func applyCompaction(_ model: inout [ModelRecord], activeBase: Offset, configuration: TopicConfiguration, now: Int64) {
        guard configuration.cleanupPolicy.compacts else { return }
        var latest: [[UInt8]: Offset] = [:]
        for record in model where record.stored.offset < activeBase { latest[record.stored.key!] = record.stored.offset }
        model.removeAll { record in
            guard record.stored.offset < activeBase else { return false }
            if latest[record.stored.key!] != record.stored.offset { return true }
            return record.stored.value == nil && now - record.batchMaxTimestamp >= configuration.deleteRetentionMilliseconds
        }
    }

    @Test(arguments: [CleanupPolicy.compact, .compactDelete, .delete])
    func randomOperationsMatchTheModel(policy: CleanupPolicy) throws {
        let seed = StorageRandom.seed("retention/compaction model (\(policy.rawValue))")
        var random = StorageRandom(seed: seed)
        var removedByCompaction = 0
        var removedByRetention = 0
        defer {
            print("model (\(policy.rawValue)): compaction removed \(removedByCompaction), retention removed \(removedByRetention) records")
            if policy.compacts { #expect(removedByCompaction > 0) }
            if policy.deletes { #expect(removedByRetention > 0) }
        }
        for round in 0..<storageRounds(12, long: 200) {
            let (environment, _, clock) = F.memory()
            var configuration = TopicConfiguration()
            configuration.cleanupPolicy = policy
            configuration.segmentBytes = [1024, 2048, 4096][round % 3]
            configuration.indexIntervalBytes = 256
            configuration.retentionMilliseconds = Bool.random(using: &random) ? Int64.random(in: 5_000...60_000, using: &random) : nil
            configuration.retentionBytes = Bool.random(using: &random) ? Int64.random(in: 3_000...20_000, using: &random) : nil
            if policy.deletes && round % 2 == 0 && (configuration.retentionMilliseconds ?? .max) > 15_000 {
                // Every other round keeps a short time limit (the clock moves about 90 s per
                // round), so retention has something to remove whatever the seed, even where
                // compaction keeps the log under any size limit.
                configuration.retentionMilliseconds = Int64.random(in: 5_000...15_000, using: &random)
            }
            configuration.deleteRetentionMilliseconds = Int64.random(in: 1_000...20_000, using: &random)
            configuration.compression = [.none, .lz4, .zstd][round % 3]
            var log = try F.open(environment, configuration)
            var model: [ModelRecord] = []
            var start: Offset = 0
            var end: Offset = 0
            let keyCount = Int.random(in: 3...20, using: &random)
            for step in 0..<300 {
                let context = "seed \(seed) round \(round) step \(step)"
                switch Int.random(in: 0..<100, using: &random) {
                case 0..<70:
                    let now = clock.nowMilliseconds
                    var records: [Record] = []
                    for _ in 0..<Int.random(in: 1...5, using: &random) {
                        let key = Array("key-\(Int.random(in: 0..<keyCount, using: &random))".utf8)
                        let value: [UInt8]? = Int.random(in: 0..<5, using: &random) == 0
                            ? nil : Array(String(repeating: "v", count: Int.random(in: 0...80, using: &random)).utf8)
                        records.append(Record(key: key, value: value, timestamp: now - Int64.random(in: 0...2_000, using: &random)))
                    }
                    var bytes = try F.batch(records, compression: configuration.compression)
                    let result = try log.append(&bytes)
                    #expect(result.firstOffset == end, "\(context)")
                    let maxTimestamp = records.map(\.timestamp).max()!
                    for (i, record) in records.enumerated() {
                        model.append(ModelRecord(stored: StoredRecord(offset: end + Offset(i), key: record.key, value: record.value,
                                                                      timestamp: record.timestamp), batchMaxTimestamp: maxTimestamp))
                    }
                    end += Offset(records.count)
                case 70..<82:
                    clock.advance(by: Int64.random(in: 0...5_000, using: &random))
                case 82..<90:
                    let segments = log.segmentSummaries
                    try log.enforceRetention(now: clock.nowMilliseconds)
                    let before = model.count
                    Self.applyRetention(&model, start: &start, segments: segments, configuration: configuration, now: clock.nowMilliseconds)
                    removedByRetention += before - model.count
                case 90..<97:
                    let activeBase = log.activeSegmentBaseOffset
                    try log.compact(now: clock.nowMilliseconds)
                    let before = model.count
                    Self.applyCompaction(&model, activeBase: activeBase, configuration: configuration, now: clock.nowMilliseconds)
                    removedByCompaction += before - model.count
                default:
                    try log.close()
                    log = try F.open(environment, configuration)
                }
                #expect(log.startOffset == start, "\(context)")
                #expect(log.endOffset == end, "\(context)")
                if step % 10 == 9 || step == 299 {
                    let actual = try F.readAll(log, maxBytes: Int.random(in: 1...4096, using: &random))
                    let expected = model.map(\.stored)
                    #expect(actual == expected, "\(context): \(actual.count) records, model has \(expected.count)")
                    if actual != expected { return }
                }
            }
            try log.close()
            // Everything survives a reopen from the files, and the rewritten segments validate.
            try environment.fileSystem.removeFile("/data/orders-0/partition.checkpoint")
            let reopened = try F.open(environment, configuration)
            #expect(try F.readAll(reopened) == model.map(\.stored), "seed \(seed) round \(round) after reopen")
        }
    }

    @Test func compactionKeepsTheLatestValuePerKeyAndNeverRenumbers() throws {
        let (environment, _, clock) = F.memory()
        var configuration = TopicConfiguration.compacted(partitions: 1)
        configuration.segmentBytes = 1024
        configuration.deleteRetentionMilliseconds = 10_000
        let log = try F.open(environment, configuration)
        let now = clock.nowMilliseconds
        for i in 0..<60 {
            try F.append(log, [F.record("k\(i % 3)", "value-\(i)-" + String(repeating: "x", count: 40), now)])
        }
        try F.append(log, [F.record("k0", nil, now)]) // tombstone for k0 at 60
        for i in 61..<80 { try F.append(log, [F.record("pad\(i)", String(repeating: "p", count: 60), now)]) }
        let sizeBefore = log.sizeBytes
        try log.compact(now: now)
        #expect(log.sizeBytes < sizeBefore)
        let records = try F.readAll(log)
        let keys = records.map { String(decoding: $0.key!, as: UTF8.self) }
        #expect(!keys.contains("k0") || records.first { $0.key == Array("k0".utf8) }!.value == nil)
        #expect(records.filter { $0.key == Array("k1".utf8) }.map(\.offset) == [58])
        #expect(records.filter { $0.key == Array("k2".utf8) }.map(\.offset) == [59])
        #expect(records.first { $0.key == Array("k0".utf8) }?.offset == 60)
        #expect(log.startOffset == 0 && log.endOffset == 80)
        // Reads from any offset still work, including offsets that were removed.
        for offset in [0, 1, 30, 57, 58, 59, 60] as [Offset] {
            let fetched = try log.read(from: offset, maxBytes: 1, isolation: .readUncommitted)
            #expect(try F.decode(fetched.bytes).allSatisfy { $0.offset >= 0 })
            #expect(try _PartitionLogDriver.nextOffset(after: fetched.bytes) > offset)
        }
        // The tombstone goes after delete.retention.
        clock.advance(by: 10_000)
        try log.compact(now: clock.nowMilliseconds)
        #expect(try F.readAll(log).contains { $0.key == Array("k0".utf8) } == false)
        #expect(log.endOffset == 80)
    }

    @Test func retentionDeletesWholeOldSegmentsButNeverTheActiveOne() throws {
        let (environment, _, clock) = F.memory()
        var configuration = TopicConfiguration()
        configuration.segmentBytes = 1024
        configuration.retentionMilliseconds = 60_000
        let log = try F.open(environment, configuration)
        for i in 0..<40 {
            try F.append(log, [F.record("k\(i)", String(repeating: "r", count: 100), clock.nowMilliseconds)])
            clock.advance(by: 1_000)
        }
        let segments = log.segmentSummaries
        #expect(segments.count > 3)
        clock.advance(by: 30_000)
        try log.enforceRetention(now: clock.nowMilliseconds)
        #expect(log.startOffset == log.segmentBaseOffsets.first)
        #expect(log.startOffset > 0)
        #expect(throws: EddyError.self) { try log.read(from: 0, maxBytes: 100, isolation: .readUncommitted) }
        clock.advance(by: 1_000_000)
        try log.enforceRetention(now: clock.nowMilliseconds)
        #expect(log.segmentBaseOffsets.count == 1)
        #expect(log.endOffset == 40)
        #expect(try F.readAll(log).map(\.offset) == Array(log.startOffset..<40))
        var bySize = configuration
        bySize.retentionMilliseconds = nil
        bySize.retentionBytes = 0
        try log.updateConfiguration(bySize)
        try log.enforceRetention(now: clock.nowMilliseconds)
        #expect(log.segmentBaseOffsets.count == 1)
    }

    @Test func compactionRemovesAbortedRecordsAndKeepsMarkers() throws {
        let (environment, _, _) = F.memory()
        var configuration = TopicConfiguration.compacted(partitions: 1)
        configuration.segmentBytes = 1024
        let log = try F.open(environment, configuration)
        try F.append(log, [F.record("a", "committed-1")])                                // 0
        try F.append(log, [F.record("a", "aborted"), F.record("b", "aborted")], producerID: 5, transactional: true) // 1, 2
        _ = try log.appendControl(.abort, producerID: 5, producerEpoch: 0, timestamp: 1)  // 3
        try F.append(log, [F.record("c", "committed-2")], producerID: 6, transactional: true) // 4
        _ = try log.appendControl(.commit, producerID: 6, producerEpoch: 0, timestamp: 1) // 5
        for i in 0..<20 { try F.append(log, [F.record("pad\(i)", String(repeating: "p", count: 80))]) }
        try log.compact(now: 0)
        let records = try F.readAll(log)
        #expect(records.first.map { String(decoding: $0.value!, as: UTF8.self) } == "committed-1")
        #expect(!records.contains { $0.value == Array("aborted".utf8) })
        let fetched = try log.read(from: 0, maxBytes: 1 << 20, isolation: .readUncommitted)
        let withControl = try F.decode(fetched.bytes, includeControl: true)
        #expect(withControl.contains { $0.offset == 3 } && withControl.contains { $0.offset == 5 })
        #expect(log.endOffset == 26)
    }

    @Test(arguments: [("rename", ".cleaned"), ("syncDirectory", ""), ("rename", ".swap"), ("sync", ".cleaned")])
    func anInterruptedCompactionLeavesTheOldOrTheNewSegmentAfterACrash(operation: String, path: String) throws {
        let (environment, fileSystem, clock) = F.memory()
        var configuration = TopicConfiguration.compacted(partitions: 1)
        configuration.segmentBytes = 1024
        configuration.fsync = .always
        let log = try F.open(environment, configuration)
        for i in 0..<60 { try F.append(log, [F.record("k\(i % 4)", "value-\(i)-" + String(repeating: "x", count: 30), clock.nowMilliseconds)]) }
        let before = try F.readAll(log)
        // The same compaction, uninterrupted, on a copy of the records (the model's answer).
        var model = before.map { ModelRecord(stored: $0, batchMaxTimestamp: $0.timestamp) }
        Self.applyCompaction(&model, activeBase: log.activeSegmentBaseOffset, configuration: configuration, now: clock.nowMilliseconds)
        let after = model.map(\.stored)
        #expect(after.count < before.count)
        let kind: InMemoryFileSystem.Operation = switch operation {
        case "rename": .rename
        case "sync": .sync
        default: .syncDirectory
        }
        fileSystem.inject(.init(kind, pathContains: path))
        #expect(throws: EddyError.self) { try log.compact(now: clock.nowMilliseconds) }
        fileSystem.crash()
        let reopened = try F.open(environment, configuration)
        let records = try F.readAll(reopened)
        // Each segment is either the old one or its cleaned version: every kept record is there,
        // nothing that was not there before, in offset order.
        #expect(Set(after).isSubset(of: Set(records)) && Set(records).isSubset(of: Set(before)), "\(operation) \(path)")
        #expect(records.map(\.offset) == records.map(\.offset).sorted())
        #expect(!fileSystem.allFiles().contains { $0.hasSuffix(".cleaned") || $0.hasSuffix(".swap") })
        // Compaction runs to the end once the fault is gone.
        try reopened.compact(now: clock.nowMilliseconds)
        #expect(try F.readAll(reopened) == after)
        #expect(reopened.endOffset == 60)
    }
}
