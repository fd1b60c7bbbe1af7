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
        .library(name: "EddySchema", targets: ["EddySchema"]),
        .library(name: "EddySchemaServer", targets: ["EddySchemaServer"]),
        .library(name: "EddySchemaProtobuf", targets: ["EddySchemaProtobuf"]),
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

        .target(name: "EddyCore", dependencies: ["CCRC32C"], swiftSettings: strict),
        .target(name: "EddyLog", dependencies: ["EddyCore", "CZstd", "CLZ4"], swiftSettings: strict),

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
            dependencies: ["EddyCore", "EddyLog", "EddySchema"],
            path: "Benchmarks/EddyBenchmarks",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "EddyCommand",
            dependencies: [
                "EddyCore", "EddyLog", "EddyBenchmarks", "EddySchema", "EddySchemaServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // Child processes for crash tests (killed with SIGKILL by the test suites).
        .executableTarget(name: "EddyTestChild", dependencies: ["EddyCore", "EddyLog"], swiftSettings: strict),

        .testTarget(name: "EddyCoreTests", dependencies: ["EddyCore"], swiftSettings: strict),
        .testTarget(name: "EddyLogTests", dependencies: ["EddyCore", "EddyLog"], swiftSettings: strict),
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
    ],
    swiftLanguageModes: [.v6]
)
