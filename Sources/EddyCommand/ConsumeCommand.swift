import ArgumentParser
import EddyCore
import EddyLog
import EddyTopologies
import Foundation

/// `eddy consume TOPIC`: prints records as JSON lines.
struct ConsumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume",
        abstract: "Print records of a topic as JSON lines.",
        discussion: """
            Each line: {"topic","partition","offset","timestamp","key","value","headers"}. Keys, values and
            header values that parse as JSON are printed as JSON, other UTF-8 as strings, anything else
            as {"base64": "..."}; --format base64 prints every payload in base64.
            Without --group, reads all partitions (or --partition) from the end unless told where to start.
            With --group, resumes from the group's committed offsets and commits what it printed.
            """)

    enum Format: String, ExpressibleByArgument { case json, base64 }

    @OptionGroup var log: LogOptions
    @Argument var topic: String
    @Option(help: "Consumer group: resume from and commit its offsets.") var group: String?
    @Flag(help: "Start at the first offset.") var fromBeginning = false
    @Option(help: "Start at this offset (needs --partition or applies to every partition).") var offset: Int64?
    @Option(help: "Start at the first record with a timestamp >= MS.") var fromTime: Int64?
    @Option(help: "Read only this partition.") var partition: Int?
    @Option(help: "Stop after N records.") var max: Int?
    @Option(help: "read_committed or read_uncommitted.") var isolation: String = "read_committed"
    @Option(help: "Stop when no record arrived for this many milliseconds (default: run until stopped).") var idleTimeoutMs: Int?
    @Option(help: "json (default) or base64 for binary payloads.") var format: Format = .json

    func run() throws {
        guard let isolationLevel = IsolationLevel(rawValue: isolation) else {
            throw ValidationError("--isolation must be read_committed or read_uncommitted")
        }
        if [fromBeginning, offset != nil, fromTime != nil].filter({ $0 }).count > 1 {
            throw ValidationError("choose one of --from-beginning, --offset, --from-time")
        }
        try reportingErrors {
            let backend = try log.open()
            defer { try? backend.close() }
            let description = try backend.admin.describeTopic(topic)
            let partitions = try partition.map { p -> [TopicPartition] in
                guard p >= 0, p < description.partitions.count else {
                    throw EddyError(.unknownPartition, "topic \(topic) has no partition \(p) (it has \(description.partitions.count))")
                }
                return [TopicPartition(topic, p)]
            } ?? (0..<description.partitions.count).map { TopicPartition(topic, $0) }

            let consumer = try backend.makeConsumer(ConsumerConfiguration(
                groupID: group, clientID: "eddy-consume", isolation: isolationLevel,
                autoOffsetReset: fromBeginning ? .earliest : .latest))
            defer { try? consumer.close() }
            try consumer.assign(partitions)
            if fromBeginning {
                try consumer.seekToBeginning(partitions)
            } else if let offset {
                for p in partitions { try consumer.seek(p, to: offset) }
            } else if let fromTime {
                let found = try consumer.offsets(forTimes: Dictionary(uniqueKeysWithValues: partitions.map { ($0, fromTime) }))
                let ends = try consumer.endOffsets(partitions)
                for p in partitions { try consumer.seek(p, to: (found[p] ?? nil) ?? ends[p] ?? 0) }
            } else if group != nil {
                let committed = try consumer.committed(partitions)
                let missing = partitions.filter { committed[$0] == nil }
                for (p, o) in committed { try consumer.seek(p, to: o) }
                try consumer.seekToEnd(missing)
            } else {
                try consumer.seekToEnd(partitions)
            }

            var out = OutputBuffer()
            var printed = 0
            var idleSince = DispatchTime.now().uptimeNanoseconds
            let limit = max ?? Int.max
            while printed < limit {
                let records = try consumer.poll(timeoutMilliseconds: 100)
                if records.isEmpty {
                    out.flush()
                    if let idle = idleTimeoutMs,
                       DispatchTime.now().uptimeNanoseconds - idleSince >= UInt64(idle) * 1_000_000 { break }
                    continue
                }
                idleSince = DispatchTime.now().uptimeNanoseconds
                var next: [TopicPartition: Offset] = [:]
                for record in records.prefix(limit - printed) {
                    out.line(Self.line(for: record, format: format))
                    next[record.topicPartition] = record.offset + 1
                    printed += 1
                }
                out.flush()
                if group != nil { try consumer.commit(next) }
            }
            out.flush()
        }
    }

    static func line(for record: ConsumerRecord, format: Format) -> String {
        var s = "{\"topic\":"
        JSONValue.writeString(record.topic, to: &s)
        s += ",\"partition\":\(record.partition),\"offset\":\(record.offset),\"timestamp\":\(record.timestamp),\"key\":"
        s += payload(record.key, format: format)
        s += ",\"value\":" + payload(record.value, format: format)
        s += ",\"headers\":{"
        for (i, header) in record.headers.enumerated() {
            if i > 0 { s += "," }
            JSONValue.writeString(header.key, to: &s)
            s += ":" + payload(header.value, format: format)
        }
        s += "}"
        if format == .base64 { s += ",\"format\":\"base64\"" }
        s += "}"
        return s
    }

    /// JSON if the bytes are JSON, a string if UTF-8, else base64 (marked by the caller's format).
    static func payload(_ bytes: [UInt8]?, format: Format) -> String {
        guard let bytes else { return "null" }
        if format == .base64 { return "\"" + Data(bytes).base64EncodedString() + "\"" }
        if let json = JSONValue.parse(bytes: bytes) { return json.compactText }
        var s = ""
        if let text = String(validating: bytes, as: UTF8.self) {
            JSONValue.writeString(text, to: &s)
        } else {
            s = "{\"base64\":\"" + Data(bytes).base64EncodedString() + "\"}"
        }
        return s
    }
}
