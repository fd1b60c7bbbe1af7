import EddyCore
@testable import EddyLog
import Testing

/// Single-byte damage anywhere in segments and indexes: no record that fails its CRC (or sits
/// at a wrong offset) is ever returned. Either opening or reading fails with `.corrupt` naming
/// the file and byte, or the active segment's tail is cut, or (indexes) the log rebuilds the
/// index and serves everything.
@Suite struct BitFlipTests {
    typealias F = StorageFixture

    @Test func aThousandSingleByteFlipsNeverYieldADamagedRecord() throws {
        let seed = StorageRandom.seed("bit flips")
        var random = StorageRandom(seed: seed)
        var outcomes: [String: Int] = [:]
        for _ in 0..<storageRounds(1000, long: 20_000) {
            let roundSeed = random.next()
            let outcome = try Self.round(seed: roundSeed)
            outcomes[outcome, default: 0] += 1
        }
        print("bit flips: \(outcomes.sorted { $0.key < $1.key })")
        // The damage must have been seen both ways over 1,000 rounds.
        #expect(outcomes["error", default: 0] > 0)
        #expect(outcomes["rebuilt index", default: 0] > 0)
    }

    /// One round: build a log, close it (or abandon it), flip one byte, reopen, read everything.
    static func round(seed: UInt64) throws -> String {
        var random = StorageRandom(seed: seed)
        let (environment, fileSystem, _) = F.memory()
        var configuration = TopicConfiguration()
        configuration.segmentBytes = 2048
        configuration.indexIntervalBytes = 200
        configuration.fsync = .always
        let directory = "/data/orders-0"
        let log = try F.open(environment, configuration, directory: directory)
        var expected: [Offset: StoredRecord] = [:]
        for batchNumber in 0..<Int.random(in: 5...30, using: &random) {
            let transactional = batchNumber % 7 == 3
            let records = (0..<Int.random(in: 1...6, using: &random)).map { i in
                F.record("k\(batchNumber)-\(i)", String(repeating: "v", count: Int.random(in: 0...120, using: &random)),
                         Timestamp(batchNumber * 10 + i))
            }
            let result = try F.append(log, records, producerID: transactional ? 9 : -1, transactional: transactional)
            for (i, record) in records.enumerated() {
                let offset = result.firstOffset + Offset(i)
                expected[offset] = StoredRecord(offset: offset, key: record.key, value: record.value, timestamp: record.timestamp)
            }
            if transactional {
                _ = try log.appendControl(batchNumber % 2 == 0 ? .commit : .abort, producerID: 9, producerEpoch: 0, timestamp: 1)
            }
        }
        let end = log.endOffset
        if Bool.random(using: &random) { try log.close() }
        // Pick a byte uniformly over all segment and index files.
        let files = fileSystem.allFiles().filter {
            $0.hasSuffix(".log") || $0.hasSuffix(".index") || $0.hasSuffix(".timeindex") || $0.hasSuffix(".txnindex")
        }
        let sizes = files.map { fileSystem.contents(of: $0)!.count }
        var pick = Int.random(in: 0..<sizes.reduce(0, +), using: &random)
        var fileIndex = 0
        while pick >= sizes[fileIndex] { pick -= sizes[fileIndex]; fileIndex += 1 }
        let path = files[fileIndex]
        var bytes = fileSystem.contents(of: path)!
        bytes[pick] ^= UInt8.random(in: 1...255, using: &random)
        fileSystem.setContents(bytes, of: path)
        let context = "seed \(seed): flipped byte \(pick) of \(path)"
        let name = String(path.split(separator: "/").last!)

        func isNamedCorruption(_ error: any Error) -> Bool {
            guard let error = error as? EddyError, error.code == .corrupt else { return false }
            return error.message.contains(name.prefix(20)) && error.message.contains("byte")
        }

        let reopened: PartitionLog
        do {
            reopened = try F.open(environment, configuration, directory: directory)
        } catch {
            #expect(isNamedCorruption(error), "\(context): \(error)")
            return "error"
        }
        #expect(reopened.endOffset <= end, "\(context)")
        if reopened.endOffset < end {
            // Only the active segment's tail may be cut.
            #expect(path.hasSuffix(".log") && path == fileSystem.allFiles().filter { $0.hasSuffix(".log") }.last, "\(context)")
        }
        var outcome = reopened.endOffset < end ? "cut tail" : "served"
        do {
            for maxBytes in [1, 700, 1 << 20] {
                let records = try F.readAll(reopened, maxBytes: maxBytes)
                for record in records {
                    #expect(expected[record.offset] == record, "\(context): returned \(record)")
                }
                #expect(records.last.map { $0.offset < reopened.endOffset } ?? true, "\(context)")
            }
            for target in [0, 55, 150, 400] as [Timestamp] {
                if let offset = try reopened.offset(forTimestamp: target) {
                    #expect(expected[offset].map { $0.timestamp >= target } ?? false, "\(context)")
                }
            }
        } catch {
            #expect(isNamedCorruption(error), "\(context): \(error)")
            #expect(path.hasSuffix(".log"), "\(context): a damaged index must be rebuilt, not reported: \(error)")
            outcome = "error"
        }
        if !path.hasSuffix(".log") {
            // A damaged index is rebuilt: everything is served, and the file is valid after close.
            #expect(reopened.endOffset == end, "\(context)")
            #expect(try F.readAll(reopened).count == expected.count, "\(context)")
            try reopened.close()
            _ = try F.open(environment, configuration, directory: directory)
            let rewritten = fileSystem.contents(of: path)!
            let body = rewritten.count - 4
            let stored = rewritten.withUnsafeBytes { UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: body, as: UInt32.self)) }
            #expect(rewritten.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<body])) } == stored, "\(context)")
            outcome = "rebuilt index"
        }
        return outcome
    }
}
