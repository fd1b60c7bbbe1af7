import EddyCore

/// The sparse time index of one segment (Kafka's `.timeindex`): pairs of (largest timestamp
/// seen so far in the segment, offset relative to the base of the batch where that maximum was
/// reached or passed). Timestamps strictly increase. Used by
/// ``PartitionLog/offset(forTimestamp:)``: every record before an entry's batch has a timestamp
/// <= the entry's timestamp, so a search for `T` starts at the last entry whose timestamp is < `T`.
///
/// On disk: 12 bytes per entry (timestamp Int64, relative offset UInt32, big-endian), then a
/// CRC32C of the entries. The last entry always carries the segment's largest timestamp once
/// the segment is sealed or closed, so the segment's age for retention is known without a scan.
struct TimeIndex: Equatable {
    private(set) var timestamps: [Int64] = []
    private(set) var relativeOffsets: [UInt32] = []

    var count: Int { timestamps.count }
    var last: (timestamp: Int64, relativeOffset: UInt32)? {
        timestamps.isEmpty ? nil : (timestamps[timestamps.count - 1], relativeOffsets[relativeOffsets.count - 1])
    }

    /// Adds an entry; ignored unless the timestamp grows and the offset does not go back.
    mutating func append(timestamp: Int64, relativeOffset: UInt32) {
        if let last = timestamps.last, timestamp <= last || relativeOffset < relativeOffsets.last! { return }
        timestamps.append(timestamp)
        relativeOffsets.append(relativeOffset)
    }

    /// The relative offset where a search for the first record with timestamp >= `timestamp`
    /// starts: the offset of the last entry whose timestamp is < `timestamp`, else 0.
    func searchStart(forTimestamp timestamp: Int64) -> UInt32 {
        var low = 0, high = timestamps.count
        while low < high {
            let middle = (low + high) / 2
            if timestamps[middle] < timestamp { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? 0 : relativeOffsets[low - 1]
    }

    /// Drops entries at or after `relativeOffset` (after a truncation).
    mutating func truncate(toRelativeOffset relativeOffset: UInt32) {
        while let last = relativeOffsets.last, last >= relativeOffset {
            relativeOffsets.removeLast()
            timestamps.removeLast()
        }
    }

    static let entrySize = 12

    func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(timestamps.count * Self.entrySize + 4)
        for i in timestamps.indices {
            bytes.appendBigEndian(timestamps[i])
            bytes.appendBigEndian(relativeOffsets[i])
        }
        let crc = bytes.withUnsafeBytes { CRC32C.checksum($0) }
        bytes.appendBigEndian(crc)
        return bytes
    }

    /// Decodes and validates a time index file (checksum, monotonic, offsets below the limit).
    static func decode(_ bytes: [UInt8], path: String, relativeOffsetLimit: Int64) throws -> TimeIndex {
        guard bytes.count >= 4, (bytes.count - 4) % entrySize == 0 else {
            throw EddyError(.corrupt, "\(path): size \(bytes.count) is not a whole number of entries plus a checksum")
        }
        let body = bytes.count - 4
        try bytes.withUnsafeBytes { raw in
            let stored = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: body, as: UInt32.self))
            if CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<body])) != stored {
                throw EddyError(.corrupt, "\(path): checksum mismatch")
            }
        }
        var index = TimeIndex()
        try bytes.withUnsafeBytes { raw in
            for at in stride(from: 0, to: body, by: entrySize) {
                let timestamp = Int64(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: Int64.self))
                let relative = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: at + 8, as: UInt32.self))
                if let last = index.timestamps.last, timestamp <= last || relative < index.relativeOffsets.last! {
                    throw EddyError(.corrupt, "\(path): entry at byte \(at) is not increasing")
                }
                if Int64(relative) >= relativeOffsetLimit {
                    throw EddyError(.corrupt, "\(path): entry at byte \(at) points outside the segment")
                }
                index.timestamps.append(timestamp)
                index.relativeOffsets.append(relative)
            }
        }
        return index
    }
}
