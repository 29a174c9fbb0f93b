// swift-tools-version:6.0
import PackageDescription

// Our modules see only the members of the modules they import themselves (SE-0444): without it an
// extension of Foundation (imported by swift-crypto) is callable from a file that imports only
// FoundationEssentials, and links Foundation and ICU in (docs/benchmarks.md, footprint).
let ownModule: [SwiftSetting] = [.enableUpcomingFeature("MemberImportVisibility")]

// Release builds of our modules whose code speed users do not feel (command parsing, the run plan,
// the registry client, the repository's bookkeeping) optimise for size: the binary has to stay at
// most 30 MB (issue 22, docs/portable-binary.md). Archive and UDockerSystem (extraction, hashing,
// copying: the loops a pull or create spends its time in) keep -O.
let sizeOptimised: [SwiftSetting] = ownModule + [.unsafeFlags(["-Osize"], .when(configuration: .release))]

// `version`'s build line (commit, date, toolchain), set by `make release`/`install` through the
// environment. Defined for CLinux alone: as `-Xcc -D…` flags they reached every C and Swift target,
// so each new commit rebuilt all dependencies (16 minutes for a release build here instead of 5).
let buildInfo: [CSetting] = ["UDOCKER_BUILD_COMMIT", "UDOCKER_BUILD_DATE", "UDOCKER_BUILD_TOOLCHAIN"].compactMap { key in
    Context.environment[key].map { value in .define(key, to: "\"\(value)\"") }
}

let package = Package(
    name: "udocker",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "udocker", targets: ["udocker"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // C: what Swift cannot do safely (pre-exec namespace setup, openat2, dlopen'd zstd).
        .target(name: "CLinux", cSettings: buildInfo, linkerSettings: [.linkedLibrary("z"), .linkedLibrary("dl")]),
        // Codable OCI / Docker image-spec types.
        .target(name: "OCI", dependencies: [.product(name: "Crypto", package: "swift-crypto")], swiftSettings: sizeOptimised),
        // Syscalls, rooted path resolution, atomic writes, locks, processes.
        .target(name: "UDockerSystem", dependencies: ["CLinux"], swiftSettings: ownModule),
        // Streaming tar + gzip/zstd + safe extraction with whiteouts.
        .target(
            name: "Archive", dependencies: ["OCI", "UDockerSystem", "CLinux", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: ownModule),
        // Registry v2 client: references, auth, verified parallel blob fetch.
        .target(
            name: "Registry",
            dependencies: [
                "OCI", "UDockerSystem",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ], swiftSettings: sizeOptimised),
        // udocker-compatible local repository (~/.udocker).
        .target(
            name: "Store", dependencies: ["OCI", "UDockerSystem", "Archive", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: sizeOptimised),
        // Execution engines (N1 native user namespaces, PRoot P1/P2) behind one protocol.
        .target(name: "Engines", dependencies: ["Store", "UDockerSystem", "CLinux", "OCI"], swiftSettings: sizeOptimised),
        // One file per CLI command.
        .target(
            name: "Commands",
            dependencies: [
                "OCI", "UDockerSystem", "CLinux", "Archive", "Registry", "Store", "Engines",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ], swiftSettings: sizeOptimised),
        // Release builds also link the C++ and gcc runtimes statically (Foundation's ICU needs them),
        // so with --static-swift-stdlib the binary needs only glibc and zlib. Not position-independent:
        // a PIE made the loader apply ~120k relative relocations, dirtying the data pages they sit in,
        // on every start (docs/benchmarks.md, start-up).
        .executableTarget(
            name: "udocker", dependencies: ["Commands"], swiftSettings: ownModule,
            linkerSettings: [
                .unsafeFlags(
                    [
                        "-L\(Context.packageDirectory)/scripts/static-link", "-Xlinker", "-l:libgcc_eh.a",
                        "-Xclang-linker", "-no-pie",
                        // An executable needs no dynamic symbol table of its own: 31,806 exported
                        // symbols were 2.9 MB, and the runtime's start-up `dladdr` walks them.
                        "-Xlinker", "--no-export-dynamic",
                        // Identical functions (generic specialisations, outlined copies) folded
                        // when their address is never taken (gold's safe mode): −0.35 MB.
                        "-Xlinker", "--icf=safe",
                    ],
                    .when(configuration: .release))
            ]),

        .target(name: "TestSupport", dependencies: ["UDockerSystem"], path: "Tests/TestSupport"),
        .testTarget(name: "OCITests", dependencies: ["OCI"]),
        .testTarget(name: "UDockerSystemTests", dependencies: ["UDockerSystem", "TestSupport"]),
        .testTarget(name: "ArchiveTests", dependencies: ["Archive", "UDockerSystem", "OCI", "TestSupport"]),
        .testTarget(
            name: "RegistryTests",
            dependencies: [
                "Registry", "Store", "OCI", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "OCI", "TestSupport"]),
        .testTarget(name: "EnginesTests", dependencies: ["Engines", "Store", "TestSupport"]),
        .testTarget(name: "CommandsTests", dependencies: ["Commands", "TestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["TestSupport"]),
    ]
)

// libFuzzer targets (Fuzz/), only with UDOCKER_FUZZ=1 (scripts/fuzz.sh, `make fuzz` / `make fuzz-ci`),
// built in their own build path (.build-fuzz); normal builds and tests never see them. Each target
// links only what it fuzzes (no NIO, no ArgumentParser). Coverage instrumentation goes on our own
// modules only (Swift `-sanitize=fuzzer`, C `-fsanitize=fuzzer-no-link`), not on swift-crypto;
// UDOCKER_FUZZ_SANITIZE=fuzzer,address adds AddressSanitizer to the same modules.
if Context.environment["UDOCKER_FUZZ"] == "1" {
    let sanitize = Context.environment["UDOCKER_FUZZ_SANITIZE"] ?? "fuzzer"
    let cSanitize = sanitize.split(separator: ",").map { $0 == "fuzzer" ? "fuzzer-no-link" : String($0) }
    for target in package.targets where ["OCI", "UDockerSystem", "Archive", "Store", "Engines"].contains(target.name) {
        target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-sanitize=\(sanitize)"])]
    }
    for target in package.targets where target.name == "CLinux" {
        target.cSettings = (target.cSettings ?? []) + [.unsafeFlags(["-fsanitize=\(cSanitize.joined(separator: ","))"])]
    }
    // FuzzSupport: the one libFuzzer driver entry the four targets share.
    package.targets.append(.target(name: "FuzzSupport", path: "Fuzz/FuzzSupport"))
    for (name, deps) in [
        ("FuzzTar", ["Archive", "UDockerSystem"]), ("FuzzELF", ["Engines"]),
        ("FuzzManifest", ["OCI"]), ("FuzzReference", ["OCI"]),
    ] {
        // -parse-as-library: no Swift `main`; `<name>_main` (what SwiftPM links as main) starts libFuzzer.
        package.targets.append(
            .executableTarget(
                name: name, dependencies: (deps + ["FuzzSupport"]).map { .target(name: $0) }, path: "Fuzz/\(name)",
                swiftSettings: [.unsafeFlags(["-parse-as-library", "-sanitize=\(sanitize)"])],
                linkerSettings: [.unsafeFlags(["-sanitize=\(sanitize)"])]))
    }
}
