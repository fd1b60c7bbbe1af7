import EddyCore
@testable import EddyLog
import Foundation
import Testing

/// Torn tails: a log is closed (or abandoned, as by a killed process), then its last segment
/// gets random bytes appended or is cut at a random byte; on reopen the end offset is the
/// number of records in complete batches and every record reads back byte-identical.
@Suite struct TornTailTests {
    typealias F = StorageFixture

    /// What a round appended: records by offset and each batch's size and offsets.
    struct Appended {
        var records: [StoredRecord] = []
        var batches: [(first: Offset, last: Offset, size: Int)] = []
    }

    static func appendRandomBatches(_ log: PartitionLog, count: Int, random: inout StorageRandom, into appended: inout Appended) throws {
        for _ in 0..<count {
            let recordCount = Int.random(in: 1...12, using: &random)
            var records: [Record] = []
            for _ in 0..<recordCount {
                let valueSize = Int.random(in: 0...300, using: &random)
                let value = (0..<valueSize).map { _ in UInt8.random(in: 0...255, using: &random) }
                let key: [UInt8]? = Bool.random(using: &random) ? Array("key-\(Int.random(in: 0..<50, using: &random))".utf8) : nil
                records.append(Record(key: key, value: Bool.random(using: &random) || valueSize > 0 ? value : nil,
                                      timestamp: Timestamp.random(in: 0...1_000_000, using: &random)))
            }
            let codec: CompressionCodec = [.none, .none, .none, .lz4, .zstd][Int.random(in: 0..<5, using: &random)]
            var bytes = try F.batch(records, compression: codec)
            let result = try log.append(&bytes)
            appended.batches.append((result.firstOffset, result.lastOffset, bytes.count))
            for (i, record) in records.enumerated() {
                appended.records.append(StoredRecord(offset: result.firstOffset + Offset(i), key: record.key,
                                                     value: record.value, timestamp: record.timestamp))
            }
        }
    }

    /// How a round damages the last segment.
    enum Damage { case garbage([UInt8]), cut(Int) }

    /// The end offset once `damage` hits the last segment (base `lastBase`, starting at byte 0).
    static func expectedEnd(_ appended: Appended, lastBase: Offset, damage: Damage) -> Offset {
        guard case .cut(let at) = damage else { return appended.records.last.map { $0.offset + 1 } ?? 0 }
        var position = 0
        var end = lastBase
        for batch in appended.batches where batch.first >= lastBase {
            position += batch.size
            if position > at { break }
            end = batch.last + 1
        }
        return end
    }

    /// One round; `mutateLastSegment` applies the damage to the file.
    static func round(seed: UInt64, environment: LogEnvironment, directory: String,
                      mutate: (String, Damage) throws -> Int) throws {
        var random = StorageRandom(seed: seed)
        var configuration = TopicConfiguration()
        configuration.segmentBytes = [1024, 4096, 1 << 20][Int.random(in: 0..<3, using: &random)]
        configuration.indexIntervalBytes = [64, 512, 4096][Int.random(in: 0..<3, using: &random)]
        var appended = Appended()
        let log = try F.open(environment, configuration, directory: directory)
        try appendRandomBatches(log, count: Int.random(in: 1...12, using: &random), random: &random, into: &appended)
        let cleanClose = Int.random(in: 0..<4, using: &random) != 0
        if cleanClose { try log.close() } else { try log.flush() }
        let lastBase = log.segmentBaseOffsets.last!
        let lastPath = directory + "/" + Segment.fileName(lastBase, ".log")
        let damage: Damage
        if Bool.random(using: &random) {
            damage = .garbage((0..<Int.random(in: 1...1024, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) })
        } else {
            let size = appended.batches.filter { $0.first >= lastBase }.reduce(0) { $0 + $1.size }
            damage = .cut(Int.random(in: 0...max(size - 1, 0), using: &random))
        }
        _ = try mutate(lastPath, damage)
        // An abandoned log (not closed) stands for a killed process: recovery starts from the
        // checkpoint of the last roll or open.
        let reopened = try F.open(environment, configuration, directory: directory)
        let end = expectedEnd(appended, lastBase: lastBase, damage: damage)
        #expect(reopened.endOffset == end, "seed \(seed): \(damage)")
        let expected = appended.records.filter { $0.offset < end }
        #expect(try F.readAll(reopened, maxBytes: Int.random(in: 1...8192, using: &random)) == expected, "seed \(seed)")
        // The log keeps working after the repair.
        var more = Appended()
        try appendRandomBatches(reopened, count: 2, random: &random, into: &more)
        #expect(more.records.first?.offset == end, "seed \(seed)")
        try reopened.close()
        let again = try F.open(environment, configuration, directory: directory)
        #expect(try F.readAll(again) == expected + more.records, "seed \(seed)")
        try again.close()
    }

    @Test func aThousandTornTailsInMemoryLoseOnlyTheIncompleteBatch() throws {
        let seed = StorageRandom.seed("torn tail (memory)")
        var random = StorageRandom(seed: seed)
        for _ in 0..<storageRounds(1000, long: 20_000) {
            let roundSeed = random.next()
            let fileSystem = InMemoryFileSystem(simulatesCrashes: true)
            let environment = LogEnvironment(fileSystem: fileSystem, clock: ManualLogClock())
            try Self.round(seed: roundSeed, environment: environment, directory: "/d/orders-0") { path, damage in
                var bytes = fileSystem.contents(of: path)!
                let original = bytes.count
                switch damage {
                case .garbage(let garbage): bytes += garbage
                case .cut(let at): bytes = Array(bytes.prefix(at))
                }
                fileSystem.setContents(bytes, of: path)
                return original
            }
        }
    }

    @Test func tornTailsOnRealFilesLoseOnlyTheIncompleteBatch() throws {
        let seed = StorageRandom.seed("torn tail (disk)")
        var random = StorageRandom(seed: seed)
        let root = F.temporaryDirectory("eddy-torn")
        defer { F.removeTemporary(root) }
        for round in 0..<storageRounds(40, long: 400) {
            let roundSeed = random.next()
            try Self.round(seed: roundSeed, environment: .real, directory: root + "/orders-\(round)") { path, damage in
                let handle = try #require(FileHandle(forUpdatingAtPath: path))
                defer { try? handle.close() }
                let size = try handle.seekToEnd()
                switch damage {
                case .garbage(let garbage): try handle.write(contentsOf: Data(garbage))
                case .cut(let at): try handle.truncate(atOffset: UInt64(at))
                }
                return Int(size)
            }
        }
    }
}
