#if canImport(Glibc)
import Glibc
#endif

/// Unbuffered writes to stdout/stderr so the parent sees every line before a SIGKILL.
enum FileHandleOutput {
    static func line(_ text: String) {
        var bytes = Array((text + "\n").utf8)
        bytes.withUnsafeMutableBytes { _ = write(1, $0.baseAddress, $0.count) }
    }
    static func error(_ text: String) {
        var bytes = Array((text + "\n").utf8)
        bytes.withUnsafeMutableBytes { _ = write(2, $0.baseAddress, $0.count) }
    }
}
