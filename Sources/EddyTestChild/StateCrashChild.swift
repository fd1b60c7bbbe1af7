// Mode "state-crash": writes and commits a logged RocksDB key-value store through its write buffer
// and a file changelog, forever, until the parent kills it with SIGKILL.
//
// Usage: EddyTestChild state-crash STATE_DIR CHANGELOG_FILE SEED
//
// The changelog file is a stand-in for a durable log: one frame per commit, fsynced before the
// store commits, so a commit is in the changelog exactly when its frame is complete. Frame:
// u32 payload length, u32 CRC32C of the payload, payload = i64 first offset, u32 record count,
// then per record u32 key length, key, i32 value length (-1 for a tombstone), value. All
// little-endian. The parent (Tests/EddyStateTests/StateCrashTests.swift) reads the same format.
import EddyCore
import EddyState
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Appends whole commits to the changelog file; `flush` writes one frame and fsyncs it.
final class FileChangelogProducer: LogProducer {
    private let descriptor: Int32
    private var nextOffset: Offset
    private var queued: [(ProducerRecord, DeliveryHandler?)] = []

    /// Opens `path`, keeps the valid frames and cuts a torn tail (a frame the last kill interrupted).
    init(path: String) throws {
        let data = (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()
        let bytes = [UInt8](data)
        var position = 0, offset: Offset = 0
        while position + 8 <= bytes.count {
            let length = Int(Self.u32(bytes, position)), crc = Self.u32(bytes, position + 4)
            guard position + 8 + length <= bytes.count,
                  CRC32C.checksum(bytes[(position + 8)..<(position + 8 + length)]) == crc else { break }
            let count = Self.u32(bytes, position + 8 + 8)
            offset = Offset(Self.u64(bytes, position + 8)) + Offset(count)
            position += 8 + length
        }
        descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw EddyError.system("open", path: path, errno: errno) }
        guard ftruncate(descriptor, off_t(position)) == 0, lseek(descriptor, off_t(position), SEEK_SET) >= 0 else {
            throw EddyError.system("ftruncate", path: path, errno: errno)
        }
        nextOffset = offset
    }

    static func u32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }
    static func u64(_ b: [UInt8], _ i: Int) -> UInt64 { UInt64(u32(b, i)) | UInt64(u32(b, i + 4)) << 32 }
    static func append(_ value: UInt32, _ out: inout [UInt8]) { for s in 0..<4 { out.append(UInt8(truncatingIfNeeded: value >> (8 * s))) } }

    func send(_ record: ProducerRecord, delivery: DeliveryHandler?) throws { queued.append((record, delivery)) }

    func flush() throws {
        guard !queued.isEmpty else { return }
        var payload: [UInt8] = []
        Self.append(UInt32(truncatingIfNeeded: nextOffset), &payload)
        Self.append(UInt32(truncatingIfNeeded: nextOffset >> 32), &payload)
        Self.append(UInt32(queued.count), &payload)
        for (record, _) in queued {
            let key = record.key ?? []
            Self.append(UInt32(key.count), &payload)
            payload += key
            if let value = record.value {
                Self.append(UInt32(value.count), &payload)
                payload += value
            } else {
                Self.append(UInt32(bitPattern: -1), &payload)
            }
        }
        var frame: [UInt8] = []
        Self.append(UInt32(payload.count), &frame)
        Self.append(CRC32C.checksum(payload), &frame)
        frame += payload
        let written = frame.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == frame.count, fsync(descriptor) == 0 else { throw EddyError(.io, "changelog write failed") }
        for (index, (record, handler)) in queued.enumerated() {
            handler?(.success(RecordMetadata(topicPartition: TopicPartition(record.topic, record.partition ?? 0),
                                             offset: nextOffset + Offset(index), timestamp: 0)))
        }
        nextOffset += Offset(queued.count)
        queued = []
    }

    func poll() {}
    func partitionCount(of topic: String) throws -> Int { 1 }
    func close() throws { try flush() }
}

func runStateCrashChild(_ arguments: [String]) throws -> Never {
    guard arguments.count == 5, let seed = UInt64(arguments[4]) else {
        FileHandleOutput.error("usage: EddyTestChild state-crash STATE_DIR CHANGELOG_FILE SEED")
        exit(2)
    }
    var random = ChildRandom(state: seed)
    let environment = try RocksDBEnvironment(configuration: RocksDBConfiguration(blockCacheBytes: 8 << 20, writeBufferBytes: 4 << 20,
                                                                               minimumWriteBufferBytesPerStore: 256 << 10))
    let directory = try TaskStateDirectory(stateDirectory: arguments[2], application: "crash", task: "0_0", environment: environment)
    let store = try directory.keyValueStore(named: "kv", changelog: TopicPartition("crash-kv-changelog", 0))
    let producer = try FileChangelogProducer(path: arguments[3])
    FileHandleOutput.line("ready")
    while true {
        for _ in 0..<Int.random(in: 1...40, using: &random) {
            let key = Array("k\(Int.random(in: 0..<500, using: &random))".utf8)
            if Int.random(in: 0..<5, using: &random) == 0 {
                try store.delete(key)
            } else {
                try store.put(key, [UInt8](repeating: UInt8.random(in: 0...255, using: &random), count: Int.random(in: 0...200, using: &random)))
            }
        }
        if Int.random(in: 0..<10, using: &random) == 0 {
            store.abort()
        } else {
            try store.commit(flushing: producer)
        }
    }
}

/// SplitMix64, so a child's writes are reproducible from its seed.
struct ChildRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
