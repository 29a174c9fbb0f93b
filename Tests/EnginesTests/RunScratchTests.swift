import Foundation
import Testing
import TestSupport
import UDockerSystem
@testable import Engines
#if canImport(Glibc)
import Glibc
#endif

/// Run directories are slots `udocker-run-<uid>.<n>` (issue 11: no run lists the tmp directory):
/// the lowest free slot is taken, abandoned slots on the way are removed, foreign names skipped,
/// and with every slot busy the run falls back to a full sweep and a `mkdtemp` name.
@Suite struct RunScratchTests {
    static func slot(_ tmp: TemporaryDirectory, _ n: Int) -> String { tmp.sub("udocker-run-\(getuid()).\(n)") }

    /// What a run killed by SIGKILL leaves: its directory with an unlocked `.lock`.
    static func abandoned(_ path: String) throws {
        try #require(mkdir(path, 0o700) == 0)
        try #require(FileManager.default.createFile(atPath: path + "/.lock", contents: Data()))
        try #require(FileManager.default.createFile(atPath: path + "/passwd", contents: Data("x".utf8)))
    }

    @Test("takes the lowest free slot and removes it at the end")
    func lowestSlot() throws {
        let tmp = try TemporaryDirectory()
        let a = try RunScratch(tmpDir: tmp.path)
        let b = try RunScratch(tmpDir: tmp.path)
        #expect(a.path == Self.slot(tmp, 0))
        #expect(b.path == Self.slot(tmp, 1))
        a.remove()
        #expect(!FileInfo.exists(Self.slot(tmp, 0)))
        let c = try RunScratch(tmpDir: tmp.path)
        #expect(c.path == Self.slot(tmp, 0), "a freed slot is reused")
        b.remove(); c.remove()
        #expect(FileInfo.list(tmp.path) == [])
    }

    @Test("a killed run's directory is taken over, and abandoned ones after the taken slot are removed")
    func abandonedSlotsRemoved() throws {
        let tmp = try TemporaryDirectory()
        try Self.abandoned(Self.slot(tmp, 0))
        let live = try RunScratch(tmpDir: tmp.path)  // takes slot 0 over
        #expect(live.path == Self.slot(tmp, 0))
        #expect(!FileInfo.exists(live.path + "/passwd"), "the killed run's files were not removed")
        try Self.abandoned(Self.slot(tmp, 2))
        try Self.abandoned(Self.slot(tmp, 4))
        let next = try RunScratch(tmpDir: tmp.path)  // slot 1; 2 and 4 are abandoned
        #expect(next.path == Self.slot(tmp, 1))
        #expect(!FileInfo.exists(Self.slot(tmp, 2)))
        #expect(!FileInfo.exists(Self.slot(tmp, 4)))
        #expect(FileInfo.exists(live.path + "/.lock"), "a live run's directory was touched")
        live.remove(); next.remove()
        #expect(FileInfo.list(tmp.path) == [])
    }

    @Test("a name taken by something else is skipped, never used or removed")
    func foreignNameSkipped() throws {
        let tmp = try TemporaryDirectory()
        try #require(FileManager.default.createFile(atPath: Self.slot(tmp, 0), contents: Data("not ours".utf8)))
        try #require(symlink(tmp.path, Self.slot(tmp, 1)) == 0)
        let s = try RunScratch(tmpDir: tmp.path)
        #expect(s.path == Self.slot(tmp, 2))
        s.remove()
        #expect(Set(FileInfo.list(tmp.path)) == ["udocker-run-\(getuid()).0", "udocker-run-\(getuid()).1"])
    }

    @Test("every slot busy: a full sweep removes abandoned mkdtemp-named directories, then a mkdtemp name")
    func allSlotsBusy() throws {
        let tmp = try TemporaryDirectory()
        var held: [FileLock] = []
        for n in 0..<RunScratch.slots {
            try #require(mkdir(Self.slot(tmp, n), 0o700) == 0)
            held.append(try FileLock(path: Self.slot(tmp, n) + "/.lock", kind: .exclusive))
        }
        try Self.abandoned(tmp.sub("udocker-run-Ab12Cd"))
        let s = try RunScratch(tmpDir: tmp.path)
        #expect(s.path.hasPrefix(tmp.sub("udocker-run-")))
        #expect(!s.path.hasPrefix(tmp.sub("udocker-run-\(getuid()).")))
        #expect(!FileInfo.exists(tmp.sub("udocker-run-Ab12Cd")), "the sweep did not remove the abandoned directory")
        #expect(FileInfo.list(tmp.path).count == RunScratch.slots + 1, "a live slot was removed")
        s.remove()
        for l in held { l.unlock() }
    }
}
