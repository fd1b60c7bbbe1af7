import EddyCore
import EddyLog
#if canImport(Glibc)
import Glibc
#endif

/// Mode `partition-append DIRECTORY RUN`: opens the partition at DIRECTORY with fsync=always
/// and appends batches of 1–5 records forever. Record `i` of batch `seq` has key `k<seq>` and
/// value `r<RUN>-s<seq>-i<i>`. After each acknowledged append it prints (unbuffered)
/// `ack FIRST LAST SEQ`. Prints `ready END` once recovery is done. Killed by the parent.
enum PartitionAppendChild {
    static func run(_ arguments: [String]) -> Never {
        guard arguments.count >= 2, let run = Int(arguments[1]) else {
            FileHandleOutput.error("usage: EddyTestChild partition-append DIRECTORY RUN")
            exit(2)
        }
        do {
            var configuration = TopicConfiguration()
            configuration.fsync = .always
            configuration.segmentBytes = 16 * 1024
            configuration.indexIntervalBytes = 512
            let log = try _PartitionLogDriver(directory: arguments[0], configuration: configuration)
            FileHandleOutput.line("ready \(log.endOffset)")
            var sequence = 0
            var builder = RecordBatchBuilder()
            while true {
                builder.reset()
                let count = sequence % 5 + 1
                for i in 0..<count {
                    builder.append(key: Array("k\(sequence)".utf8), value: Array("r\(run)-s\(sequence)-i\(i)".utf8),
                                   headers: [], timestamp: Timestamp(sequence))
                }
                var batch = try builder.build()
                let result = try log.append(&batch)
                FileHandleOutput.line("ack \(result.firstOffset) \(result.lastOffset) \(sequence)")
                sequence += 1
            }
        } catch {
            FileHandleOutput.error("partition-append failed: \(error)")
            exit(1)
        }
    }
}
