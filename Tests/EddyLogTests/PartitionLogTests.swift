import EddyCore
@testable import EddyLog
import Foundation
import Testing

@Suite struct PartitionLogTests {
    typealias F = StorageFixture

    @Test func appendsGetDenseOffsetsAndReadBackByteIdentical() throws {
        let (environment, _, _) = F.memory()
        let log = try F.open(environment)
        var expected: [StoredRecord] = []
        for batchNumber in 0..<20 {
            let records = (0..<(batchNumber % 4 + 1)).map { F.record("k\(batchNumber)-\($0)", "v\(batchNumber)-\($0)", Timestamp(batchNumber)) }
            let result = try F.append(log, records)
            #expect(result.firstOffset == Offset(expected.count))
            #expect(result.lastOffset == Offset(expected.count + records.count - 1))
            for (i, record) in records.enumerated() {
                expected.append(StoredRecord(offset: result.firstOffset + Offset(i), key: record.key, value: record.value, timestamp: record.timestamp))
            }
        }
        #expect(log.endOffset == Offset(expected.count))
        #expect(log.lastStableOffset == log.endOffset)
        #expect(try F.readAll(log) == expected)
        #expect(try F.readAll(log, from: 7) == Array(expected.filter { $0.offset >= 7 }))
        try log.close()
        let reopened = try F.open(environment)
        #expect(reopened.endOffset == Offset(expected.count))
        #expect(try F.readAll(reopened) == expected)
        try reopened.close()
    }

    @Test func aReadReturnsWholeBatchesBoundedByMaxBytesButAtLeastOne() throws {
        let (environment, _, _) = F.memory()
        let log = try F.open(environment)
        var sizes: [Int] = []
        for i in 0..<10 {
            var batch = try F.batch([F.record("k", String(repeating: "x", count: 100 * (i + 1)))])
            sizes.append(batch.count)
            _ = try log.append(&batch)
        }
        let one = try log.read(from: 0, maxBytes: 1, isolation: .readUncommitted)
        #expect(one.bytes.count == sizes[0])
        let some = try log.read(from: 0, maxBytes: sizes[0] + sizes[1] + sizes[2] + 5, isolation: .readUncommitted)
        #expect(some.bytes.count == sizes[0] + sizes[1] + sizes[2])
        let middle = try log.read(from: 4, maxBytes: 1 << 20, isolation: .readUncommitted)
        #expect(middle.bytes.count == sizes[4...].reduce(0, +))
        let end = try log.read(from: 10, maxBytes: 1 << 20, isolation: .readUncommitted)
        #expect(end.bytes.isEmpty)
        #expect(end.endOffset == 10)
        #expect(throws: EddyError.self) { try log.read(from: 11, maxBytes: 100, isolation: .readUncommitted) }
        #expect(throws: EddyError.self) { try log.read(from: -1, maxBytes: 100, isolation: .readUncommitted) }
    }

    @Test func aReadFromAnOffsetInsideABatchReturnsTheWholeBatch() throws {
        let (environment, _, _) = F.memory()
        let log = try F.open(environment)
        try F.append(log, (0..<5).map { F.record("k\($0)", "v") })
        try F.append(log, (0..<5).map { F.record("j\($0)", "v") })
        let fetched = try log.read(from: 7, maxBytes: 1 << 20, isolation: .readUncommitted)
        let records = try F.decode(fetched.bytes)
        #expect(records.map(\.offset) == [5, 6, 7, 8, 9])
    }

    @Test func anOversizedBatchIsRejectedAndNothingIsWritten() throws {
        let (environment, _, _) = F.memory()
        var configuration = TopicConfiguration()
        configuration.maximumRecordBytes = 1024
        let log = try F.open(environment, configuration)
        try F.append(log, [F.record("a", "small")])
        var big = try F.batch([F.record("b", String(repeating: "y", count: 2000))])
        #expect { try log.append(&big) } throws: { ($0 as? EddyError)?.code == .recordTooLarge }
        #expect(log.endOffset == 1)
        #expect(try F.readAll(log).count == 1)
    }

