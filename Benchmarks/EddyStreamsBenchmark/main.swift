// `eddy bench streams` as a program of its own: the same benchmark (EddyBenchmarks'
// StreamsBenchmark) without the CLI's HTTP and Protobuf dependencies, so a release build
// takes a fraction of the time. Arguments as `eddy bench streams`:
//
//   swift run -c release EddyStreamsBenchmark [--records N] [--scenario stateless|windowed|join|all]
//       [--guarantee at_least_once|exactly_once|both] [--latency-records N] [--latency-rate N] [--directory PATH]
import EddyBenchmarks
import Foundation

do {
    try StreamsBenchmark.run(try StreamsBenchmark.options(arguments: Array(CommandLine.arguments.dropFirst())))
} catch {
    FileHandle.standardError.write(Data("EddyStreamsBenchmark: \(error)\n".utf8))
    exit(1)
}
