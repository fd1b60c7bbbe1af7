// swift-tools-version: 6.0
// Eddy: stream processing for Swift. Module map and import rules: ../shared/DESIGN.md ("Modules").
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Eddy",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "EddyCore", targets: ["EddyCore"]),
        .library(name: "EddyLog", targets: ["EddyLog"]),
        .library(name: "EddyState", targets: ["EddyState"]),
        .library(name: "EddyKafka", targets: ["EddyKafka"]),
        .executable(name: "eddy", targets: ["EddyCommand"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C code of our own: CRC32C with the CPU's crc32 instruction. Imported by EddyCore alone.
        .target(name: "CCRC32C", path: "Sources/CCRC32C"),
        // Debian's libzstd-dev and liblz4-dev. Imported by EddyLog alone.
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CLZ4", path: "Sources/CLZ4", pkgConfig: "liblz4",
                       providers: [.apt(["liblz4-dev"])]),
        // Debian's librocksdb-dev (C API, rocksdb/c.h). Imported by EddyState alone.
        .systemLibrary(name: "CRocksDB", path: "Sources/CRocksDB",
                       providers: [.apt(["librocksdb-dev"])]),
        // Debian's librdkafka-dev 2.0.x (rdkafka.h, rdkafka_mock.h). Imported by EddyKafka alone.
        .systemLibrary(name: "CRdKafka", path: "Sources/CRdKafka", pkgConfig: "rdkafka",
                       providers: [.apt(["librdkafka-dev"])]),

        .target(name: "EddyCore", dependencies: ["CCRC32C"], swiftSettings: strict),
        .target(name: "EddyLog", dependencies: ["EddyCore", "CZstd", "CLZ4"], swiftSettings: strict),
        .target(name: "EddyState", dependencies: ["EddyCore", "CRocksDB"], swiftSettings: strict),
        .target(name: "EddyKafka", dependencies: ["EddyCore", "CRdKafka"], swiftSettings: strict),

        .target(
            name: "EddyBenchmarks",
            dependencies: ["EddyCore", "EddyLog", "EddyState", "EddyKafka"],
            path: "Benchmarks/EddyBenchmarks",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "EddyCommand",
            dependencies: [
                "EddyCore", "EddyLog", "EddyKafka", "EddyBenchmarks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // Child processes for crash tests (killed with SIGKILL by the test suites).
        .executableTarget(name: "EddyTestChild", dependencies: ["EddyCore", "EddyLog", "EddyState"], swiftSettings: strict),

        .testTarget(name: "EddyCoreTests", dependencies: ["EddyCore"], swiftSettings: strict),
        .testTarget(name: "EddyLogTests", dependencies: ["EddyCore", "EddyLog"], swiftSettings: strict),
        .testTarget(name: "EddyCommandTests", dependencies: ["EddyCommand"], swiftSettings: strict),
        .testTarget(name: "EddyStateTests", dependencies: ["EddyCore", "EddyState"], swiftSettings: strict),
        .testTarget(name: "EddyKafkaTests", dependencies: ["EddyCore", "EddyKafka", "EddyLog"], swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
