import EddyCore
import Foundation
import Testing

/// A worker child process (`EddyTestChild MODE …`) for crash tests: its standard output is
/// collected line by line on a background thread, its standard error goes to a file (kept for
/// diagnostics), and the test may SIGKILL it at any moment.
final class WorkerProcess: @unchecked Sendable {
    // @unchecked: `output` is only touched under `lock`; `process` is used by the test's thread.

    /// Longest a worker may take to print `started`.
    static let startTimeout: TimeInterval = 120

    private let process = Process()
    private let lock = NSLock()
    private var output = Data()
    private let drained = DispatchSemaphore(value: 0)

    /// The EddyTestChild executable: `EDDY_TEST_CHILD` when set (e.g. a release build, for long
    /// runs), else the one next to the test bundle (built by `swift build --build-tests`).
    static func executable() throws -> String {
        if let path = ProcessInfo.processInfo.environment["EDDY_TEST_CHILD"], !path.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw EddyError(.invalidArgument, "EDDY_TEST_CHILD=\(path) is not an executable")
            }
            return path
        }
        let argument0 = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        var directory = argument0.deletingLastPathComponent()
        for _ in 0..<4 {
            let path = directory.path + "/EddyTestChild"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
            directory = directory.deletingLastPathComponent()
        }
        Issue.record("EddyTestChild not found near \(argument0.path); build it with `swift build --build-tests`")
        throw EddyError(.invalidState, "EddyTestChild is missing")
    }

    /// Starts `EddyTestChild arguments…`, appending its standard error to `errorPath`.
    init(arguments: [String], errorPath: String) throws {
        process.executableURL = URL(fileURLWithPath: try Self.executable())
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        if !FileManager.default.fileExists(atPath: errorPath) {
            _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        }
        let errors = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
        errors.seekToEndOfFile()
        process.standardError = errors
        try process.run()
        try? errors.close()
        try? pipe.fileHandleForWriting.close()
        let reading = pipe.fileHandleForReading
        Thread.detachNewThread { [self] in
            while true {
                let chunk = reading.availableData
                if chunk.isEmpty { break }
                lock.withLock { output.append(chunk) }
            }
            drained.signal()
        }
    }

    /// Everything the worker printed so far.
    var text: String { lock.withLock { String(decoding: output, as: UTF8.self) } }

    /// Waits until the worker printed a line starting with `prefix` or exited; returns that line.
    func waitForLine(startingWith prefix: String, timeout: TimeInterval = WorkerProcess.startTimeout) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let lines = text.split(separator: "\n")
            if let line = lines.first(where: { $0.hasPrefix(prefix) }) { return String(line) }
            if !process.isRunning {
                return text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }).map(String.init)
            }
            usleep(1_000)
        }
        return nil
    }

    /// Waits until a `progress N …` line reports N > 0 processed records; false on timeout or exit.
    func waitForProcessing(timeout: TimeInterval = WorkerProcess.startTimeout) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && process.isRunning {
            let processing = text.split(separator: "\n").contains { line in
                let fields = line.split(separator: " ")
                return fields.count == 3 && fields[0] == "progress" && (Int(fields[1]) ?? 0) > 0
            }
            if processing { return true }
            usleep(1_000)
        }
        return false
    }

    /// Sends SIGKILL (the worker gets no chance to clean up).
    func kill() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }

    /// Waits for the worker to exit; returns everything it printed.
    @discardableResult
    func wait() -> String {
        process.waitUntilExit()
        drained.wait()
        drained.signal()
        return text
    }

    /// The exit status, or the signal that ended the worker (after ``wait()``).
    var terminationStatus: Int32 { process.terminationStatus }

    /// Whether the worker ended by SIGKILL rather than exiting on its own (after ``wait()``).
    var wasKilled: Bool { process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL }
}
