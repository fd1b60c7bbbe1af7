import EddyCore
import EddyLog
import EddyStreams
import Foundation

/// The verifier of the exactly-once system test (Kafka's `EosTestDriver.verify`): reads the
/// input and every output topic of one application back from the log with `read_committed`,
/// recomputes each aggregate from the input, and counts what differs.
///
/// Recomputation: a key lives in one input partition, so its records have one order (offset
/// order). The k-th `sum`/`min` output of key K must be the sum/minimum of K's first k inputs;
/// the k-th `max`/`count` output of `rK` the maximum/count of K's first k inputs; the k-th
/// `group-count` output of group G must be k (records of a group come from several
/// partitions, so only their number is determined). `echo` must equal the input per partition.
struct ExactlyOnceSystemLog {
    /// A decoded record: the numeric key (`K`, `rK` and `gG` all decode to their number) and value.
    struct Entry: Equatable {
        var key: Int
        var value: Int64
    }

    /// How one output topic compares with its recomputation.
    struct TopicReport: CustomStringConvertible {
        var topic: String
        var expected = 0
        var seen = 0
        /// Output records beyond the expected ones (at-least-once: inputs processed twice).
        var duplicates = 0
        /// Expected output records that are missing.
        var losses = 0
        /// Output records with a value other than the recomputed one.
        var wrong = 0
        var firstProblem: String?

        var isExact: Bool { duplicates == 0 && losses == 0 && wrong == 0 }
        var description: String {
            "\(topic): \(seen)/\(expected) records, \(duplicates) duplicates, \(losses) losses, \(wrong) wrong"
                + (firstProblem.map { " (first: \($0))" } ?? "")
        }
    }

    static let aggregateTopics = ["sum", "min", "max", "count", "group-count"]
    static let outputTopics = ["echo"] + aggregateTopics

    /// Input per partition in offset order.
    var input: [[Entry]] = []
    /// Output topic (without prefix) -> per partition in offset order.
    var outputs: [String: [[Entry]]] = [:]
    /// Records of aborted transactions in the output and internal topics (records seen with
    /// read_uncommitted but not with read_committed): evidence that kills hit open transactions.
    var abortedRecords = 0
    /// Partitions whose last stable offset is short of their end: a transaction left open.
    var openTransactions: [String] = []
    /// Input partitions whose committed group offset is short of their end.
    var unconsumedInput: [String] = []

    /// `K`, `rK` or `gG` -> its number.
    static func decodeKey(_ bytes: [UInt8]?) throws -> Int {
        var text = Substring(String(decoding: bytes ?? [], as: UTF8.self))
        if text.first == "r" || text.first == "g" { text = text.dropFirst() }
        guard let key = Int(text) else { throw EddyError(.serialization, "unexpected key '\(text)'") }
        return key
    }

    /// Reads everything back from the closed log in `directory` (no worker may run).
    static func read(directory: String, application: String, prefix: String = "") throws -> ExactlyOnceSystemLog {
        let log = try EmbeddedLog(directory: directory)
        defer { try? log.close() }
        var result = ExactlyOnceSystemLog()
        result.input = try entries(log, "data")
        for topic in outputTopics { result.outputs[topic] = try entries(log, prefix + topic) }
        let internalTopics = try log.admin.listTopics().filter { $0.hasPrefix(application + "-") }
        for topic in outputTopics.map({ prefix + $0 }) + internalTopics {
            result.abortedRecords += try count(log, topic, isolation: .readUncommitted) - count(log, topic, isolation: .readCommitted)
        }
        for topic in ["data"] + outputTopics.map({ prefix + $0 }) + internalTopics {
            for partition in try log.admin.describeTopic(topic).partitions where partition.lastStableOffset < partition.endOffset {
                result.openTransactions.append("\(topic)-\(partition.partition)")
            }
        }
        let committed = try log.admin.committedOffsets(group: application)
        for partition in try log.admin.describeTopic("data").partitions {
            let offset = committed[TopicPartition("data", partition.partition)] ?? 0
            if offset < partition.endOffset {
                result.unconsumedInput.append("data-\(partition.partition) at \(offset) of \(partition.endOffset)")
            }
        }
        return result
    }

