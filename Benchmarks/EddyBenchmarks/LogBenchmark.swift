import EddyCore
import EddyLog
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `eddy bench log`: append and read-back throughput of the embedded log, per record size and
/// fsync policy, against the raw sequential write bandwidth of the same disk measured in the
/// same run (plain `write(2)` of the same byte count plus one `fsync`).
///
/// A program that prints figures, not a test: machines are noisy, so compare the ratios.
public enum LogBenchmark {
    public struct Options: Sendable {
        public var directory: String
        /// Records of 100 bytes to append per policy (the 1 KiB run appends a tenth as many).
        public var smallRecords: Int
        /// Records appended with fsync=always (each acknowledgement waits for a sync).
        public var syncedRecords: Int
        public init(directory: String, smallRecords: Int = 2_000_000, syncedRecords: Int = 20_000) {
            self.directory = directory
            self.smallRecords = smallRecords
            self.syncedRecords = syncedRecords
        }
    }

    struct Run {
        var label: String
        var records: Int
        var recordBytes: Int
        var appendSeconds: Double
        var readSeconds: Double
        var diskBytes: Int64
    }

    /// Runs every case and prints one line per case plus the raw baseline.
    public static func run(_ options: Options) throws {
        let root = options.directory + "/bench-log-\(getpid())"
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }

