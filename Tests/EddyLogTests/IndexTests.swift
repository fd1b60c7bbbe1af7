import EddyCore
@testable import EddyLog
import Testing

@Suite struct IndexTests {
    @Test func theOffsetIndexFindsTheEntryAtOrBeforeAnOffset() {
        var index = OffsetIndex()
        #expect(index.lookup(relativeOffset: 5) == (0, 0))
        index.append(relativeOffset: 10, position: 1000)
        index.append(relativeOffset: 20, position: 2000)
        index.append(relativeOffset: 20, position: 2500) // not increasing: ignored
        index.append(relativeOffset: 15, position: 3000) // not increasing: ignored
        index.append(relativeOffset: 30, position: 3000)
        #expect(index.count == 3)
        #expect(index.lookup(relativeOffset: 0) == (0, 0))
        #expect(index.lookup(relativeOffset: 9) == (0, 0))
        #expect(index.lookup(relativeOffset: 10) == (10, 1000))
        #expect(index.lookup(relativeOffset: 29) == (20, 2000))
        #expect(index.lookup(relativeOffset: 1_000_000) == (30, 3000))
        index.truncate(toPosition: 2000)
        #expect(index.count == 1)
        #expect(index.lookup(relativeOffset: 29) == (10, 1000))
    }

    @Test func theOffsetIndexRoundTripsAndRejectsDamage() throws {
        var index = OffsetIndex()
        for i in 1...50 { index.append(relativeOffset: UInt32(i * 3), position: UInt32(i * 100)) }
        let bytes = index.encoded()
        #expect(bytes.count == 50 * 8 + 4)
        #expect(try OffsetIndex.decode(bytes, path: "x.index", segmentSize: 6000, relativeOffsetLimit: 200) == index)
        // Positions past the segment, offsets past its end.
        #expect(throws: EddyError.self) { try OffsetIndex.decode(bytes, path: "x.index", segmentSize: 4000, relativeOffsetLimit: 200) }
        #expect(throws: EddyError.self) { try OffsetIndex.decode(bytes, path: "x.index", segmentSize: 6000, relativeOffsetLimit: 100) }
        // Every single-byte change is caught by the checksum or the shape checks.
        for position in bytes.indices {
            var damaged = bytes
            damaged[position] ^= 0x40
            #expect(throws: EddyError.self) { try OffsetIndex.decode(damaged, path: "x.index", segmentSize: 6000, relativeOffsetLimit: 200) }
        }
        #expect(throws: EddyError.self) { try OffsetIndex.decode(Array(bytes.dropLast()), path: "x.index", segmentSize: 6000, relativeOffsetLimit: 200) }
        #expect(throws: EddyError.self) { try OffsetIndex.decode([], path: "x.index", segmentSize: 6000, relativeOffsetLimit: 200) }
        // A well-formed file whose entries go backwards.
        var backwards: [UInt8] = []
        backwards.appendBigEndian(UInt32(5)); backwards.appendBigEndian(UInt32(500))
        backwards.appendBigEndian(UInt32(4)); backwards.appendBigEndian(UInt32(600))
        backwards.appendBigEndian(backwards.withUnsafeBytes { CRC32C.checksum($0) })
        #expect { try OffsetIndex.decode(backwards, path: "x.index", segmentSize: 6000, relativeOffsetLimit: 200) } throws: {
            ($0 as? EddyError)?.message.contains("x.index") == true
        }
    }

    @Test func theTimeIndexGivesWhereASearchForATimestampStarts() throws {
        var index = TimeIndex()
        #expect(index.searchStart(forTimestamp: 100) == 0)
        index.append(timestamp: 100, relativeOffset: 0)
        index.append(timestamp: 200, relativeOffset: 10)
        index.append(timestamp: 150, relativeOffset: 20) // timestamp not growing: ignored
        index.append(timestamp: 300, relativeOffset: 20)
        #expect(index.count == 3)
        #expect(index.searchStart(forTimestamp: 50) == 0)
        #expect(index.searchStart(forTimestamp: 100) == 0)
        #expect(index.searchStart(forTimestamp: 101) == 0)
        #expect(index.searchStart(forTimestamp: 201) == 10)
        #expect(index.searchStart(forTimestamp: 301) == 20)
        #expect(index.last?.timestamp == 300)
        let bytes = index.encoded()
        #expect(try TimeIndex.decode(bytes, path: "x.timeindex", relativeOffsetLimit: 21) == index)
        #expect(throws: EddyError.self) { try TimeIndex.decode(bytes, path: "x.timeindex", relativeOffsetLimit: 20) }
        for position in bytes.indices {
            var damaged = bytes
            damaged[position] ^= 0x01
            #expect(throws: EddyError.self) { try TimeIndex.decode(damaged, path: "x.timeindex", relativeOffsetLimit: 21) }
        }
        index.truncate(toRelativeOffset: 10)
        #expect(index.count == 1)
    }

    @Test func theTransactionIndexRoundTripsAndChecksItsRange() throws {
        var index = TransactionIndex()
        index.append(.init(producerID: 7, firstOffset: 3, lastOffset: 9))
        index.append(.init(producerID: 8, firstOffset: 1, lastOffset: 12))
        let bytes = index.encoded()
        #expect(try TransactionIndex.decode(bytes, path: "x.txnindex", markerRange: 5..<20) == index)
        #expect(throws: EddyError.self) { try TransactionIndex.decode(bytes, path: "x.txnindex", markerRange: 10..<20) }
        var damaged = bytes
        damaged[3] ^= 0x10
        #expect(throws: EddyError.self) { try TransactionIndex.decode(damaged, path: "x.txnindex", markerRange: 5..<20) }
        index.truncate(toOffset: 10)
        #expect(index.entries.map(\.producerID) == [7])
    }

    @Test func theCheckpointRoundTripsAndRejectsDamage() throws {
        let checkpoint = PartitionCheckpoint(recoveryPoint: 1234, recoveryPosition: 98_765, openTransactions: [5: 1000, 9: 1200])
        let bytes = checkpoint.encoded()
        #expect(try PartitionCheckpoint.decode(bytes, path: "p") == checkpoint)
        for position in bytes.indices {
            var damaged = bytes
            damaged[position] ^= 0x80
            #expect(throws: EddyError.self) { try PartitionCheckpoint.decode(damaged, path: "p") }
        }
    }

    @Test func anAtomicMetadataWriteLeavesTheOldOrTheNewContentsNeverAMix() throws {
        let fileSystem = InMemoryFileSystem(simulatesCrashes: true)
        try fileSystem.createDirectory("/d")
        try fileSystem.writeAtomically([1, 2, 3], to: "/d/meta")
        #expect(fileSystem.contents(of: "/d/meta") == [1, 2, 3])
        // The rename fails: the old contents stay.
        fileSystem.inject(.init(.rename))
        #expect(throws: EddyError.self) { try fileSystem.writeAtomically([4, 5], to: "/d/meta") }
        #expect(fileSystem.contents(of: "/d/meta") == [1, 2, 3])
        // A torn write of the temporary file: the old contents stay.
        fileSystem.inject(.init(.write, pathContains: ".tmp", tornPrefix: 1))
        #expect(throws: EddyError.self) { try fileSystem.writeAtomically([6, 7, 8, 9], to: "/d/meta") }
        fileSystem.crash()
        #expect(fileSystem.contents(of: "/d/meta") == [1, 2, 3])
        // The directory fsync fails after the rename: a crash may then lose the new name.
        fileSystem.inject(.init(.syncDirectory))
        #expect(throws: EddyError.self) { try fileSystem.writeAtomically([10], to: "/d/meta") }
        fileSystem.crash()
        #expect(fileSystem.contents(of: "/d/meta") == [1, 2, 3])
        try fileSystem.writeAtomically([11], to: "/d/meta")
        fileSystem.crash()
        #expect(fileSystem.contents(of: "/d/meta") == [11])
    }
}