    @Test func aBatchWithABadCRCIsRejected() throws {
        let (environment, _, _) = F.memory()
        let log = try F.open(environment)
        var batch = try F.batch([F.record("a", "b")])
        batch[batch.count - 1] ^= 0xFF
        #expect { try log.append(&batch) } throws: { ($0 as? EddyError)?.code == .corrupt }
        #expect(log.endOffset == 0)
    }

    @Test func segmentsRollBySizeAndReadsCrossThem() throws {
        let (environment, fileSystem, _) = F.memory()
        var configuration = TopicConfiguration()
        configuration.segmentBytes = 4096
        configuration.indexIntervalBytes = 256
        let log = try F.open(environment, configuration)
        var expected: [StoredRecord] = []
        for i in 0..<100 {
            let record = F.record("key\(i)", String(repeating: "v", count: 90), Timestamp(i))
            let result = try F.append(log, [record])
            expected.append(StoredRecord(offset: result.firstOffset, key: record.key, value: record.value, timestamp: record.timestamp))
        }
        let bases = log.segmentBaseOffsets
        #expect(bases.count > 3)
        #expect(bases.first == 0)
        for path in fileSystem.allFiles() where path.hasSuffix(".log") {
            #expect(fileSystem.contents(of: path)!.count <= 4096)
        }
        #expect(try F.readAll(log, maxBytes: 700) == expected)
        for offset in [0, 13, 37, 64, 99] as [Offset] {
            let fetched = try log.read(from: offset, maxBytes: 1, isolation: .readUncommitted)
            #expect(try F.decode(fetched.bytes).map(\.offset) == [offset])
        }
        try log.close()
        #expect(fileSystem.allFiles().contains("/data/orders-0/00000000000000000000.index"))
        let reopened = try F.open(environment, configuration)
        #expect(reopened.segmentBaseOffsets == bases)
        #expect(try F.readAll(reopened, maxBytes: 5000) == expected)
    }

    @Test func segmentsRollByAge() throws {
        let (environment, _, clock) = F.memory()
        var configuration = TopicConfiguration()
        configuration.segmentMilliseconds = 60_000
        let log = try F.open(environment, configuration)
        try F.append(log, [F.record("a", "1")])
        clock.advance(by: 30_000)
        try F.append(log, [F.record("a", "2")])
        #expect(log.segmentBaseOffsets == [0])
        clock.advance(by: 30_000)
        try F.append(log, [F.record("a", "3")])
        #expect(log.segmentBaseOffsets == [0, 2])
        clock.advance(by: 59_999)
        try F.append(log, [F.record("a", "4")])
        #expect(log.segmentBaseOffsets == [0, 2])
    }

    @Test func offsetForTimestampFindsTheFirstRecordAtOrAfterIt() throws {
        let (environment, _, _) = F.memory()
        var configuration = TopicConfiguration()
        configuration.segmentBytes = 2048
        configuration.indexIntervalBytes = 128
        let log = try F.open(environment, configuration)
        // Timestamps 0, 10, 20, ... with one late record (5) at offset 50.
        for i in 0..<200 {
            let timestamp: Timestamp = i == 50 ? 5 : Timestamp(i * 10)
            try F.append(log, [F.record("k\(i)", "value-\(i)", timestamp)])
        }
        #expect(try log.offset(forTimestamp: 0) == 0)
        #expect(try log.offset(forTimestamp: 1) == 1)
        #expect(try log.offset(forTimestamp: 10) == 1)
        #expect(try log.offset(forTimestamp: 491) == 51)
        #expect(try log.offset(forTimestamp: 1990) == 199)
        #expect(try log.offset(forTimestamp: 1991) == nil)
        for target in stride(from: Timestamp(0), through: 2000, by: 37) {
            let expected = (0..<200).first { ($0 == 50 ? 5 : Timestamp($0 * 10)) >= target }.map { Offset($0) }
            #expect(try log.offset(forTimestamp: target) == expected, "timestamp \(target)")
        }
        try log.close()
        let reopened = try F.open(environment, configuration)
        #expect(try reopened.offset(forTimestamp: 491) == 51)
    }

