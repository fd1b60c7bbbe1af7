import EddyCore

/// The aborted transactions whose abort marker is in one segment (Kafka's `.txnindex`).
/// `read_committed` fetches return the entries overlapping the fetched range, so consumers skip
/// the aborted batches.
///
/// On disk: 24 bytes per entry (producer id, first offset, last offset = the marker's offset;
/// Int64 big-endian), then a CRC32C. A sealed segment always has one, possibly empty.
struct TransactionIndex: Equatable {
    private(set) var entries: [PartitionLog.AbortedTransaction] = []

    var isEmpty: Bool { entries.isEmpty }

    mutating func append(_ entry: PartitionLog.AbortedTransaction) { entries.append(entry) }

    /// Drops entries whose marker is at or after `offset`.
    mutating func truncate(toOffset offset: Offset) { entries.removeAll { $0.lastOffset >= offset } }

    static let entrySize = 24

    func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entries.count * Self.entrySize + 4)
        for entry in entries {
            bytes.appendBigEndian(entry.producerID)
            bytes.appendBigEndian(entry.firstOffset)
            bytes.appendBigEndian(entry.lastOffset)
        }
        let crc = bytes.withUnsafeBytes { CRC32C.checksum($0) }
        bytes.appendBigEndian(crc)
        return bytes
    }

    /// Decodes and validates (checksum; first <= last; markers inside `markerRange`).
    static func decode(_ bytes: [UInt8], path: String, markerRange: Range<Offset>) throws -> TransactionIndex {
        guard bytes.count >= 4, (bytes.count - 4) % entrySize == 0 else {
            throw EddyError(.corrupt, "\(path): size \(bytes.count) is not a whole number of entries plus a checksum")
        }
        let body = bytes.count - 4
        var index = TransactionIndex()
        try bytes.withUnsafeBytes { raw in
            let stored = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: body, as: UInt32.self))
            if CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<body])) != stored {
                throw EddyError(.corrupt, "\(path): checksum mismatch")
            }
            for at in stride(from: 0, to: body, by: entrySize) {
                let entry = PartitionLog.AbortedTransaction(
                    producerID: Int64(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: Int64.self)),
                    firstOffset: Int64(bigEndian: raw.loadUnaligned(fromByteOffset: at + 8, as: Int64.self)),
                    lastOffset: Int64(bigEndian: raw.loadUnaligned(fromByteOffset: at + 16, as: Int64.self)))
                if entry.firstOffset > entry.lastOffset || !markerRange.contains(entry.lastOffset) {
                    throw EddyError(.corrupt, "\(path): entry at byte \(at) is out of range")
                }
                index.entries.append(entry)
            }
        }
        return index
    }
}
