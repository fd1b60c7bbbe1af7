import EddyCore
import EddyStreams
import Foundation

/// A small deterministic generator (SplitMix64), so a failing seed replays exactly.
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

/// The seed of a randomised test: `EDDY_SEED` when set (to replay a failure), else a fresh
/// one; printed either way.
func testSeed(_ test: String) -> UInt64 {
    let seed = ProcessInfo.processInfo.environment["EDDY_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
    print("\(test) seed \(seed) (replay with EDDY_SEED=\(seed))")
    return seed
}

/// The message of an ``EddyError`` thrown by `body`, or nil when it throws none.
func eddyErrorMessage(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch let error as EddyError {
        return error.message
    } catch {
        return "not an EddyError: \(error)"
    }
}
