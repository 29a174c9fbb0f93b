import Foundation
import Store
import UDockerSystem
import Testing
import TestSupport
@testable import Engines
#if canImport(Glibc)
import Glibc
#endif

/// Fakechroot conversion state that came from someone else (issue 10 defect 1) and clones of
/// converted containers (issue 14 item 4), without running the engine.
@Suite struct FakechrootTrustTests {
    /// A file outside the container: content, size and mtime must never change.
    static func sentinel(_ dir: String) throws -> (path: String, stamp: () -> String) {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/file"
        try "precious\n".write(toFile: path, atomically: false, encoding: .utf8)
        var ts = [timespec(tv_sec: 1_500_000_000, tv_nsec: 0), timespec(tv_sec: 1_500_000_000, tv_nsec: 0)]
        utimensat(AT_FDCWD, path, &ts, 0)
        return (
            path,
            {
                var st = stat()
                guard lstat(path, &st) == 0 else { return "missing" }
                return "\(st.st_size) \(st.st_mtim.tv_sec) \((try? String(contentsOfFile: path, encoding: .utf8)) ?? "")"
            }
        )
    }

    static func record(_ path: String) -> String {
        #"{"path":"\#(path)","originalSize":0,"patchedSize":99999999999,"regions":[],"appendOffset":0,"appended":"","mtimeSeconds":0,"mtimeNanoseconds":0}"#
    }

    // The reproduction of defect 1: an ELF patch-log record naming a file outside the container
    // (by `..` or through a symlink in ROOT) is refused when the conversion is undone.
    @Test func aHostilePatchLogNeverReachesOutside() throws {
        let tmp = try TemporaryDirectory()
        let (outside, stamp) = try Self.sentinel(tmp.sub("outside"))
        let before = stamp()
        let dir = tmp.sub("containers/0badc0de-1111-3222-8333-444455556666")
        let root = dir + "/ROOT"
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        symlink(tmp.sub("outside"), root + "/evil")
        let log =
            [
                Self.record("/../../../../../../../..\(outside)"), Self.record("/evil/file"),
                Self.record("/../outside/file"), Self.record("evil/file"),
            ].joined(separator: "\n") + "\n"
        try log.write(toFile: dir + "/elf.patch.log", atomically: false, encoding: .utf8)
        for (f, v) in [("execmode", "F1"), ("fakechroot.mode", "F1")] {
            try v.write(toFile: "\(dir)/\(f)", atomically: false, encoding: .utf8)
        }
        var lines: [String] = []
        try FakechrootSetup.convert(directory: dir, root: root, to: .N1, log: { lines.append($0) }) { _ in }
        #expect(stamp() == before, "a file outside the container was changed")
        #expect(lines.filter { $0.contains("not a path inside the container") }.count == 4, "\(lines)")
    }

