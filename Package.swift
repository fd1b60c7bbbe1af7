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
        .library(name: "EddyStreams", targets: ["EddyStreams"]),
        .library(name: "Eddy", targets: ["Eddy"]),
        .library(name: "EddySchema", targets: ["EddySchema"]),
        .library(name: "EddySchemaServer", targets: ["EddySchemaServer"]),
        .library(name: "EddySchemaProtobuf", targets: ["EddySchemaProtobuf"]),
        .library(name: "EddyKafka", targets: ["EddyKafka"]),
        .library(name: "EddyTopologies", targets: ["EddyTopologies"]),
        .executable(name: "eddy", targets: ["EddyCommand"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
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

        .target(name: "EddyStreams", dependencies: ["EddyCore", "EddyState"], swiftSettings: strict),
        .target(name: "Eddy", dependencies: ["EddyCore", "EddyState", "EddyLog", "EddyStreams"], swiftSettings: strict),
        // Topologies/: the topologies `eddy run NAME` and `eddy describe NAME` know by name.
        .target(name: "EddyTopologies", dependencies: ["EddyCore", "EddyStreams"], path: "Topologies/EddyTopologies",
                swiftSettings: strict),
        // Examples/: small topologies written with the DSL, each tested through the TopologyTestDriver.
        .target(name: "EddyExamples", dependencies: ["Eddy"], path: "Examples/EddyExamples", swiftSettings: strict),

        // Avro / Protobuf / JSON Schema, the registry and its compatibility rules. No server code.
        .target(name: "EddySchema", dependencies: ["EddyCore"], swiftSettings: strict),
        // Serdes for swift-protobuf messages (kept apart so EddySchema depends on EddyCore only).
        .target(
            name: "EddySchemaProtobuf",
            dependencies: ["EddySchema", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: strict
        ),
        // The registry's REST API (Confluent-compatible) on Hummingbird.
        .target(
            name: "EddySchemaServer",
            dependencies: [
                "EddyCore", "EddySchema",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: strict
        ),

        .target(
            name: "EddyBenchmarks",
            dependencies: ["EddyCore", "EddyLog", "EddyState", "EddySchema", "EddyKafka", "EddyStreams"],
            path: "Benchmarks/EddyBenchmarks",
            swiftSettings: strict
        ),
        // `eddy bench streams` without the CLI's other dependencies (a quicker release build).
        .executableTarget(name: "EddyStreamsBenchmark", dependencies: ["EddyBenchmarks"],
                          path: "Benchmarks/EddyStreamsBenchmark", swiftSettings: strict),
        .executableTarget(
            name: "EddyCommand",
            dependencies: [
                "EddyCore", "EddyLog", "EddyKafka", "EddyBenchmarks", "EddySchema", "EddySchemaServer",
                "EddyState", "EddyStreams", "EddyTopologies",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // Child processes for crash tests (killed with SIGKILL by the test suites).
        .executableTarget(name: "EddyTestChild", dependencies: ["EddyCore", "EddyLog", "EddyState", "EddyStreams", "EddyTopologies"],
                          swiftSettings: strict),

        .testTarget(name: "EddyCoreTests", dependencies: ["EddyCore"], swiftSettings: strict),
        .testTarget(name: "EddyLogTests", dependencies: ["EddyCore", "EddyLog"], swiftSettings: strict),
        .testTarget(name: "EddyCommandTests", dependencies: ["EddyCommand"], swiftSettings: strict),
        .testTarget(name: "EddyStateTests", dependencies: ["EddyCore", "EddyState"], swiftSettings: strict),
        .testTarget(name: "EddyStreamsTests", dependencies: ["EddyCore", "EddyState", "EddyStreams"], swiftSettings: strict),
        .testTarget(name: "EddyStreamsRuntimeTests",
                    dependencies: ["EddyCore", "EddyLog", "EddyState", "EddyStreams", "EddyTopologies"], swiftSettings: strict),
        .testTarget(name: "EddyTopologiesTests", dependencies: ["EddyCore", "EddyStreams", "EddyTopologies"], swiftSettings: strict),
        .testTarget(name: "EddyExamplesTests", dependencies: ["Eddy", "EddyExamples"], path: "Examples/EddyExamplesTests",
                    swiftSettings: strict),
        .testTarget(
            name: "EddySchemaTests",
            dependencies: [
                "EddyCore", "EddySchema", "EddySchemaServer", "EddySchemaProtobuf",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            resources: [.copy("Resources")],
            swiftSettings: strict
        ),
        .testTarget(name: "EddyKafkaTests", dependencies: ["EddyCore", "EddyKafka", "EddyLog"], swiftSettings: strict),
        .testTarget(name: "EddyKafkaRuntimeTests",
                    dependencies: ["EddyCore", "EddyKafka", "EddyState", "EddyStreams", "EddyTopologies"], swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
