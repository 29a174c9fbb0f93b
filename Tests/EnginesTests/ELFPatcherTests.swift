import Foundation
import Testing
import TestSupport
@testable import Engines
#if canImport(Glibc)
import Glibc
#endif

/// The Swift `--set-root-prefix`: real host binaries copied to a temporary directory, patched,
/// re-read, run through a prefix directory that leads back to the host's files, and restored
/// byte for byte.
@Suite struct ELFPatcherTests {
    static let hostLoader = "/lib64/ld-linux-x86-64.so.2"
    static var available: Bool { FileManager.default.fileExists(atPath: hostLoader) && FileManager.default.fileExists(atPath: "/bin/true") }

    func sha(_ path: String) -> String {
        shell("sha256sum '\(path)' | cut -d' ' -f1").1.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A prefix directory P with P/lib64/ld-linux-x86-64.so.2 and P/usr/lib/... leading to the host.
    func makePrefix(_ dir: String) throws -> String {
        let p = dir + "/some/rather/long/prefix/containers/0123456789abcdef/ROOT"
        let fm = FileManager.default
        try fm.createDirectory(atPath: p + "/lib64", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: p + "/usr/lib", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: p + Self.hostLoader, withDestinationPath: Self.hostLoader)
        try fm.createSymbolicLink(atPath: p + "/usr/lib/x86_64-linux-gnu", withDestinationPath: "/usr/lib/x86_64-linux-gnu")
        return p
    }

    @Test(.enabled(if: available))
    func patchRunAndRestoreTrue() throws {
        let dir = try TemporaryDirectory(prefix: "elfpatch")
        let prefix = try makePrefix(dir.path)
        let f = dir.path + "/true"
        try FileManager.default.copyItem(atPath: "/bin/true", toPath: f)
        let before = sha(f)
        var journaled: ELFPatchRecord?
        let r = try #require(try ELFPatcher.setRootPrefix(hostPath: f, containerPath: "/bin/true", prefix: prefix) { journaled = $0 })
        #expect(journaled == r)
        #expect(r.interpreter == Self.hostLoader)
        #expect(ELFPatcher.inspect(f).interpreter == prefix + Self.hostLoader)
        #expect(sha(f) != before)
        // The kernel and the tools accept it.
        let (status, out) = shell("readelf -lW '\(f)' 2>&1")
        #expect(status == 0 && out.contains("[Requesting program interpreter: \(prefix)\(Self.hostLoader)]"), "\(out)")
        #expect(!out.contains("Warning") && !out.contains("Error"), "\(out)")
        #expect(shell("'\(f)'").0 == 0)
        // A second patch with the same prefix is a no-op.
        #expect(try ELFPatcher.setRootPrefix(hostPath: f, containerPath: "/bin/true", prefix: prefix) == nil)
        #expect(try ELFPatcher.restoreFile(hostPath: f, r) == .restored)
        #expect(sha(f) == before)
        #expect(try ELFPatcher.restoreFile(hostPath: f, r) == .alreadyOriginal)
    }

    @Test(.enabled(if: available))
    func patchedProgramsRunThroughThePrefix() throws {
        let dir = try TemporaryDirectory(prefix: "elfpatch")
        let prefix = try makePrefix(dir.path)
        for name in ["echo", "sha256sum", "ls"] {
            let f = dir.path + "/" + name
            try FileManager.default.copyItem(atPath: "/bin/" + name, toPath: f)
            try #require(try ELFPatcher.setRootPrefix(hostPath: f, containerPath: "/bin/" + name, prefix: prefix) != nil)
        }
        // The prefix is the only way to the loader: move the loader link and it must fail.
        let (s1, o1) = shell("'\(dir.path)/echo' hello-prefix")
        #expect(s1 == 0 && o1 == "hello-prefix\n")
        let (s2, o2) = shell("head -c 1000000 /dev/zero | '\(dir.path)/sha256sum'")
        #expect(s2 == 0 && o2 == shell("head -c 1000000 /dev/zero | sha256sum").1, "\(o2)")
        unlink(prefix + Self.hostLoader)
        #expect(shell("'\(dir.path)/echo' x 2>/dev/null").0 != 0)
    }

    @Test(.enabled(if: available && FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/libc.so.6")))
    func patchAndRestoreLibc() throws {
        let dir = try TemporaryDirectory(prefix: "elfpatch")
        let prefix = try makePrefix(dir.path)
        let lib = dir.path + "/lib"
        try FileManager.default.createDirectory(atPath: lib, withIntermediateDirectories: true)
        let f = lib + "/libc.so.6"
        try FileManager.default.copyItem(atPath: "/usr/lib/x86_64-linux-gnu/libc.so.6", toPath: f)
        let before = sha(f)
        let r = try #require(try ELFPatcher.setRootPrefix(hostPath: f, containerPath: "/lib/libc.so.6", prefix: prefix))
        #expect(ELFPatcher.inspect(f).interpreter == prefix + Self.hostLoader)
        // Programs load the patched libc (its extra PT_LOAD is mapped fine).
        let (s, o) = shell(
            "LD_LIBRARY_PATH='\(lib)' LD_DEBUG=libs /bin/echo via-patched-libc 2>&1 | grep -c '\(lib)/libc.so.6'; "
                + "LD_LIBRARY_PATH='\(lib)' /bin/echo via-patched-libc")
        #expect(s == 0 && o.hasSuffix("via-patched-libc\n") && !o.hasPrefix("0"), "\(o)")
        #expect(try ELFPatcher.restoreFile(hostPath: f, r) == .restored)
        #expect(sha(f) == before)
    }

    @Test(.enabled(if: available && FileManager.default.fileExists(atPath: "/usr/bin/busctl")))
    func runpathIsPrefixedAndRestored() throws {
        let dir = try TemporaryDirectory(prefix: "elfpatch")
        let prefix = try makePrefix(dir.path)
        let f = dir.path + "/busctl"
        try FileManager.default.copyItem(atPath: "/usr/bin/busctl", toPath: f)
        let before = sha(f)
        let original = try #require(ELFPatcher.inspect(f).runpath)
        let r = try #require(try ELFPatcher.setRootPrefix(hostPath: f, containerPath: "/usr/bin/busctl", prefix: prefix))
        #expect(ELFPatcher.inspect(f).runpath == prefix + original)
        #expect(r.runpath == original && r.newRunpath == prefix + original)
        // The runpath is what finds libsystemd-shared: it must resolve through the prefix.
        let (s, o) = shell("LD_DEBUG=libs '\(f)' --version 2>&1 | grep 'search path=' | head -1; '\(f)' --version >/dev/null && echo ran")
        #expect(s == 0 && o.contains(prefix) && o.hasSuffix("ran\n"), "\(o)")
        #expect(try ELFPatcher.restoreFile(hostPath: f, r) == .restored)
        #expect(sha(f) == before)
    }

    @Test(.enabled(if: available))
    func interruptedPatchIsRestored() throws {
        let dir = try TemporaryDirectory(prefix: "elfpatch")
        let f = dir.path + "/true"
        try FileManager.default.copyItem(atPath: "/bin/true", toPath: f)
        let before = sha(f)
        let fd = open(f, O_RDWR)
        defer { close(fd) }
        let r = try #require(try ELFPatcher.plan(fd: fd, containerPath: "/bin/true", prefix: "/x/ROOT"))
        // Half of the work: appended data and one header region.
        let appended = [UInt8](Data(base64Encoded: r.appended)!)
        try ELFPatcher.writeAll(fd, [UInt8](repeating: 0, count: Int(r.appendOffset - r.originalSize)) + appended, at: r.originalSize)
        let last = try #require(r.regions.last)
        try ELFPatcher.writeAll(fd, [UInt8](Data(base64Encoded: last.patched)!), at: last.offset)
        #expect(try ELFPatcher.restore(fd: fd, r) == .restored)
        #expect(sha(f) == before)
    }

    @Test func notELFAndStaticFilesAreLeftAlone() throws {
        let dir = try TemporaryDirectory(prefix: "elfpatch")
        let f = dir.path + "/script"
        try "#!/bin/sh\necho hi\n".write(toFile: f, atomically: false, encoding: .utf8)
        #expect(try ELFPatcher.setRootPrefix(hostPath: f, containerPath: "/script", prefix: "/x") == nil)
        if FileManager.default.fileExists(atPath: "/bin/busybox"), ELFPatcher.inspect("/bin/busybox").interpreter == nil {
            try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: dir.path + "/busybox")
            #expect(try ELFPatcher.setRootPrefix(hostPath: dir.path + "/busybox", containerPath: "/bin/busybox", prefix: "/x") == nil)
        }
    }

    @Test func loaderPatchIsLengthPreserving() {
        let input = Array("xx\0/etc/ld.so.cache\0/lib/x86_64-linux-gnu/\0/usr/lib/\0LD_LIBRARY_PATH\0end".utf8)
        let out = FakechrootSetup.patchedLoaderBytes(input)
        #expect(out.count == input.count)
        let s = String(decoding: out, as: UTF8.self)
        #expect(s.contains("LD_LIBRARY_REAL") && !s.contains("LD_LIBRARY_PATH"))
        // udocker's single pass: every string that started with /etc/ld.so, /lib or /usr is now "/".
        #expect(!s.contains("/etc/ld.so") && !s.contains("\0/lib/x86_64") && !s.contains("\0/usr"))
    }
}