    @Test func theLastStableOffsetStopsAtTheOldestOpenTransaction() throws {
        let (environment, _, _) = F.memory()
        let log = try F.open(environment)
        try F.append(log, [F.record("a", "plain")])                                       // 0
        try F.append(log, [F.record("b", "t1"), F.record("c", "t1")], producerID: 7, transactional: true) // 1, 2
        try F.append(log, [F.record("d", "t2")], producerID: 8, transactional: true)       // 3
        try F.append(log, [F.record("e", "t1 again")], producerID: 7, transactional: true) // 4
        #expect(log.lastStableOffset == 1)
        #expect(log.endOffset == 5)
        let committedView = try log.read(from: 0, maxBytes: 1 << 20, isolation: .readCommitted)
        #expect(try F.decode(committedView.bytes).map(\.offset) == [0])
        #expect(committedView.lastStableOffset == 1)
        #expect(try log.appendControl(.commit, producerID: 7, producerEpoch: 0, timestamp: 2000) == 5)
        #expect(log.lastStableOffset == 3)
        // Open transactions survive a restart (checkpoint) and a crash (rescan).
        try log.close()
        let reopened = try F.open(environment)
        #expect(reopened.lastStableOffset == 3)
        #expect(try reopened.appendControl(.abort, producerID: 8, producerEpoch: 0, timestamp: 2001) == 6)
        #expect(reopened.lastStableOffset == 7)
        let fetched = try reopened.read(from: 0, maxBytes: 1 << 20, isolation: .readCommitted)
        #expect(fetched.abortedTransactions == [PartitionLog.AbortedTransaction(producerID: 8, firstOffset: 3, lastOffset: 6)])
        let uncommitted = try reopened.read(from: 0, maxBytes: 1 << 20, isolation: .readUncommitted)
        #expect(uncommitted.abortedTransactions.isEmpty)
        #expect(try F.decode(uncommitted.bytes).count == 5)
        try reopened.close()
        let again = try F.open(environment)
        #expect(try again.read(from: 4, maxBytes: 1 << 20, isolation: .readCommitted).abortedTransactions.count == 1)
        #expect(try again.read(from: 7, maxBytes: 1 << 20, isolation: .readCommitted).abortedTransactions.isEmpty)
    }

    @Test func openTransactionsAreRebuiltAfterACrashWithoutCheckpoint() throws {
        let (environment, fileSystem, _) = F.memory()
        var configuration = TopicConfiguration()
        configuration.fsync = .always
        configuration.segmentBytes = 1024
        let log = try F.open(environment, configuration)
        try F.append(log, [F.record("x", "before")])
        try F.append(log, [F.record("a", String(repeating: "t", count: 300))], producerID: 3, transactional: true)
        for i in 0..<10 { try F.append(log, [F.record("p\(i)", String(repeating: "p", count: 200))]) }
        _ = try log.appendControl(.abort, producerID: 3, producerEpoch: 0, timestamp: 5)
        try F.append(log, [F.record("b", "t")], producerID: 4, transactional: true)
        let end = log.endOffset
        fileSystem.crash()
        try fileSystem.removeFile("/data/orders-0/partition.checkpoint")
        let reopened = try F.open(environment, configuration)
        #expect(reopened.endOffset == end)
        #expect(reopened.lastStableOffset == end - 1)
        let fetched = try reopened.read(from: 0, maxBytes: 1 << 20, isolation: .readCommitted)
        #expect(fetched.abortedTransactions == [PartitionLog.AbortedTransaction(producerID: 3, firstOffset: 1, lastOffset: 12)])
    }

    @Test func aCompactedTopicRejectsRecordsWithoutAKey() throws {
        let (environment, _, _) = F.memory()
        let log = try F.open(environment, TopicConfiguration.compacted(partitions: 1))
        var batch = try F.batch([F.record("k", "v"), F.record(nil, "no key")])
        #expect { try log.append(&batch) } throws: { ($0 as? EddyError)?.code == .invalidArgument }
        try F.append(log, [F.record("k", "v")])
        #expect(log.endOffset == 1)
    }