    /// Reads `topic` to its end with `isolation`, calling `body` with each record in offset
    /// order per partition.
    static func scan(_ log: EmbeddedLog, _ topic: String, isolation: IsolationLevel,
                     _ body: (ConsumerRecord) throws -> Void) throws {
        let description = try log.admin.describeTopic(topic)
        let consumer = try log.makeConsumer(ConsumerConfiguration(clientID: "eos-verifier", isolation: isolation,
                                                                  maximumPollRecords: 10_000))
        defer { try? consumer.close() }
        let partitions = description.partitions.map { TopicPartition(topic, $0.partition) }
        try consumer.assign(partitions)
        try consumer.seekToBeginning(partitions)
        var targets: [TopicPartition: Offset] = [:]
        for partition in description.partitions {
            targets[TopicPartition(topic, partition.partition)] =
                isolation == .readCommitted ? partition.lastStableOffset : partition.endOffset
        }
        var emptyPolls = 0
        while try partitions.contains(where: { try consumer.position($0) < targets[$0]! }) {
            let records = try consumer.poll(timeoutMilliseconds: 20)
            if records.isEmpty {
                // Control batches (commit and abort markers) at the end hold no records.
                emptyPolls += 1
                if emptyPolls > 20 { break }
                continue
            }
            emptyPolls = 0
            for record in records { try body(record) }
        }
    }

    static func entries(_ log: EmbeddedLog, _ topic: String) throws -> [[Entry]] {
        var result = Array(repeating: [Entry](), count: try log.admin.describeTopic(topic).partitions.count)
        try scan(log, topic, isolation: .readCommitted) { record in
            guard let value = record.value else {
                throw EddyError(.serialization, "\(topic)-\(record.partition) offset \(record.offset) has a null value")
            }
            result[record.partition].append(Entry(key: try decodeKey(record.key), value: try Serdes.int64.deserialize(value)))
        }
        return result
    }

    static func count(_ log: EmbeddedLog, _ topic: String, isolation: IsolationLevel) throws -> Int {
        var count = 0
        try scan(log, topic, isolation: isolation) { _ in count += 1 }
        return count
    }

    // MARK: - Recomputation

    /// Each key's input values in order.
    var inputPerKey: [Int: [Int64]] {
        var result: [Int: [Int64]] = [:]
        for partition in input { for entry in partition { result[entry.key, default: []].append(entry.value) } }
        return result
    }

    var inputCount: Int { input.reduce(0) { $0 + $1.count } }

    /// The expected output sequence per key of an aggregate topic.
    func expected(_ topic: String) -> [Int: [Int64]] {
        func running(_ values: [Int64], _ step: (Int64, Int64) -> Int64) -> [Int64] {
            var result: [Int64] = []
            result.reserveCapacity(values.count)
            for value in values { result.append(result.last.map { step($0, value) } ?? value) }
            return result
        }
        switch topic {
        case "sum": return inputPerKey.mapValues { running($0, +) }
        case "min": return inputPerKey.mapValues { running($0, Swift.min) }
        case "max": return inputPerKey.mapValues { running($0, Swift.max) }
        case "count": return inputPerKey.mapValues { Array(1...Int64($0.count)) }
        case "group-count":
            var groups: [Int: Int64] = [:]
            for (key, values) in inputPerKey { groups[key / 10, default: 0] += Int64(values.count) }
            return groups.mapValues { Array(1...$0) }
        default: return [:]
        }
    }

    /// The final value per key of an aggregate topic (what its store must hold).
    func expectedFinal(_ topic: String) -> [Int: Int64] {
        expected(topic).compactMapValues(\.last)
    }

    /// The seen output sequence per key of a topic.
    func seen(_ topic: String) -> [Int: [Int64]] {
        var result: [Int: [Int64]] = [:]
        for partition in outputs[topic] ?? [] { for entry in partition { result[entry.key, default: []].append(entry.value) } }
        return result
    }

