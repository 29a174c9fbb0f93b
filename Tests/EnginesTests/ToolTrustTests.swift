import Foundation
import Store
import TestSupport
import Testing
import UDockerSystem

@testable import Engines

#if canImport(Glibc)
import Glibc
#endif

/// Cases 35 and 41: the tool locator (the one place every engine, `doctor` and `version` find
/// proot, runc, patchelf, apptainer and libfakechroot) refuses a tool that is setuid/setgid,
/// writable by others, owned by another user, or changed since `udocker install`.
@Suite struct ToolTrustTests {
    func locator(_ tmp: TemporaryDirectory, _ extra: [String: String] = [:], runc: String? = nil) -> ToolLocator {
        var environment = EngineEnvironment(
            tmpDir: tmp.path, binDir: tmp.sub("bin"), prootExecutable: "UDOCKER",
            hostEnvironment: ["PATH": "/nonexistent"].merging(extra) { $1 })
        environment.runcExecutable = runc
        return ToolLocator(environment: environment)
    }

    func refusal(_ body: () throws(ToolLocator.NotFound) -> ToolLocator.Tool) -> String? {
        do { _ = try body(); return nil } catch { return error.message }
    }

    @Test(arguments: [
        (0o4755, "setuid/setgid"), (0o2755, "setuid/setgid"), (0o775, "writable by group or others"),
        (0o757, "writable by group or others"),
    ])
    func unsafeModesAreRefused(mode: Int, words: String) throws {
        let tmp = try TemporaryDirectory()
        try FileInfo.makeDirectories(tmp.sub("bin"))
        let proot = tmp.sub("bin/proot")
        try AtomicFile.write("#!/bin/sh\n", to: proot, mode: 0o755)
        #expect(refusal { () throws(ToolLocator.NotFound) in try locator(tmp).proot() } == nil)
        #expect(chmod(proot, mode_t(mode)) == 0)
        let line = try #require(refusal { () throws(ToolLocator.NotFound) in try locator(tmp).proot() })
        #expect(line.hasPrefix(proot) && line.contains(words) && !line.contains("\n"), "\(line)")
        // The same check for a file named by a setting and for the preloaded library.
        let so = tmp.sub("lib.so")
        try AtomicFile.write("x", to: so, mode: mode_t(mode))
        #expect(chmod(so, mode_t(mode)) == 0)
        #expect(refusal { () throws(ToolLocator.NotFound) in try locator(tmp, ["UDOCKER_FAKECHROOT_SO": so]).fakechrootLibrary() } != nil)
        #expect(refusal { () throws(ToolLocator.NotFound) in try locator(tmp, runc: proot).ociRuntime() } != nil)
    }

    @Test(.enabled(if: geteuid() == 0, "giving a tool to another user needs root"))
    func aToolOwnedByAnotherUserIsRefused() throws {
        let tmp = try TemporaryDirectory()
        try FileInfo.makeDirectories(tmp.sub("bin"))
        let runc = tmp.sub("bin/runc")
        try AtomicFile.write("#!/bin/sh\n", to: runc, mode: 0o755)
        #expect(chown(runc, 4242, 4242) == 0)
        let line = try #require(refusal { () throws(ToolLocator.NotFound) in try locator(tmp).ociRuntime() })
        #expect(line.contains("owned by uid 4242"))
        #expect(chown(runc, 0, 0) == 0)
        #expect(refusal { () throws(ToolLocator.NotFound) in try locator(tmp).ociRuntime() } == nil)
    }

    @Test func anInstalledToolChangedAfterInstallIsRefused() throws {
        let tmp = try TemporaryDirectory()
        try FileInfo.makeDirectories(tmp.sub("bin"))
        let proot = tmp.sub("bin/proot")
        try AtomicFile.write("#!/bin/sh\necho installed\n", to: proot, mode: 0o755)
        try ToolChecksums.record(["proot"], in: tmp.sub("bin"))
        #expect(refusal { () throws(ToolLocator.NotFound) in try locator(tmp).proot() } == nil)
        try AtomicFile.write("#!/bin/sh\necho replaced\n", to: proot, mode: 0o755)
        let line = try #require(refusal { () throws(ToolLocator.NotFound) in try locator(tmp).proot() })
        #expect(line.contains(proot) && line.contains("udocker install --force"))
        // The engine turns it into one error line before anything is executed.
        #expect(throws: EngineError.self) { try PRootEngine(environment: locator(tmp).environment).locateProot() }
    }
}
