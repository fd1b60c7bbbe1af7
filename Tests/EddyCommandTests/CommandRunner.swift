import Foundation
import Testing

/// Runs the built `eddy` executable (found next to the test bundle) with its own data directory.
struct CommandRunner {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
        var lines: [String] { stdout.split(separator: "\n").map(String.init) }
    }

    let dataDirectory: String

    init() throws {
        dataDirectory = FileManager.default.temporaryDirectory.path + "/eddy-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
    }

    func cleanUp() { try? FileManager.default.removeItem(atPath: dataDirectory) }

    static var executable: String {
        get throws {
            // The test bundle lives in the build products directory, beside the executables.
            var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            for _ in 0..<3 {
                let candidate = directory.appendingPathComponent("eddy").path
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
                directory = directory.deletingLastPathComponent()
            }
            let fallback = FileManager.default.currentDirectoryPath + "/.build/debug/eddy"
            if FileManager.default.isExecutableFile(atPath: fallback) { return fallback }
            throw CommandFailed(message: "the eddy executable was not found next to \(CommandLine.arguments[0]); run swift build first")
        }
    }

    struct CommandFailed: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// Runs `eddy ARGS --data DIR` with `input` on stdin.
    func run(_ arguments: [String], input: String = "") throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["EDDY_DATA"] = dataDirectory
        process.environment = environment
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let outData = ReadAll(stdout.fileHandleForReading)
        let errData = ReadAll(stderr.fileHandleForReading)
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        process.waitUntilExit()
        return Output(status: process.terminationStatus,
                      stdout: String(decoding: outData.wait(), as: UTF8.self),
                      stderr: String(decoding: errData.wait(), as: UTF8.self))
    }
}

/// Reads a pipe to its end on a background thread (so large outputs cannot block the child).
final class ReadAll: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)
    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            data = handle.readDataToEndOfFile()
            done.signal()
        }
    }
    func wait() -> Data {
        done.wait()
        return data
    }
}