    // MARK: - Exactly-once: everything equals its recomputation

    /// Echo per partition and every aggregate record per key, compared one for one.
    func exactReports() -> [TopicReport] {
        var echo = TopicReport(topic: "echo")
        for (partition, inputs) in input.enumerated() {
            let outputs = (outputs["echo"] ?? []).indices.contains(partition) ? outputs["echo"]![partition] : []
            compare(inputs, outputs, into: &echo, what: "data-\(partition)")
        }
        var reports = [echo]
        for topic in Self.aggregateTopics {
            var report = TopicReport(topic: topic)
            let seen = seen(topic)
            let recomputed = expected(topic)
            for (key, expected) in recomputed.sorted(by: { $0.key < $1.key }) {
                compare(expected, seen[key] ?? [], into: &report, what: "key \(key)")
            }
            for (key, values) in seen where recomputed[key] == nil {
                report.seen += values.count
                report.duplicates += values.count
                if report.firstProblem == nil { report.firstProblem = "unexpected key \(key)" }
            }
            reports.append(report)
        }
        return reports
    }

    private func compare<T: Equatable>(_ expected: [T], _ seen: [T], into report: inout TopicReport, what: String) {
        report.expected += expected.count
        report.seen += seen.count
        guard expected != seen else { return }
        report.duplicates += max(0, seen.count - expected.count)
        report.losses += max(0, expected.count - seen.count)
        let wrong = zip(expected, seen).enumerated().filter { $0.element.0 != $0.element.1 }
        report.wrong += wrong.count
        if report.firstProblem == nil {
            if let first = wrong.first {
                report.firstProblem = "\(what) record \(first.offset): expected \(first.element.0), saw \(first.element.1)"
            } else {
                report.firstProblem = "\(what): expected \(expected.count) records, saw \(seen.count)"
            }
        }
    }

    // MARK: - At-least-once: nothing lost, duplicates counted

    /// Echo: the input must be a subsequence of the echo (in order per partition); duplicates
    /// are the echo records beyond it. `count`/`group-count`: the final count must reach the
    /// input's (the surplus is inputs counted twice). `min`/`max`: the final values must equal
    /// the recomputation (replays do not change them) and every output must be the min/max of
    /// some input prefix. `sum`: the final sum must reach the input's (values are not negative).
    func atLeastOnceReports() -> [TopicReport] {
        var echo = TopicReport(topic: "echo")
        for (partition, inputs) in input.enumerated() {
            let outputs = (outputs["echo"] ?? []).indices.contains(partition) ? outputs["echo"]![partition] : []
            var matched = 0
            for entry in outputs where matched < inputs.count && entry == inputs[matched] { matched += 1 }
            echo.expected += inputs.count
            echo.seen += outputs.count
            echo.losses += inputs.count - matched
            echo.duplicates += outputs.count - matched
            if matched < inputs.count && echo.firstProblem == nil {
                echo.firstProblem = "data-\(partition) record \(matched) (\(inputs[matched])) has no echo"
            }
        }
        var reports = [echo]
        for topic in Self.aggregateTopics {
            var report = TopicReport(topic: topic)
            let seen = seen(topic)
            for (key, expected) in expected(topic).sorted(by: { $0.key < $1.key }) {
                let outputs = seen[key] ?? []
                report.expected += expected.count
                report.seen += outputs.count
                let final = expected.last!
                guard let last = outputs.last else {
                    report.losses += expected.count
                    continue
                }
                switch topic {
                case "count", "group-count":
                    report.duplicates += Int(max(0, last - final))
                    report.losses += Int(max(0, final - last))
                case "sum":
                    if last < final { report.losses += 1 }
                default:
                    let prefixes = Set(expected)
                    let wrong = outputs.filter { !prefixes.contains($0) }.count
                    report.wrong += wrong
                    if last != final { report.losses += 1 }
                }
                if report.firstProblem == nil && (report.losses > 0 || report.wrong > 0) {
                    report.firstProblem = "key \(key): last output \(last), recomputed \(final)"
                }
            }
            reports.append(report)
        }
        return reports
    }
}
