import EddyCore
import EddyLog
#if canImport(Glibc)
import Glibc
#endif

/// `EddyTestChild hold-lock DIR`: opens the embedded log in DIR. On success prints
/// `opened <pid>` and holds it until stdin closes (or the parent kills us); on failure prints
/// `error <code> <message>` and exits with status 3. Used by DirectoryLockTests.
enum HoldLockMode {
    static func run(_ arguments: [String]) -> Never {
        guard let directory = arguments.first else {
            FileHandleOutput.error("usage: EddyTestChild hold-lock DIRECTORY")
            exit(2)
        }
        do {
            let log = try EmbeddedLog(directory: directory)
            FileHandleOutput.line("opened \(getpid())")
            var byte: UInt8 = 0
            while read(0, &byte, 1) > 0 {}
            try log.close()
            exit(0)
        } catch let error as EddyError {
            FileHandleOutput.line("error \(error.code.rawValue) \(error.message)")
            exit(3)
        } catch {
            FileHandleOutput.line("error unknown \(error)")
            exit(3)
        }
    }
}
