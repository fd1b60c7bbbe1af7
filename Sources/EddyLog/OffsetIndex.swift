import EddyCore

/// The sparse offset index of one segment (Kafka's `.index`): pairs of (offset relative to the
/// segment's base offset, byte position of the batch that starts at that offset), one entry
/// per ``TopicConfiguration/indexIntervalBytes`` of log data, sorted by both fields.
///
/// On disk: 8 bytes per entry (relative offset UInt32, position UInt32, big-endian), then a
/// CRC32C (UInt32) of the entries. Kafka's index has no checksum; Eddy adds one so a damaged
/// index is detected when loaded and rebuilt from the segment instead of misdirecting reads.
/// Kept in memory while the segment is open; written when the segment is sealed and on close.
struct OffsetIndex: Equatable {
    /// Offsets relative to the segment's base offset, strictly increasing.
    private(set) var relativeOffsets: [UInt32] = []
    /// Byte positions in the segment, strictly increasing.
    private(set) var positions: [UInt32] = []

    var count: Int { relativeOffsets.count }
    var isEmpty: Bool { relativeOffsets.isEmpty }

    /// Adds an entry; ignored unless both fields grow (keeps the index sorted).
    mutating func append(relativeOffset: UInt32, position: UInt32) {
        if let last = relativeOffsets.last, relativeOffset <= last || position <= positions.last! { return }
        relativeOffsets.append(relativeOffset)
        positions.append(position)
    }

    /// The entry with the largest relative offset <= `relativeOffset`, or (0, 0): where a scan
    /// for that offset starts. Binary search, no allocation.
    func lookup(relativeOffset: UInt32) -> (relativeOffset: UInt32, position: UInt32) {
        var low = 0, high = relativeOffsets.count
        while low < high {
            let middle = (low + high) / 2
            if relativeOffsets[middle] <= relativeOffset { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? (0, 0) : (relativeOffsets[low - 1], positions[low - 1])
    }

    /// Drops entries at or after byte `position` (after the segment is truncated there).
    mutating func truncate(toPosition position: UInt32) {
        while let last = positions.last, last >= position {
            positions.removeLast()
            relativeOffsets.removeLast()
        }
    }

    static let entrySize = 8

    /// The file contents.
    func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(relativeOffsets.count * Self.entrySize + 4)
        for i in relativeOffsets.indices {
            bytes.appendBigEndian(relativeOffsets[i])
            bytes.appendBigEndian(positions[i])
        }
        let crc = bytes.withUnsafeBytes { CRC32C.checksum($0) }
        bytes.appendBigEndian(crc)
        return bytes
    }

    /// Decodes and validates an index file: checksum, entries strictly increasing in both fields,
    /// positions inside the segment (`< segmentSize`), offsets below `offsetLimit` (relative).
    /// Throws `.corrupt` naming `path` and the byte of the first bad entry.
    static func decode(_ bytes: [UInt8], path: String, segmentSize: Int64, relativeOffsetLimit: Int64) throws -> OffsetIndex {
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
        var index = OffsetIndex()
        index.relativeOffsets.reserveCapacity(body / entrySize)
        index.positions.reserveCapacity(body / entrySize)
        try bytes.withUnsafeBytes { raw in
            for at in stride(from: 0, to: body, by: entrySize) {
                let relative = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))
                let position = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self))
                if let last = index.relativeOffsets.last, relative <= last || position <= index.positions.last! {
                    throw EddyError(.corrupt, "\(path): entry at byte \(at) is not increasing")
                }
                if Int64(position) >= segmentSize || Int64(relative) >= relativeOffsetLimit {
                    throw EddyError(.corrupt, "\(path): entry at byte \(at) points outside the segment")
                }
                index.relativeOffsets.append(relative)
                index.positions.append(position)
            }
        }
        return index
    }
}
