import EddyCore
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps the registry's history in one append-only file, `<directory>/schemas.log`, for
/// `eddy registry serve --data DIR` on a machine without a log backend at hand.
///
/// Each record is `keyLength u32, valueLength u32 (0xFFFFFFFF for a tombstone), key, value,
/// CRC32C u32` (big-endian, CRC over everything before it), fsynced before `append` returns.
/// On open, a torn or corrupt tail (a crash mid-append) is cut off at the last whole record.
/// Nothing is compacted: the registry's history is small (one record per version and setting).
public final class FileSchemaStorage: SchemaStorage, @unchecked Sendable {
    // @unchecked: `descriptor` is only used under `lock`.
    private let lock = NSLock()
    private let descriptor: Int32
    private var records: [SchemaStorageRecord] = []
    /// Where the last whole record ends; a failed append is cut back to it.
    private var endOffset: off_t = 0
    public let path: String
    /// Largest key or value accepted from the file, 16 MiB (a registry record is far smaller).
    public static let maximumFieldBytes = 16 * 1_048_576

    /// Opens (creating) the file in `directory` (created if missing) and reads it.
    public init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = directory + "/schemas.log"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw EddyError.system("open", path: path, errno: errno) }
        descriptor = fd
        let data = (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()
        let bytes = [UInt8](data)
        var position = 0
        func u32(_ at: Int) -> UInt32 { UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3]) }
        while position + 8 <= bytes.count {
            let keyLength = Int(u32(position)), rawValue = u32(position + 4)
            let valueLength = rawValue == 0xFFFF_FFFF ? 0 : Int(rawValue)
            guard keyLength <= Self.maximumFieldBytes, valueLength <= Self.maximumFieldBytes else { break }
            let end = position + 8 + keyLength + valueLength
            guard end + 4 <= bytes.count else { break }
            guard CRC32C.checksum(Array(bytes[position..<end])) == u32(end) else { break }
            let key = Array(bytes[(position + 8)..<(position + 8 + keyLength)])
            let value = rawValue == 0xFFFF_FFFF ? nil : Array(bytes[(position + 8 + keyLength)..<end])
            records.append(SchemaStorageRecord(key: key, value: value))
            position = end + 4
        }
        if position < bytes.count {
            // A torn tail from a crash during an append: cut it off so the next append is readable.
            guard ftruncate(fd, off_t(position)) == 0 else { throw EddyError.system("ftruncate", path: path, errno: errno) }
        }
        guard lseek(fd, off_t(position), SEEK_SET) >= 0 else { throw EddyError.system("lseek", path: path, errno: errno) }
        endOffset = off_t(position)
    }

    deinit { close(descriptor) }

    public func load() throws -> [SchemaStorageRecord] { lock.withLock { records } }

    public func append(_ record: SchemaStorageRecord) throws {
        var out: [UInt8] = []
        func put(_ v: UInt32) { out += [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)] }
        put(UInt32(record.key.count))
        put(record.value.map { UInt32($0.count) } ?? 0xFFFF_FFFF)
        out += record.key
        out += record.value ?? []
        put(CRC32C.checksum(out))
        try lock.withLock {
            do {
                var written = 0
                while written < out.count {
                    let n = out[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
                    if n < 0, errno == EINTR { continue }
                    guard n > 0 else { throw EddyError.system("write", path: path, errno: errno) }
                    written += n
                }
                guard fsync(descriptor) == 0 else { throw EddyError.system("fsync", path: path, errno: errno) }
            } catch {
                // Leave no partial record behind for the next append to follow.
                _ = ftruncate(descriptor, endOffset)
                _ = lseek(descriptor, endOffset, SEEK_SET)
                throw error
            }
            endOffset += off_t(out.count)
            records.append(record)
        }
    }
}