    @Test func fsyncAlwaysSurvivesACrashAndOsMayNot() throws {
        for policy in [FsyncPolicy.always, .os, .interval(milliseconds: 100)] {
            let (environment, fileSystem, clock) = F.memory()
            var configuration = TopicConfiguration()
            configuration.fsync = policy
            let log = try F.open(environment, configuration)
            for i in 0..<10 { try F.append(log, [F.record("k\(i)", "v")]) }
            clock.advance(by: 150)
            try log.flushIfDue(now: clock.nowMilliseconds)
            try F.append(log, [F.record("late", "v")])
            fileSystem.crash()
            let reopened = try F.open(environment, configuration)
            switch policy {
            case .always: #expect(reopened.endOffset == 11)
            case .os: #expect(reopened.endOffset == 0)
            case .interval: #expect(reopened.endOffset == 10)
            }
            #expect(try F.readAll(reopened).count == Int(reopened.endOffset))
        }
    }

    @Test func anIOFailureTakesThePartitionOfflineUntilReopened() throws {
        let (environment, fileSystem, _) = F.memory()
        var configuration = TopicConfiguration()
        configuration.fsync = .always
        let log = try F.open(environment, configuration)
        try F.append(log, [F.record("a", "1")])
        fileSystem.inject(.init(.sync, pathContains: ".log"))
        #expect { try F.append(log, [F.record("b", "2")]) } throws: { ($0 as? EddyError)?.code == .io }
        #expect { try F.append(log, [F.record("c", "3")]) } throws: { ($0 as? EddyError)?.code == .io }
        try log.close()
        fileSystem.crash()
        let reopened = try F.open(environment, configuration)
        #expect(reopened.endOffset == 1)
        fileSystem.inject(.init(.write, pathContains: ".log", tornPrefix: 20))
        #expect { try F.append(reopened, [F.record("d", "4")]) } throws: { ($0 as? EddyError)?.code == .io }
        try reopened.close()
        let again = try F.open(environment, configuration)
        #expect(again.endOffset == 1)
        try F.append(again, [F.record("e", "5")])
        #expect(try F.readAll(again).map(\.offset) == [0, 1])
    }

    @Test func realFilesWorkTheSameAndCanBeDeleted() throws {
        let root = F.temporaryDirectory()
        defer { F.removeTemporary(root) }
        let directory = root + "/orders-0"
        var configuration = TopicConfiguration()
        configuration.segmentBytes = 2048
        configuration.fsync = .always
        let log = try F.open(.real, configuration, directory: directory)
        for i in 0..<50 { try F.append(log, [F.record("k\(i)", String(repeating: "z", count: 100))]) }
        try log.close()
        let reopened = try F.open(.real, configuration, directory: directory)
        #expect(reopened.endOffset == 50)
        #expect(try F.readAll(reopened).count == 50)
        #expect(reopened.sizeBytes > 5000)
        try reopened.close()
        try reopened.deleteFiles()
        #expect(!POSIXFileSystem().exists(directory))
    }

    @Test func appendsAndReadsFromManyThreadsAtOnceStayConsistent() throws {
        let (environment, _, _) = F.memory()
        var configuration = TopicConfiguration()
        configuration.segmentBytes = 8192
        configuration.indexIntervalBytes = 512
        let log = try F.open(environment, configuration)
        let appenders = 3, batchesPerAppender = 400
        let failures = FailureBox()
        let group = DispatchGroup()
        for appender in 0..<appenders {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do {
                    for i in 0..<batchesPerAppender {
                        try F.append(log, (0..<(i % 3 + 1)).map { F.record("a\(appender)", "\(appender)-\(i)-\($0)") })
                    }
                } catch { failures.add("appender \(appender): \(error)") }
            }
        }
        for reader in 0..<3 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do {
                    for _ in 0..<20 {
                        let end = log.endOffset
                        let records = try F.readAll(log, maxBytes: 1000 * (reader + 1))
                        // Offsets are dense from 0 and reach at least the end seen before the read.
                        if records.map(\.offset) != Array(0..<Offset(records.count)) || Offset(records.count) < end {
                            failures.add("reader \(reader): \(records.count) records, end was \(end)")
                        }
                        _ = try log.offset(forTimestamp: 1_000)
                    }
                } catch { failures.add("reader \(reader): \(error)") }
            }
        }
        group.wait()
        #expect(failures.messages.isEmpty, "\(failures.messages)")
        let total = appenders * (0..<batchesPerAppender).reduce(0) { $0 + $1 % 3 + 1 }
        #expect(log.endOffset == Offset(total))
        let records = try F.readAll(log)
        #expect(Set(records.map { String(decoding: $0.value!, as: UTF8.self) }).count == total)
    }

    /// Collects failures from threads.
    final class FailureBox: @unchecked Sendable {
        // @unchecked: `list` is only touched under `lock`.
        private let lock = NSLock()
        private var list: [String] = []
        func add(_ message: String) { lock.lock(); list.append(message); lock.unlock() }
        var messages: [String] { lock.lock(); defer { lock.unlock() }; return list }
    }
}

