// swift-tools-version:6.0
import PackageDescription

// Layers (dependencies point down only):
//   hiscored, hiscore, hiscore-bench     executables: parse flags, wire things up
//   HiscoreServer, HiscoreClient         NIO: sockets, connections, shards
//   HiscoreWire                          framing, preface, envelopes <-> Swift values (protobuf-c)
//   HiscoreCore                          pure Swift: keys, radix tree, board semantics, no I/O
//   HiscoreProtoC, CProtobufC, CJemalloc generated C code and system libraries
// Release builds of the hot-path modules skip Swift's dynamic exclusivity checks (they showed up
// in profiles as swift_beginAccess/AccessSet::insert on every call); debug builds and tests keep
// them on, so violations are still caught there.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "Hiscore",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "HiscoreCore", targets: ["HiscoreCore"]),
        .library(name: "HiscoreWire", targets: ["HiscoreWire"]),
        .library(name: "HiscoreClient", targets: ["HiscoreClient"]),
        .library(name: "HiscoreServer", targets: ["HiscoreServer"]),
        .executable(name: "hiscored", targets: ["hiscored"]),
        .executable(name: "hiscore", targets: ["hiscore"]),
        .executable(name: "hiscore-bench", targets: ["hiscore-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        .systemLibrary(
            name: "CProtobufC", path: "Sources/CProtobufC", pkgConfig: "libprotobuf-c",
            providers: [.apt(["libprotobuf-c-dev"])]),
        .systemLibrary(
            name: "CJemalloc", path: "Sources/CJemalloc", pkgConfig: "jemalloc",
            providers: [.apt(["libjemalloc-dev"])]),
        .target(name: "HiscoreProtoC", dependencies: ["CProtobufC"], path: "Sources/HiscoreProtoC"),
        // hiscored's jemalloc defaults (its `malloc_conf`): linked into hiscored only.
        .target(name: "CAllocatorDefaults", path: "Sources/CAllocatorDefaults"),
        // pidfd_open for hiscored's --exit-with-parent (header only, no library).
        .systemLibrary(name: "CProcessWatch", path: "Sources/CProcessWatch"),
        // The engine's one C dependency: a cache prefetch hint (header only, no library).
        .systemLibrary(name: "CCacheHint", path: "Sources/CCacheHint"),
        .target(name: "HiscoreCore", dependencies: ["CCacheHint"], swiftSettings: hotPath),
        .target(name: "HiscoreStorage", dependencies: ["HiscoreCore"]),
        // API keys, roles and player tokens (JWT HS256); no I/O.
        .target(
            name: "HiscoreAuth",
            dependencies: ["HiscoreWire", "HiscoreCore"]),
        .target(
            name: "HiscoreWire",
            dependencies: [
                "HiscoreCore", "HiscoreProtoC", "CProtobufC",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: hotPath),
        .target(
            name: "HiscoreServer",
            dependencies: [
                "HiscoreCore", "HiscoreWire", "HiscoreAuth", "HiscoreStorage", "CJemalloc",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: hotPath),
        .target(
            name: "HiscoreClient",
            dependencies: [
                "HiscoreCore", "HiscoreWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]),
        .executableTarget(
            name: "hiscored",
            dependencies: [
                "HiscoreServer", "HiscoreAuth", "HiscoreStorage", "HiscoreWire", "CJemalloc", "CAllocatorDefaults", "CProcessWatch",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .executableTarget(
            name: "hiscore",
            dependencies: [
                "HiscoreClient", "HiscoreCore", "HiscoreAuth", "HiscoreWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .executableTarget(
            name: "hiscore-bench",
            dependencies: [
                "HiscoreCore", "HiscoreWire", "HiscoreClient", "HiscoreServer", "CJemalloc",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]),
        // libFuzzer target over the preface, the frame decoder and envelope decoding (make fuzz).
        .target(
            name: "HiscoreFuzzing",
            dependencies: ["HiscoreWire", "HiscoreCore", .product(name: "NIOCore", package: "swift-nio")]),
        .executableTarget(name: "hiscore-fuzz", dependencies: ["HiscoreFuzzing", "HiscoreWire", "HiscoreCore"]),
        // Test helpers that more than one test target uses (offCooperativePool and its trait,
        // withTmpfs, SplitMix64 and testSeeds): one copy instead of one a test module. Only test targets depend on it, so no
        // product (nor the Testing module it imports) links it in.
        .target(name: "HiscoreTestSupport", path: "Tests/HiscoreTestSupport"),
        .testTarget(name: "HiscoreCoreTests", dependencies: ["HiscoreCore", "HiscoreTestSupport"]),
        .testTarget(name: "HiscoreStorageTests", dependencies: ["HiscoreStorage", "HiscoreCore", "HiscoreTestSupport"]),
        .testTarget(
            name: "HiscoreWireTests",
            dependencies: ["HiscoreWire", "HiscoreCore", "HiscoreFuzzing", "CJemalloc", "HiscoreTestSupport"]),
        .testTarget(
            name: "HiscoreServerTests",
            dependencies: [
                "HiscoreServer", "HiscoreClient", "HiscoreWire", "HiscoreCore", "HiscoreAuth", "HiscoreStorage",
                "HiscoreTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                // Reference implementation the token primitives (HiscoreAuth) are checked against.
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
