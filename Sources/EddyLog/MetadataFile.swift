import EddyCore

/// Small metadata files of the storage engine, written atomically (temp -> fsync -> rename ->
/// fsync directory, see ``FileSystem/writeAtomically(_:to:)``) and checked with a CRC32C.
enum MetadataFile {
    /// Name of a partition's checkpoint file inside its directory.
    static let checkpointName = "partition.checkpoint"

    /// Frames `body`: magic, version, length, body, CRC32C of everything before it.
    static func frame(_ body: [UInt8], magic: UInt32, version: UInt16) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(body.count + 14)
        bytes.appendBigEndian(magic)
        bytes.appendBigEndian(version)
        bytes.appendBigEndian(UInt32(body.count))
        bytes.append(contentsOf: body)
        let crc = bytes.withUnsafeBytes { CRC32C.checksum($0) }
        bytes.appendBigEndian(crc)
        return bytes
    }

    /// The body of a framed file, or `.corrupt` naming `path`.
    static func unframe(_ bytes: [UInt8], magic: UInt32, version: UInt16, path: String) throws -> [UInt8] {
        guard bytes.count >= 14 else { throw EddyError(.corrupt, "\(path): \(bytes.count) bytes, too short") }
        return try bytes.withUnsafeBytes { raw in
            let storedMagic = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
            let storedVersion = UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
            let length = Int(UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 6, as: UInt32.self)))
            guard storedMagic == magic, storedVersion == version, length == bytes.count - 14 else {
                throw EddyError(.corrupt, "\(path): bad magic, version or length")
            }
            let stored = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: bytes.count - 4, as: UInt32.self))
            guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<(bytes.count - 4)])) == stored else {
                throw EddyError(.corrupt, "\(path): checksum mismatch")
            }
            return Array(raw[10..<(bytes.count - 4)])
        }
    }
}

/// What a partition knows to be durable and valid: everything before `recoveryPoint` was
/// fsynced and validated, so recovery re-validates only what follows (Kafka's recovery-point
/// checkpoint), and the open transactions at that point (a producer-state snapshot), so the
/// last stable offset and aborted transactions are rebuilt by scanning from there.
struct PartitionCheckpoint: Equatable {
    /// Offset up to which (exclusive) the log is durable and validated.
    var recoveryPoint: Offset
    /// Byte position of `recoveryPoint` in the segment that contains it (or ends at it).
    var recoveryPosition: Int64
    /// Producer id -> first offset of its open transaction, at `recoveryPoint`.
    var openTransactions: [Int64: Offset]

    static let magic: UInt32 = 0x4544_5943 // "EDYC"
    static let version: UInt16 = 1

    func encoded() -> [UInt8] {
        var body: [UInt8] = []
        body.appendBigEndian(recoveryPoint)
        body.appendBigEndian(recoveryPosition)
        body.appendBigEndian(UInt32(openTransactions.count))
        for (producer, first) in openTransactions.sorted(by: { $0.key < $1.key }) {
            body.appendBigEndian(producer)
            body.appendBigEndian(first)
        }
        return MetadataFile.frame(body, magic: Self.magic, version: Self.version)
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> PartitionCheckpoint {
        let body = try MetadataFile.unframe(bytes, magic: magic, version: version, path: path)
        return try body.withUnsafeBytes { raw in
            var reader = ByteReader(raw, context: path)
            let point = try reader.readInt64()
            let position = try reader.readInt64()
            let count = Int(try reader.readUInt32())
            guard count <= reader.remaining / 16 else { throw EddyError(.corrupt, "\(path): bad transaction count \(count)") }
            var open: [Int64: Offset] = [:]
            for _ in 0..<count {
                let producer = try reader.readInt64()
                open[producer] = try reader.readInt64()
            }
            guard point >= 0, position >= 0, reader.remaining == 0 else {
                throw EddyError(.corrupt, "\(path): bad recovery point \(point) at byte \(position)")
            }
            return PartitionCheckpoint(recoveryPoint: point, recoveryPosition: position, openTransactions: open)
        }
    }
}