@Suite struct PartitionRecoveryTests {
    typealias F = StorageFixture

    @Test func abortedTransactionsSurviveRepeatedCrashesWithoutAClose() throws {
        let (environment, fileSystem, _) = F.memory()
        var configuration = TopicConfiguration()
        configuration.fsync = .always
        var log = try F.open(environment, configuration)
        var expectedAborted: [PartitionLog.AbortedTransaction] = []
        for round in 0..<4 {
            let producer = Int64(round + 1)
            let first = try F.append(log, [F.record("t", "aborted-\(round)")], producerID: producer, transactional: true).firstOffset
            try F.append(log, [F.record("p", "plain-\(round)")])
            let marker = try log.appendControl(.abort, producerID: producer, producerEpoch: 0, timestamp: 1)
            expectedAborted.append(.init(producerID: producer, firstOffset: first, lastOffset: marker))
            // Mostly crashes without close: each open recovers from the checkpoint (and index
            // files) its predecessor's recovery wrote.
            if round == 1 { try log.close() } else { fileSystem.crash() }
            log = try F.open(environment, configuration)
            let fetched = try log.read(from: 0, maxBytes: 1 << 20, isolation: .readCommitted)
            #expect(fetched.abortedTransactions == expectedAborted, "round \(round)")
        }
        #expect(log.recoveredTornTail == nil)
    }
}

/// Transactions, rolls, crashes and reopens in random order, checked against a model of the
/// records, the open transactions and the aborted ones.
@Suite struct PartitionTransactionModelTests {
    typealias F = StorageFixture

    @Test func randomTransactionsCrashesAndReopensMatchTheModel() throws {
        let seed = StorageRandom.seed("partition transaction model")
        var random = StorageRandom(seed: seed)
        for round in 0..<storageRounds(8, long: 200) {
            let (environment, fileSystem, _) = F.memory()
            var configuration = TopicConfiguration()
            configuration.fsync = .always
            configuration.segmentBytes = [1024, 2048, 8192][round % 3]
            configuration.indexIntervalBytes = 200
            var log = try F.open(environment, configuration)
            var records: [StoredRecord] = []
            var open: [Int64: Offset] = [:]
            var aborted: [PartitionLog.AbortedTransaction] = []
            var end: Offset = 0
            for step in 0..<250 {
                let context = "seed \(seed) round \(round) step \(step)"
                switch Int.random(in: 0..<100, using: &random) {
                case 0..<35:
                    let batch = (0..<Int.random(in: 1...4, using: &random)).map { F.record("k", "plain-\(step)-\($0)", Timestamp(step)) }
                    try F.append(log, batch)
                    for (i, record) in batch.enumerated() {
                        records.append(StoredRecord(offset: end + Offset(i), key: record.key, value: record.value, timestamp: record.timestamp))
                    }
                    end += Offset(batch.count)
                case 35..<70:
                    let producer = Int64.random(in: 1...3, using: &random)
                    let batch = (0..<Int.random(in: 1...3, using: &random)).map { F.record("t", "txn\(producer)-\(step)-\($0)", Timestamp(step)) }
                    try F.append(log, batch, producerID: producer, transactional: true)
                    if open[producer] == nil { open[producer] = end }
                    for (i, record) in batch.enumerated() {
                        records.append(StoredRecord(offset: end + Offset(i), key: record.key, value: record.value, timestamp: record.timestamp))
                    }
                    end += Offset(batch.count)
                case 70..<85:
                    let producer = Int64.random(in: 1...3, using: &random)
                    let type: ControlRecordType = Bool.random(using: &random) ? .commit : .abort
                    #expect(try log.appendControl(type, producerID: producer, producerEpoch: 0, timestamp: Timestamp(step)) == end, "\(context)")
                    if let first = open.removeValue(forKey: producer), type == .abort {
                        aborted.append(.init(producerID: producer, firstOffset: first, lastOffset: end))
                    }
                    end += 1
                case 85..<93:
                    fileSystem.crash()
                    log = try F.open(environment, configuration)
                default:
                    try log.close()
                    log = try F.open(environment, configuration)
                }
                let stable = open.values.min() ?? end
                #expect(log.endOffset == end, "\(context)")
                #expect(log.lastStableOffset == stable, "\(context)")
                if step % 10 == 9 {
                    #expect(try F.readAll(log) == records, "\(context)")
                    let fetched = try log.read(from: 0, maxBytes: 1 << 24, isolation: .readCommitted)
                    let lastFetched = fetched.bytes.isEmpty ? -1 : try F.lastOffset(of: fetched.bytes)
                    #expect(lastFetched < stable, "\(context)")
                    let expected = aborted.filter { $0.firstOffset <= lastFetched }
                    #expect(Set(fetched.abortedTransactions) == Set(expected), "\(context)")
                    #expect(fetched.abortedTransactions.count == expected.count, "\(context): duplicates")
                }
            }
        }
    }
}