        print("eddy bench log — data in \(root)")
        print("Through the producer and consumer API (what applications get):")
        print(header)
        let cases: [(FsyncPolicy, Int, Int)] = [
            (.os, 100, options.smallRecords),
            (.os, 1024, options.smallRecords / 10),
            (.interval(milliseconds: 100), 100, options.smallRecords),
            (.interval(milliseconds: 100), 1024, options.smallRecords / 10),
            (.always, 100, options.syncedRecords),
            (.always, 1024, options.syncedRecords),
        ]
        for (index, (policy, size, count)) in cases.enumerated() {
            let run = try measure(root: root + "/case\(index)", policy: policy, recordBytes: size, records: count)
            try report(run, root: root)
        }
        print("Storage engine alone (one partition, pre-built batches of 256 KiB, records decoded in place):")
        print(header)
        for (index, (policy, size, count)) in cases.enumerated() {
            let run = try measureStorage(root: root + "/raw\(index)", policy: policy, recordBytes: size, records: count)
            try report(run, root: root)
        }
    }

    static let header = "case                        records   append rec/s  append MB/s    read rec/s   append vs raw disk"

    static func report(_ run: Run, root: String) throws {
        let raw = try rawBandwidth(directory: root, bytes: Int(run.diskBytes))
        let appendMBs = Double(run.diskBytes) / run.appendSeconds / 1e6
        let label = run.label.padding(toLength: 24, withPad: " ", startingAt: 0)
        print(label + String(format: " %9d %14.0f %12.1f %13.0f   %5.1f%% (raw %.0f MB/s)",
                             run.records, Double(run.records) / run.appendSeconds, appendMBs,
                             Double(run.records) / run.readSeconds, 100 * appendMBs / raw, raw))
    }

    /// The storage engine without the client: batches built up front are appended, then read
    /// back and every record decoded in place with `RecordBatch.forEachRecord`.
    static func measureStorage(root: String, policy: FsyncPolicy, recordBytes: Int, records: Int) throws -> Run {
        let log = try _PartitionLogDriver(directory: root + "/bench-0",
                                          configuration: TopicConfiguration(retentionMilliseconds: nil, fsync: policy))
        defer { try? log.close() }
        let value = [UInt8](repeating: 0x61, count: recordBytes - 8)
        var key = [UInt8](repeating: 0, count: 8)
        var builder = RecordBatchBuilder()
        let batchBytes = 256 * 1024
        var appended = 0
        var start = DispatchTime.now().uptimeNanoseconds
        for i in 0..<records {
            key.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(i).bigEndian, as: UInt64.self) }
            builder.append(key: key, value: value, timestamp: Timestamp(i))
            if builder.uncompressedSize >= batchBytes || i == records - 1 {
                var batch = try builder.build()
                builder.reset()
                let result = try log.append(&batch)
                appended = Int(result.lastOffset) + 1
            }
        }
        let appendSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        guard appended == records else { throw EddyError(.invalidState, "appended \(appended) of \(records)") }
        var read = 0
        var offset: Offset = 0
        var checksum = 0
        start = DispatchTime.now().uptimeNanoseconds
        while offset < log.endOffset {
            let chunk = try log.read(from: offset, maxBytes: 4 << 20)
            try chunk.withUnsafeBytes { bytes in
                var at = 0
                while at < bytes.count {
                    let batch = UnsafeRawBufferPointer(rebasing: bytes[at...])
                    let header = try RecordBatch.parseHeader(batch)
                    try RecordBatch.forEachRecord(in: batch, maximumBytes: Limits.defaultMaximumRecordBytes) { record in
                        checksum &+= record.value?.count ?? 0
                        read += 1
                    }
                    offset = header.lastOffset + 1
                    at += header.totalSize
                }
            }
        }
        let readSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        guard read == records, checksum == records * (recordBytes - 8) else {
            throw EddyError(.invalidState, "read back \(read) of \(records) records")
        }
        return Run(label: "\(recordBytes) B, fsync=\(policy)", records: records, recordBytes: recordBytes,
                   appendSeconds: appendSeconds, readSeconds: readSeconds, diskBytes: log.sizeBytes)
    }

    static func measure(root: String, policy: FsyncPolicy, recordBytes: Int, records: Int) throws -> Run {
        let log = try EmbeddedLog(directory: root)
        defer { try? log.close() }
        let topic = "bench"
        try log.admin.createTopic(topic, configuration: TopicConfiguration(partitions: 1, retentionMilliseconds: nil, fsync: policy))
        let producer = try log.makeProducer(ProducerConfiguration(clientID: "bench", batchBytes: 256 * 1024, lingerMilliseconds: 1_000))
        let value = [UInt8](repeating: 0x61, count: recordBytes - 8)
        var key = [UInt8](repeating: 0, count: 8)
        let start = DispatchTime.now().uptimeNanoseconds
        for i in 0..<records {
            key.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(i).bigEndian, as: UInt64.self) }
            try producer.send(ProducerRecord(topic: topic, partition: 0, key: key, value: value, timestamp: Timestamp(i)))
        }
        try producer.flush()
        let appendSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        try producer.close()
        let diskBytes = try log.admin.describeTopic(topic).partitions[0].sizeBytes

        let consumer = try log.makeConsumer(ConsumerConfiguration(clientID: "bench", isolation: .readUncommitted, maximumPollRecords: 100_000))
        let tp = TopicPartition(topic, 0)
        try consumer.assign([tp])
        try consumer.seekToBeginning([tp])
        var read = 0
        let readStart = DispatchTime.now().uptimeNanoseconds
        while read < records {
            let batch = try consumer.poll(timeoutMilliseconds: 1_000)
            if batch.isEmpty { break }
            read += batch.count
        }
        let readSeconds = Double(DispatchTime.now().uptimeNanoseconds - readStart) / 1e9
        try consumer.close()
        guard read == records else { throw EddyError(.invalidState, "read back \(read) of \(records) records") }
        return Run(label: "\(recordBytes) B, fsync=\(policy)", records: records, recordBytes: recordBytes,
                   appendSeconds: appendSeconds, readSeconds: readSeconds, diskBytes: diskBytes)
    }

    /// MB/s of writing `bytes` with plain write(2) in 1 MiB chunks and one fsync at the end.
    static func rawBandwidth(directory: String, bytes: Int) throws -> Double {
        let path = directory + "/raw-\(getpid())"
        let fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0o644)
        guard fd >= 0 else { throw EddyError.system("open", path: path, errno: errno) }
        defer { close(fd); unlink(path) }
        let chunk = [UInt8](repeating: 0x61, count: 1 << 20)
        let start = DispatchTime.now().uptimeNanoseconds
        var left = bytes
        while left > 0 {
            let n = min(left, chunk.count)
            let written = chunk.withUnsafeBytes { write(fd, $0.baseAddress, n) }
            guard written > 0 else { throw EddyError.system("write", path: path, errno: errno) }
            left -= written
        }
        fsync(fd)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return Double(bytes) / seconds / 1e6
    }
}
