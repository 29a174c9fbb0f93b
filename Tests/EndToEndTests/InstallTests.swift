import Foundation
import Testing
import TestSupport

/// README's "Install" section, run as written by the test user in an empty directory holding only
/// the release tarball and SHA256SUMS, as a scientist downloads them (issue 22): check, unpack, put
/// `bin/` on PATH, `udocker version`, `udocker doctor`. No root, no toolchain, no install step.
@Suite("E2E README install from the tarball", e2eEnabled)
struct TarballInstallTests {
    static func installBlock() throws -> String {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../README.md").standardized
        let text = try String(contentsOf: readme, encoding: .utf8)
        let section = try #require(text.range(of: "## Install\n")).upperBound
        let open = try #require(text.range(of: "```sh\n", range: section..<text.endIndex)).upperBound
        let close = try #require(text.range(of: "```", range: open..<text.endIndex)).lowerBound
        return String(text[open..<close])
    }

    static let tarball = ProcessInfo.processInfo.environment["UDOCKER_DIST_TARBALL"]

    @Test(
        "the Install block succeeds as written: SHA256SUMS checks, the unpacked binary runs version and doctor",
        .enabled(if: tarball != nil, "UDOCKER_DIST_TARBALL is not set: run through `make test`, which builds the tarball"))
    func installAsWritten() async throws {
        let box = try sandbox()
        let tarball = try #require(Self.tarball)
        let download = "\(box.scratch)/download"
        try box.makeUserDirectory(download)
        let name = URL(fileURLWithPath: tarball).lastPathComponent
        let sums = URL(fileURLWithPath: tarball).deletingLastPathComponent().appendingPathComponent("SHA256SUMS").path
        for source in [tarball, sums] {
            let target = "\(download)/\(URL(fileURLWithPath: source).lastPathComponent)"
            try FileManager.default.copyItem(atPath: source, toPath: target)
            try box.chownToUser(target)
        }
        let block = try Self.installBlock()
        #expect(block.contains(name), "README's Install names another tarball than \(name):\n\(block)")
        // One shell, as a user types the lines one after another; `set -e` stops at the first failure.
        let r = try await box.shell("set -e\ncd \(download)\n" + block)
        expectSuccess(r)
        #expect(r.stdout.contains("\(name): OK"), "\(r)")
        #expect(r.stdout.contains("udocker-swift: "), "\(r)")
        #expect(r.stdoutLines.contains { $0.hasPrefix("✔ host ") && $0.contains(" glibc 2.") }, "\(r)")
    }

    static let distBinary = ProcessInfo.processInfo.environment["UDOCKER_DIST_BIN"]
    static let oldSuite = ProcessInfo.processInfo.environment["UDOCKER_E2E_OLD_DEBIAN_TAG"]

    /// The build host has glibc 2.36; this runs the tarball's binary with Debian 11's loader and C
    /// library (2.31, as on SLES 15, Cray OS, Ubuntu 20.04), inside a container of that image.
    /// Before issue 22 the loader refused it ("version `GLIBC_2.34' not found").
    @Test(
        "the tarball's binary starts under an older glibc (Debian 11, 2.31): version and doctor",
        .enabled(
            if: distBinary != nil && oldSuite != nil,
            "UDOCKER_DIST_BIN / UDOCKER_E2E_OLD_DEBIAN_TAG are not set: run through `make test`"))
    func startsUnderOlderGlibc() async throws {
        let box = try sandbox()
        let dist = URL(fileURLWithPath: try #require(Self.distBinary)).deletingLastPathComponent().deletingLastPathComponent().path
        let image = box.env.image("debian", tag: try #require(Self.oldSuite))
        _ = try await box.pullAndCreate(image, name: "old")
        let libc = try await box.run(["--nobanner", "old", "/bin/sh", "-c", "/lib/x86_64-linux-gnu/libc.so.6 | head -1"])
        expectSuccess(libc)
        #expect(libc.stdout.contains("GLIBC 2.31"), "the old image's C library:\n\(libc)")
        // Inside: the binary with the container's glibc, its own repository in /tmp.
        let inside = try await box.run([
            "--nobanner", "-v", "\(dist):/opt/udocker:ro", "-e", "UDOCKER_DIR=/tmp/ud", "-e", "HOME=/tmp", "old",
            "/bin/sh", "-c",
            "/opt/udocker/bin/udocker version && /opt/udocker/bin/udocker --allow-root doctor --json | grep -c '\"summary\" : \"glibc 2.31'",
        ])
        expectSuccess(inside)
        #expect(inside.stdout.contains("udocker-swift: "), "\(inside)")
        #expect(inside.stdoutLines.last == "1", "doctor inside must report glibc 2.31:\n\(inside)")
    }
}