    // Metadata files of ours that are symlinks are refused, never followed.
    @Test func symlinkedStateFilesAreRefused() throws {
        let tmp = try TemporaryDirectory()
        let (outside, stamp) = try Self.sentinel(tmp.sub("outside"))
        let before = stamp()
        let dir = tmp.sub("c")
        try FileManager.default.createDirectory(atPath: dir + "/ROOT", withIntermediateDirectories: true)
        symlink(outside, dir + "/elf.patch.log")
        try "F3".write(toFile: dir + "/fakechroot.mode", atomically: false, encoding: .utf8)
        #expect(throws: FakechrootSetup.Failure.self) {
            try FakechrootSetup.convert(directory: dir, root: dir + "/ROOT", to: .N1) { _ in }
        }
        #expect(stamp() == before)
    }

    // Library directories from the image's ld.so.conf or the container's ld.lib.dirs stay in ROOT.
    @Test func libraryPathStaysInsideRoot() throws {
        let tmp = try TemporaryDirectory()
        let dir = tmp.sub("c")
        let root = dir + "/ROOT"
        for d in [root + "/etc", root + "/opt/lib", tmp.sub("outside/lib")] {
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        }
        try "/opt/lib\n/../../outside/lib\n".write(toFile: root + "/etc/ld.so.conf", atomically: false, encoding: .utf8)
        try "/../../outside/lib:/opt/lib".write(toFile: dir + "/ld.lib.dirs", atomically: false, encoding: .utf8)
        let paths = FakechrootSetup.Paths(directory: dir, root: root)
        let dirs = FakechrootEngine.libraryPath(root: paths.root, paths: paths)
        #expect(dirs.contains(paths.root + "/opt/lib"))
        #expect(!dirs.contains { $0.contains("..") || $0.contains("outside") }, "\(dirs)")
    }

    /// A tiny root with a library reached through an absolute symlink (what F modes rewrite).
    static func makeContainer(_ repo: LocalRepository, _ id: String) throws -> String {
        let root = repo.containerRoot(id)
        try FileManager.default.createDirectory(atPath: root + "/usr/lib", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/lib", withIntermediateDirectories: true)
        try "so".write(toFile: root + "/usr/lib/libreal.so.1", atomically: false, encoding: .utf8)
        symlink("/usr/lib/libreal.so.1", root + "/lib/libreal.so")
        try #"{"architecture":"amd64","config":{}}"#.write(
            toFile: repo.containerDirectory(id) + "/container.json", atomically: false, encoding: .utf8)
        return root
    }

    static func real(_ p: String) -> String {
        guard let r = realpath(p, nil) else { return p }
        defer { free(r) }
        return String(cString: r)
    }

    static func convert(_ repo: LocalRepository, _ id: String, _ mode: ExecutionMode) throws {
        try FakechrootSetup.convert(directory: repo.containerDirectory(id), root: repo.containerRoot(id), to: mode) {
            try repo.setExecutionMode(id, $0)
        }
    }

    /// What the next Fakechroot run does for a container (the engine's setup step).
    static func prepareRun(_ repo: LocalRepository, _ id: String, _ mode: ExecutionMode) throws {
        let p = FakechrootSetup.Paths(directory: repo.containerDirectory(id), root: repo.containerRoot(id))
        #expect(FakechrootSetup.needsConversion(p, for: mode), "a clone at a new path must be re-targeted")
        try convert(repo, id, mode)
        #expect(!FakechrootSetup.needsConversion(p, for: mode))
    }

    // Issue 14 item 4: `clone`, `export --clone` + `import --clone` of an F1 container, and a
    // Python udocker F1 clone (execmode + root.path only), are re-targeted to their new ROOT.
    @Test func clonesOfAnF1ContainerAreRetargeted() throws {
        let tmp = try TemporaryDirectory()
        let repo = LocalRepository(topDirectory: tmp.sub("repo"))
        try repo.create()
        let src = "0badc0de-1111-3222-8333-444455556666"
        let srcRoot = try Self.makeContainer(repo, src)
        try Self.convert(repo, src, .F1)
        #expect(FileInfo.readLink(srcRoot + "/lib/libreal.so") == Self.real(srcRoot) + "/usr/lib/libreal.so.1")

        let cloned = try repo.cloneContainer(src)
        try Self.prepareRun(repo, cloned, .F1)
        #expect(
            FileInfo.readLink(repo.containerRoot(cloned) + "/lib/libreal.so") == Self.real(repo.containerRoot(cloned))
                + "/usr/lib/libreal.so.1")

        let tar = tmp.sub("clone.tar")
        let fd = open(tar, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = try repo.exportContainer(src, to: fd, clone: true)
        close(fd)
        let imported = try repo.importClone(from: .file(tar))
        try Self.prepareRun(repo, imported, .F1)
        #expect(
            FileInfo.readLink(repo.containerRoot(imported) + "/lib/libreal.so") == Self.real(repo.containerRoot(imported))
                + "/usr/lib/libreal.so.1")

        // Back to P1: the links are the image's again.
        try Self.convert(repo, imported, .P1)
        #expect(FileInfo.readLink(repo.containerRoot(imported) + "/lib/libreal.so") == "/usr/lib/libreal.so.1")

        // A Python udocker F1 clone: execmode F1 and root.path naming the old ROOT.
        let py = tmp.sub("py")
        let old = "/home/someone/.udocker/containers/1d2e3f40-aaaa-3bbb-8ccc-dddddddddddd/ROOT"
        try FileManager.default.createDirectory(atPath: py + "/ROOT/usr/lib", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: py + "/ROOT/lib", withIntermediateDirectories: true)
        try "so".write(toFile: py + "/ROOT/usr/lib/libreal.so.1", atomically: false, encoding: .utf8)
        symlink(old + "/usr/lib/libreal.so.1", py + "/ROOT/lib/libreal.so")
        try "F1".write(toFile: py + "/execmode", atomically: false, encoding: .utf8)
        try old.write(toFile: py + "/root.path", atomically: false, encoding: .utf8)
        try "{\"config\":{}}".write(toFile: py + "/container.json", atomically: false, encoding: .utf8)
        let (st, _) = shell("tar -C '\(py)' -cf '\(tmp.sub("py.tar"))' .")
        #expect(st == 0)
        let fromPython = try repo.importClone(from: .file(tmp.sub("py.tar")))
        try Self.prepareRun(repo, fromPython, .F1)
        #expect(
            FileInfo.readLink(repo.containerRoot(fromPython) + "/lib/libreal.so") == Self.real(repo.containerRoot(fromPython))
                + "/usr/lib/libreal.so.1")
    }
}