/// Random I/O faults (torn writes, failed fsyncs, renames and directory fsyncs) and crashes
/// while appending with fsync=always: every acknowledged append survives at its offset.
@Suite struct PartitionFaultTests {
    typealias F = StorageFixture

    @Test func acknowledgedAppendsSurviveRandomFaultsAndCrashes() throws {
        let seed = StorageRandom.seed("partition faults")
        var random = StorageRandom(seed: seed)
        var faultsHit = 0
        for round in 0..<storageRounds(10, long: 300) {
            let (environment, fileSystem, _) = F.memory()
            var configuration = TopicConfiguration()
            configuration.fsync = .always
            configuration.segmentBytes = 1024
            configuration.indexIntervalBytes = 128
            var acknowledged: [Offset: [UInt8]] = [:]
            var log: PartitionLog? = try F.open(environment, configuration)
            for step in 0..<300 {
                let context = "seed \(seed) round \(round) step \(step)"
                if Int.random(in: 0..<10, using: &random) == 0 {
                    let operations: [InMemoryFileSystem.Operation] = [.write, .sync, .rename, .syncDirectory, .open, .truncate]
                    let operation = operations[Int.random(in: 0..<operations.count, using: &random)]
                    fileSystem.inject(.init(operation, tornPrefix: operation == .write ? Int.random(in: 0..<80, using: &random) : nil))
                }
                if log == nil || Int.random(in: 0..<25, using: &random) == 0 {
                    if Bool.random(using: &random) { fileSystem.crash() }
                    log = try? F.open(environment, configuration)
                    continue
                }
                let value = Array("r\(round)-s\(step)".utf8)
                do {
                    let result = try F.append(log!, [Record(key: Array("k".utf8), value: value, timestamp: Timestamp(step))])
                    #expect(acknowledged[result.firstOffset] == nil, "\(context)")
                    acknowledged[result.firstOffset] = value
                } catch let error as EddyError {
                    #expect(error.code == .io, "\(context): \(error)")
                    faultsHit += 1
                    log = nil // offline: reopen (sometimes after a crash)
                }
            }
            fileSystem.crash()
            var reopened: PartitionLog?
            for _ in 0..<5 where reopened == nil { reopened = try? F.open(environment, configuration) } // faults left armed fire once
            let final = try #require(reopened, "seed \(seed) round \(round)")
            let records = try F.readAll(final)
            #expect(records.map(\.offset) == Array(0..<final.endOffset), "seed \(seed) round \(round): offsets not dense")
            #expect(Set(records.compactMap(\.value)).count == records.count, "seed \(seed) round \(round): a record twice")
            for (offset, value) in acknowledged {
                #expect(offset < final.endOffset && records[Int(offset)].value == value,
                        "seed \(seed) round \(round): acknowledged offset \(offset) lost or changed")
            }
        }
        #expect(faultsHit > 10)
    }
}
