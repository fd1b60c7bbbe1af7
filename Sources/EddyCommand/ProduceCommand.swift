import ArgumentParser
import EddyCore
import EddyLog
import EddyTopologies

/// `eddy produce TOPIC`: JSON lines on stdin, one record each.
struct ProduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Append records read as JSON lines from standard input.",
        discussion: """
            Each line: {"key": ..., "value": ..., "headers": {"h": "v"}, "timestamp": MS, "partition": N}.
            Only "value" is required. A JSON string is stored as its UTF-8 bytes, any other JSON value
            as its compact JSON text; null is a null key or a tombstone value. A malformed line stops
            the run with its line number; every line before it is written, nothing after it.
            Prints {"records": N, "partitions": {"P": count, ...}} on success.
            """)

    @OptionGroup var log: LogOptions
    @Argument(help: "Topic to append to.") var topic: String
    @Option(help: "Compression of the batches: none, lz4, zstd (default: the topic's).") var compression: String?

    func run() throws {
        let codec = try compression.map { name -> CompressionCodec in
            guard let c = CompressionCodec(rawValue: name) else { throw ValidationError("--compression must be none, lz4 or zstd") }
            return c
        }
        try reportingErrors {
            let backend = try log.open()
            defer { try? backend.close() }
            let description = try backend.admin.describeTopic(topic)
            var configuration = ProducerConfiguration(clientID: "eddy-produce")
            configuration.compression = codec ?? description.configuration.compression
            let producer = try backend.makeProducer(configuration)
            let counter = DeliveryCounter()
            var lineNumber = 0
            var failure: String?
            while let line = readLine(strippingNewline: true) {
                lineNumber += 1
                if line.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" }) { continue }
                do {
                    let record = try Self.record(from: line, topic: topic)
                    try producer.send(record) { result in counter.record(result) }
                } catch let error as JSONValue.JSONError {
                    failure = "line \(lineNumber): malformed JSON: \(error)"
                } catch let error as LineError {
                    failure = "line \(lineNumber): \(error.reason)"
                } catch let error as EddyError {
                    failure = "line \(lineNumber): \(error.message)"
                }
                if failure != nil { break }
            }
            do {
                try producer.flush()
                try producer.close()
            } catch let error as EddyError {
                failure = failure ?? "append failed: \(error.message)"
            }
            let partitions = counter.perPartition.sorted { $0.key < $1.key }
                .map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
            print("{\"records\":\(counter.delivered),\"partitions\":{\(partitions)}}")
            if let failure {
                if let first = counter.firstError { printError("error: \(first)") }
                printError("error: \(failure); \(counter.delivered) records before it were written")
                throw ExitCode(1)
            }
        }
    }

    struct LineError: Error { var reason: String }

    /// Converts one JSON line to a record; throws `LineError` or `JSONError` naming the problem.
    static func record(from line: String, topic: String) throws -> ProducerRecord {
        let json = try JSONValue.parse(line)
        guard case .object(let members) = json else { throw LineError(reason: "expected a JSON object") }
        var record = ProducerRecord(topic: topic, value: nil)
        var sawValue = false
        for (name, value) in members {
            switch name {
            case "key": record.key = bytes(of: value)
            case "value": record.value = bytes(of: value); sawValue = true
            case "timestamp":
                guard case .number(let text) = value, let ms = Int64(text) else {
                    throw LineError(reason: "\"timestamp\" must be an integer number of milliseconds")
                }
                record.timestamp = ms
            case "partition":
                guard case .number(let text) = value, let p = Int(text), p >= 0 else {
                    throw LineError(reason: "\"partition\" must be a non-negative integer")
                }
                record.partition = p
            case "headers":
                guard case .object(let headers) = value else {
                    throw LineError(reason: "\"headers\" must be an object of strings")
                }
                record.headers = headers.map { key, value in
                    switch value {
                    case .null: return Header(key: key, value: nil)
                    case .string(let s): return Header(key, s)
                    default: return Header(key: key, value: Array(value.compactText.utf8))
                    }
                }
            default:
                throw LineError(reason: "unknown field \"\(name)\" (expected key, value, headers, timestamp, partition)")
            }
        }
        guard sawValue else { throw LineError(reason: "missing \"value\"") }
        return record
    }

    static func bytes(of value: JSONValue) -> [UInt8]? {
        switch value {
        case .null: return nil
        case .string(let s): return Array(s.utf8)
        default: return Array(value.compactText.utf8)
        }
    }
}

/// Counts acknowledgements per partition. Delivery handlers run on this thread (embedded
/// log) or the producer's polling thread; the produce command only reads it after `flush`.
final class DeliveryCounter: @unchecked Sendable {
    var delivered = 0
    var perPartition: [Int: Int] = [:]
    var firstError: String?
    func record(_ result: Result<RecordMetadata, EddyError>) {
        switch result {
        case .success(let metadata):
            delivered += 1
            perPartition[metadata.topicPartition.partition, default: 0] += 1
        case .failure(let error):
            if firstError == nil { firstError = error.message }
        }
    }
}
