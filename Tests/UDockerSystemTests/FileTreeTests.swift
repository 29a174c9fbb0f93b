import Foundation
import Testing
import UDockerSystem
import CLinux
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

@Suite struct FileTreeTests {
    private func makeTree(_ base: String, outside: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: base + "/a/b/c", withIntermediateDirectories: true)
        try "x".write(toFile: base + "/a/b/c/f", atomically: false, encoding: .utf8)
        try "y".write(toFile: base + "/a/g", atomically: false, encoding: .utf8)
        try fm.createSymbolicLink(atPath: base + "/a/out", withDestinationPath: outside)
        try fm.createSymbolicLink(atPath: base + "/a/outfile", withDestinationPath: outside + "/keep")
        chmod(base + "/a/b/c/f", 0)
        chmod(base + "/a/b/c", 0)
        chmod(base + "/a/b", 0o500)
        chmod(base + "/a", 0)
    }

    private func prepare() throws -> (TemporaryDirectory, String, String) {
        let tmp = try TemporaryDirectory(prefix: "filetree-test")
        let outside = tmp.sub("outside")
        try FileManager.default.createDirectory(atPath: outside + "/sub", withIntermediateDirectories: true)
        try "keep".write(toFile: outside + "/keep", atomically: false, encoding: .utf8)
        let base = tmp.sub("tree")
        try makeTree(base, outside: outside)
        return (tmp, base, outside)
    }

    private func outsideIntact(_ outside: String) -> Bool {
        (try? Set(FileManager.default.contentsOfDirectory(atPath: outside))) == ["sub", "keep"]
            && (try? String(contentsOfFile: outside + "/keep", encoding: .utf8)) == "keep"
    }

    @Test func removesModeZeroTreesWithoutFollowingLinks() throws {
        let (tmp, base, outside) = try prepare()
        _ = tmp
        try FileTree.remove(base)
        var st = stat()
        #expect(lstat(base, &st) != 0)
        #expect(outsideIntact(outside))
        try FileTree.remove(base)  // missing: no error
        #expect(throws: SystemError.self) { try FileTree.remove("/") }
    }

    /// Root bypasses permissions; run the removal on a thread without CAP_DAC_OVERRIDE,
    /// CAP_DAC_READ_SEARCH and CAP_FOWNER so the chmod-first logic is really exercised.
    @Test func removesModeZeroTreesWithoutPrivileges() throws {
        let (tmp, base, outside) = try prepare()
        _ = tmp
        let result = runWithoutDACCapabilities {
            // Sanity: without the capabilities the 000 directory is really closed to us.
            let probe = open(base + "/a", O_RDONLY | O_DIRECTORY)
            if probe >= 0 { close(probe); return "not unprivileged" }
            do { try FileTree.remove(base); return nil } catch { return "\(error)" }
        }
        #expect(result == nil)
        var st = stat()
        #expect(lstat(base, &st) != 0)
        #expect(outsideIntact(outside))
    }

    @Test func removesSymlinkNotTarget() throws {
        let (tmp, _, outside) = try prepare()
        let link = tmp.sub("link")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: outside)
        try FileTree.remove(link)
        var st = stat()
        #expect(lstat(link, &st) != 0)
        #expect(outsideIntact(outside))
    }
}
