import CRocksDB
import EddyCore

/// Settings of the RocksDB stores of one worker. Memory figures are totals for the whole
/// worker (every task, every store), not per store.
///
/// ```swift
/// var configuration = RocksDBConfiguration()
/// configuration.blockCacheBytes = 256 << 20
/// configuration.options = "level0_file_num_compaction_trigger=8"   // escape hatch
/// let environment = try RocksDBEnvironment(configuration: configuration)
/// ```
public struct RocksDBConfiguration: Sendable {
    /// Compression of SST files.
    public enum Compression: String, Hashable, Sendable {
        case none, lz4, zstd

        var rocksDBValue: Int {
            switch self {
            case .none: return Int(rocksdb_no_compression)
            case .lz4: return Int(rocksdb_lz4_compression)
            case .zstd: return Int(rocksdb_zstd_compression)
            }
        }
    }

    /// Size of the block cache shared by every store of the worker (`rocksdb_cache_create_lru`).
    /// Index and filter blocks are charged to it too, so it bounds read memory.
    public var blockCacheBytes: Int
    /// Total memtable memory of the worker. Split evenly over the open stores' column families
    /// (see ``RocksDBEnvironment``).
    public var writeBufferBytes: Int
    /// A store's write buffer never shrinks below this, so with very many stores the total may
    /// exceed ``writeBufferBytes``: at most `stores × maximumWriteBuffersPerStore × minimum`.
    public var minimumWriteBufferBytesPerStore: Int
    /// Memtables per column family (`max_write_buffer_number`): one being written, the others
    /// waiting to be flushed.
    public var maximumWriteBuffersPerStore: Int
    /// Compression of all but the last level.
    public var compression: Compression
    /// Compression of the last level, where most of the data lives.
    public var bottommostCompression: Compression
    /// Bits per key of the full bloom filter; 0 disables it.
    public var bloomFilterBitsPerKey: Double
    /// Data block size.
    public var blockSizeBytes: Int
    /// Background flush and compaction threads per database.
    public var backgroundThreads: Int
    /// Open SST files per database (-1: unlimited).
    public var maximumOpenFiles: Int
    /// Sync the write-ahead log on every commit. Off by default: a commit is repairable from the
    /// changelog, so losing the last commits on power loss costs only a replay.
    public var syncWrites: Bool
    /// Escape hatch: any RocksDB options string (`"key=value;key=value"`, as
    /// `rocksdb_get_options_from_string` reads it), applied last, over the settings above.
    /// A bad string makes opening a ``TaskStateDirectory`` throw ``EddyError/Code/invalidArgument``.
    public var options: String

    public init(blockCacheBytes: Int = 64 << 20, writeBufferBytes: Int = 64 << 20,
                minimumWriteBufferBytesPerStore: Int = 1 << 20, maximumWriteBuffersPerStore: Int = 2,
                compression: Compression = .lz4, bottommostCompression: Compression = .zstd,
                bloomFilterBitsPerKey: Double = 10, blockSizeBytes: Int = 16 << 10,
                backgroundThreads: Int = 2, maximumOpenFiles: Int = 512, syncWrites: Bool = false,
                options: String = "") {
        self.blockCacheBytes = blockCacheBytes
        self.writeBufferBytes = writeBufferBytes
        self.minimumWriteBufferBytesPerStore = minimumWriteBufferBytesPerStore
        self.maximumWriteBuffersPerStore = maximumWriteBuffersPerStore
        self.compression = compression
        self.bottommostCompression = bottommostCompression
        self.bloomFilterBitsPerKey = bloomFilterBitsPerKey
        self.blockSizeBytes = blockSizeBytes
        self.backgroundThreads = backgroundThreads
        self.maximumOpenFiles = maximumOpenFiles
        self.syncWrites = syncWrites
        self.options = options
    }

    /// Throws ``EddyError/Code/invalidArgument`` for values out of range.
    func validate() throws {
        func require(_ condition: Bool, _ message: String) throws {
            if !condition { throw EddyError(.invalidArgument, "RocksDBConfiguration: \(message)") }
        }
        try require(blockCacheBytes >= 1 << 20, "blockCacheBytes must be at least 1 MiB, got \(blockCacheBytes)")
        try require(writeBufferBytes >= 1 << 20, "writeBufferBytes must be at least 1 MiB, got \(writeBufferBytes)")
        try require(minimumWriteBufferBytesPerStore >= 64 << 10,
                    "minimumWriteBufferBytesPerStore must be at least 64 KiB, got \(minimumWriteBufferBytesPerStore)")
        try require((2...16).contains(maximumWriteBuffersPerStore),
                    "maximumWriteBuffersPerStore must be 2...16, got \(maximumWriteBuffersPerStore)")
        try require(bloomFilterBitsPerKey >= 0 && bloomFilterBitsPerKey <= 64, "bloomFilterBitsPerKey must be 0...64")
        try require((1 << 10...4 << 20).contains(blockSizeBytes), "blockSizeBytes must be 1 KiB...4 MiB")
        try require((1...64).contains(backgroundThreads), "backgroundThreads must be 1...64")
        try require(maximumOpenFiles == -1 || maximumOpenFiles >= 16, "maximumOpenFiles must be -1 or at least 16")
    }
}
