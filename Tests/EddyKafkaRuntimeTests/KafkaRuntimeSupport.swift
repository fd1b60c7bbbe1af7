import EddyCore
import EddyKafka
import Foundation
import Testing

/// The seed of a randomised test: `EDDY_SEED`, else random; printed so a run can be repeated.
func kafkaRuntimeSeed(_ test: String) -> UInt64 {
    let seed = ProcessInfo.processInfo.environment["EDDY_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)
    print("\(test): EDDY_SEED=\(seed)")
    return seed
}

/// SplitMix64: a small seeded generator for reproducible inputs.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Unique topic, group and application names, so tests never see each other's.
func uniqueKafkaName(_ prefix: String) -> String {
    "\(prefix)-\(UInt32.random(in: 0...UInt32.max))"
}

func millisecondsNow() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

struct KafkaRuntimeTestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The built `eddy` executable, found beside the test bundle (or in .build/debug).
func eddyExecutable() throws -> String {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<3 {
        let candidate = directory.appendingPathComponent("eddy").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    let fallback = FileManager.default.currentDirectoryPath + "/.build/debug/eddy"
    if FileManager.default.isExecutableFile(atPath: fallback) { return fallback }
    throw KafkaRuntimeTestFailure("the eddy executable was not found next to \(CommandLine.arguments[0]); run swift build first")
}

private func sendSignal(_ pid: Int32, _ signal: Int32) {
    _ = kill(pid, signal)
}

/// An `eddy` child process whose standard output and error go to files (read after it ends,
/// or while it runs).
final class EddyProcess {
    let process = Process()
    let stdoutPath: String
    let stderrPath: String

    init(_ arguments: [String], directory: String, name: String, environment: [String: String] = [:]) throws {
        stdoutPath = "\(directory)/\(name).out"
        stderrPath = "\(directory)/\(name).err"
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: try eddyExecutable())
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        try process.run()
    }

    var standardOutput: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var standardError: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    func kill(_ signal: Int32) {
        if process.isRunning { sendSignal(process.processIdentifier, signal) }
    }

    /// Waits up to `seconds` for the process to end; SIGKILLs it if it does not. Returns whether it ended by itself.
    @discardableResult
    func wait(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning {
            kill(SIGKILL)
            process.waitUntilExit()
            return false
        }
        return true
    }
}

/// Reads `topic` from the beginning (all partitions, read_uncommitted) up to its current end.
func readAll(_ log: KafkaLog, topic: String) throws -> [ConsumerRecord] {
    let description = try log.admin.describeTopic(topic)
    let partitions = description.partitions.map { TopicPartition(topic, $0.partition) }
    let ends = Dictionary(uniqueKeysWithValues: description.partitions.map { (TopicPartition(topic, $0.partition), $0.endOffset) })
    let consumer = try log.makeConsumer(ConsumerConfiguration(isolation: .readUncommitted, autoOffsetReset: .earliest))
    defer { try? consumer.close() }
    try consumer.assign(partitions)
    var records: [ConsumerRecord] = []
    var reached: [TopicPartition: Offset] = [:]
    let deadline = millisecondsNow() + 20_000
    while partitions.contains(where: { (reached[$0] ?? 0) < (ends[$0] ?? 0) }) && millisecondsNow() < deadline {
        for record in try consumer.poll(timeoutMilliseconds: 200) {
            records.append(record)
            reached[TopicPartition(record.topic, record.partition)] = record.offset + 1
        }
    }
    return records
}
