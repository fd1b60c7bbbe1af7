// Child processes for crash tests. Each test suite adds a mode; the parent kills us with SIGKILL.
import EddyCore
import EddyLog
import Foundation

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandleOutput.error("usage: EddyTestChild MODE ...")
    exit(2)
}
switch arguments[1] {
case "hold-lock", "eos-copy": ClientChildMode.run(arguments[1], Array(arguments.dropFirst(2)))
case "streams-wordcount": StreamsRuntimeChild.run(Array(arguments.dropFirst(2)))
case "streams-eos": ExactlyOnceSystemChild.run(Array(arguments.dropFirst(2)))
case "partition-append": PartitionAppendChild.run(Array(arguments.dropFirst(2)))
case "suppress-time-limit": SuppressTimeLimitChild.run(Array(arguments.dropFirst(2)))
case "state-crash":
    do { try runStateCrashChild(arguments) } catch { FileHandleOutput.error("state-crash: \(error)"); exit(1) }
case "state-restore-crash":
    do { try runStateRestoreCrashChild(arguments) } catch { FileHandleOutput.error("state-restore-crash: \(error)"); exit(1) }
default:
    FileHandleOutput.error("unknown mode \(arguments[1])")
    exit(2)
}
