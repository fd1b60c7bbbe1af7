import EddyCore
@testable import EddyLog
import Testing

@Suite struct SegmentTests {
    typealias F = StorageFixture

    /// A segment at base 100 holding `count` one-record batches; returns it and each batch's position.
    static func segment(count: Int, interval: Int = 150) throws -> (Segment, InMemoryFileSystem, [Int64]) {
        let fileSystem = InMemoryFileSystem(simulatesCrashes: true)
        try fileSystem.createDirectory("/s")
        let segment = try Segment(baseOffset: 100, directory: "/s", fileSystem: fileSystem, create: true, now: 0)
        var positions: [Int64] = []
        for i in 0..<count {
            var batch = try F.batch([F.record("k\(i)", String(repeating: "v", count: i * 7 % 50), Timestamp(i * 10))])
            RecordBatch.setBaseOffset(100 + Offset(i), in: &batch)
            let fields = batch.withUnsafeBytes { BatchFields($0, at: 0) }
            positions.append(segment.size)
            try batch.withUnsafeBytes { try segment.append($0, fields: fields, indexIntervalBytes: interval, now: 0) }
        }
        return (segment, fileSystem, positions)
    }

    @Test func segmentFilesAreNamedByTheirBaseOffsetInTwentyDigits() {
        #expect(Segment.fileName(0, ".log") == "00000000000000000000.log")
        #expect(Segment.fileName(1234, ".index") == "00000000000000001234.index")
        #expect(Segment.fileName(Int64.max, ".log") == "09223372036854775807.log")
    }

    @Test func locateFindsTheBatchHoldingAnOffsetThroughTheSparseIndex() throws {
        let (segment, _, positions) = try Self.segment(count: 40)
        #expect(segment.offsetIndex.count > 3)
        #expect(segment.nextOffset == 140)
        for offset in 100..<140 as Range<Offset> {
            let found = try #require(try segment.locate(offset))
            #expect(found.position == positions[Int(offset - 100)])
            #expect(found.fields.baseOffset == offset)
        }
        #expect(try segment.locate(50)?.position == 0)
        #expect(try segment.locate(140) == nil)
    }

    @Test func checkingBatchesStopsAtTheLimitAndAtACutBatch() throws {
        let (segment, fileSystem, positions) = try Self.segment(count: 10)
        let bytes = fileSystem.contents(of: segment.logPath)!
        try bytes.withUnsafeBytes { raw in
            let all = try segment.checkBatches(raw, position: 0, expectedOffset: 100, limit: 1000)
            #expect(all.used == raw.count && all.nextOffset == 110 && !all.stopped)
            let limited = try segment.checkBatches(raw, position: 0, expectedOffset: 100, limit: 104)
            #expect(limited.used == Int(positions[4]) && limited.nextOffset == 104 && limited.stopped)
            let cut = try segment.checkBatches(UnsafeRawBufferPointer(rebasing: raw[0..<(Int(positions[3]) + 10)]),
                                               position: 0, expectedOffset: 100, limit: 1000)
            #expect(cut.used == Int(positions[3]) && cut.stopped)
            #expect(throws: SegmentCorruption.self) { try segment.checkBatches(raw, position: 0, expectedOffset: 99, limit: 1000) }
        }
    }

    @Test func aScanReportsTheFileAndByteOfTheFirstDamagedBatch() throws {
        let (segment, fileSystem, positions) = try Self.segment(count: 10)
        var bytes = fileSystem.contents(of: segment.logPath)!
        bytes[Int(positions[6]) + 30] ^= 0x01 // inside the CRC-covered part of batch 6
        fileSystem.setContents(bytes, of: segment.logPath)
        var visited: [Offset] = []
        do {
            try segment.scan(from: 0, expectedOffset: 100, maximumBatchSize: 1 << 20, chunkBytes: 100,
                             decide: { _, _ in .visit }, visit: { fields, _, _ in visited.append(fields.baseOffset) })
            Issue.record("the damaged batch was not reported")
        } catch let corruption as SegmentCorruption {
            #expect(corruption.position == positions[6])
            #expect(corruption.error.message.contains("00000000000000000100.log at byte \(positions[6])"))
        }
        #expect(visited == Array(100..<106))
    }

    @Test func truncatingASegmentDropsItsIndexEntriesPastTheCut() throws {
        let (segment, _, positions) = try Self.segment(count: 30)
        let before = segment.offsetIndex.count
        try segment.truncate(toPosition: positions[10], offset: 110)
        #expect(segment.size == positions[10])
        #expect(segment.nextOffset == 110)
        #expect(segment.offsetIndex.count < before)
        #expect(segment.offsetIndex.positions.allSatisfy { Int64($0) < positions[10] })
        #expect(try segment.file.size() == positions[10])
        #expect(try segment.locate(109)?.position == positions[9])
    }

    @Test func writtenIndexesLoadBackAndAreValidatedAgainstTheSegment() throws {
        let (segment, fileSystem, _) = try Self.segment(count: 30)
        try segment.writeIndexes()
        let offsets = segment.offsetIndex, times = segment.timeIndex, largest = segment.largestTimestamp
        #expect(largest == 290)
        #expect(times.last?.timestamp == 290)
        segment.resetIndexes()
        segment.nextOffset = 130
        try segment.loadIndexes()
        #expect(segment.offsetIndex == offsets && segment.timeIndex == times && segment.largestTimestamp == largest)
        try fileSystem.removeFile(segment.timeIndexPath)
        #expect(throws: EddyError.self) { try segment.loadIndexes() }
    }
}

@Suite struct InMemoryFileSystemTests {
    @Test func aCrashLosesUnsyncedDataAndUnsyncedDirectoryEntries() throws {
        let fileSystem = InMemoryFileSystem(simulatesCrashes: true)
        try fileSystem.createDirectory("/a")
        let synced = try fileSystem.open("/a/synced", create: true)
        try synced.write([1, 2, 3], at: 0)
        try synced.sync()
        try fileSystem.syncDirectory("/a")
        try synced.write([4, 5], at: 3)
        let unnamed = try fileSystem.open("/a/unnamed", create: true)
        try unnamed.write([9], at: 0)
        try unnamed.sync()
        fileSystem.crash()
        #expect(fileSystem.contents(of: "/a/synced") == [1, 2, 3])
        #expect(!fileSystem.exists("/a/unnamed"))
    }

    @Test func injectedFaultsFailTheMatchingCallOnce() throws {
        let fileSystem = InMemoryFileSystem(simulatesCrashes: true)
        try fileSystem.createDirectory("/a")
        let file = try fileSystem.open("/a/f.log", create: true)
        fileSystem.inject(.init(.write, pathContains: ".log", tornPrefix: 2))
        #expect(throws: EddyError.self) { try file.write([1, 2, 3, 4], at: 0) }
        #expect(fileSystem.contents(of: "/a/f.log") == [1, 2])
        try file.write([7], at: 2)
        fileSystem.inject(.init(.sync))
        #expect { try file.sync() } throws: { ($0 as? EddyError)?.message.contains("fsync") == true }
        try file.sync()
        fileSystem.inject(.init(.read, errno: 5))
        var buffer = [UInt8](repeating: 0, count: 3)
        #expect(throws: EddyError.self) { _ = try buffer.withUnsafeMutableBytes { try file.read(into: $0, at: 0) } }
        #expect(try buffer.withUnsafeMutableBytes { try file.read(into: $0, at: 0) } == 3)
        #expect(buffer == [1, 2, 7])
    }
}
