import Foundation
import Testing
@testable import Archive
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ExtractionSafetyTests {
    // §5.1: traversal names are clamped inside the root; lookalikes extract normally.
    @Test func traversalNamesAreClampedInsideRoot() throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.file("../outside/dotdot", "x")
        t.file("/../outside/slash-dotdot", "x")
        t.file("a/../../outside/mid", "x")
        t.file("../../../../pwned", "x")
        t.dir("..")
        t.file("..gitme", "ok")
        t.file("foo..bar", "ok")
        t.file("/etc/x", "abs")
        t.file("./dot/./slash//double", "ok")
        let (x, _) = try f.extract(t.archive)
        #expect(f.outsideIntact())
        #expect(f.siblingsUnchanged(["root", "outside"]))
        #expect(text(f.r("outside/dotdot")) == "x")
        #expect(text(f.r("outside/slash-dotdot")) == "x")
        #expect(text(f.r("outside/mid")) == "x")
        #expect(text(f.r("pwned")) == "x")
        #expect(text(f.r("..gitme")) == "ok")
        #expect(text(f.r("foo..bar")) == "ok")
        #expect(text(f.r("etc/x")) == "abs")
        #expect(text(f.r("dot/slash/double")) == "ok")
        #expect(x.warnings.contains { $0.description.contains("climbs above the root") })
    }

    // §5.1 sibling prefix: dest is base/dest, a hardlink into base/dest-evil must not be made.
    @Test func siblingPrefixHardlinkIsRefused() throws {
        let f = try Fixture()
        let evil = f.tmp.sub("root-evil")
        try FileManager.default.createDirectory(atPath: evil, withIntermediateDirectories: true)
        try "evil".write(toFile: evil + "/secret", atomically: false, encoding: .utf8)
        var t = TarBuilder()
        t.hardlink("grab", to: "../root-evil/secret")
        let err = expectArchiveError { try f.extract(t.archive) }
        #expect(err?.kind == .invalidEntry)
        #expect(!exists(f.r("grab")))
        #expect(lstatOf(evil + "/secret")?.st_nlink == 1)
    }

    // §5.2: same-layer symlink then a write through it, including the two-hop chain.
    @Test func sameLayerSymlinkEscapesStayInRoot() throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.symlink("loophole", to: "../outside")
        t.file("loophole/file", "1")
        t.dir("dir")
        t.symlink("dir/loophole", to: "../../outside")
        t.file("dir/loophole/newdir/newfile", "2")
        t.symlink("abs", to: f.outside)
        t.file("abs/pwned", "3")
        t.dir("inner")
        t.symlink("inner/go_up", to: "..")
        t.symlink("inner/go_up/escape", to: "../outside")
        t.file("inner/go_up/escape/newfile2", "4")
        try f.extract(t.archive)
        #expect(f.outsideIntact())
        #expect(f.siblingsUnchanged(["root", "outside"]))
        #expect(text(f.r("outside/file")) == "1")
        #expect(text(f.r("outside/newdir/newfile")) == "2")
        #expect(text(f.r(String(f.outside.dropFirst()) + "/pwned")) == "3")
        #expect(text(f.r("outside/newfile2")) == "4")
        #expect(isSymlink(f.r("loophole")))
        #expect(isSymlink(f.r("inner/go_up")))
    }

    // §5.3: a lower-layer symlink (absolute or relative) is resolved in the root by upper layers.
    @Test func crossLayerSymlinksResolveInsideRoot() throws {
        let f = try Fixture()
        var l1 = TarBuilder()
        l1.symlink("pwn", to: f.outside)
        l1.symlink("rel", to: "../outside")
        l1.symlink("rel2", to: "../../../../../outside/../outside")
        var l2 = TarBuilder()
        l2.file("pwn/f", "abs")
        l2.file("rel/f", "rel")
        l2.file("rel2/g", "rel2")
        l2.file("pwn/sub/deep", "deep")
        try f.extract(l1.archive, l2.archive)
        #expect(f.outsideIntact())
        #expect(f.siblingsUnchanged(["root", "outside"]))
        let inRootOutside = f.r(String(f.outside.dropFirst()))
        #expect(text(inRootOutside + "/f") == "abs")
        #expect(text(inRootOutside + "/sub/deep") == "deep")
        #expect(text(f.r("outside/f")) == "rel")
        #expect(text(f.r("outside/g")) == "rel2")
        #expect(isSymlink(f.r("pwn")) && isSymlink(f.r("rel")))
    }

    // §5.4: legit absolute/relative symlinks from lower layers are kept and followed in root.
    @Test func legitLowerLayerSymlinksAreKept() throws {
        let f = try Fixture()
        var l1 = TarBuilder()
        l1.dir("usr")
        l1.dir("usr/lib")
        l1.symlink("lib", to: "usr/lib")
        l1.dir("var")
        l1.symlink("var/run", to: "/run")
        var l2 = TarBuilder()
        l2.file("lib/a", "a")
        l2.file("lib/systemd/system/x.service", "svc")
        l2.file("var/run/x/y", "y")
        l2.file("usr/lib/b", "b")
        l2.hardlink("lib/c", to: "lib/a")
        try f.extract(l1.archive, l2.archive)
        #expect(text(f.r("usr/lib/a")) == "a")
        #expect(text(f.r("usr/lib/systemd/system/x.service")) == "svc")
        #expect(text(f.r("run/x/y")) == "y")
        #expect(text(f.r("usr/lib/b")) == "b")
        #expect(isSymlink(f.r("lib")) && linkTarget(f.r("lib")) == "usr/lib")
        #expect(isSymlink(f.r("var/run")) && linkTarget(f.r("var/run")) == "/run")
        #expect(lstatOf(f.r("usr/lib/c"))?.st_ino == lstatOf(f.r("usr/lib/a"))?.st_ino)
        #expect(f.outsideIntact())
    }

    // §5.5: hardlinks that try to reach outside files never share an inode with a host file.
    @Test(arguments: ["../outside/hello", "/../outside/hello", "../../../../outside/hello", "d1/hello", "d2/hello"])
    func hardlinkEscapesNeverShareHostInodes(target: String) throws {
        let f = try Fixture()
        var l1 = TarBuilder()
        l1.symlink("d1", to: "../outside")
        l1.symlink("d2", to: f.outside)
        var l2 = TarBuilder()
        l2.hardlink("grab", to: target)
        do { try f.extract(l1.archive, l2.archive) } catch let e as ArchiveError {
            #expect(e.kind == .invalidEntry)
            #expect(e.description.contains("not found"))
        }
        let host = lstatOf(f.outside + "/hello")!
        #expect(host.st_nlink == 1)
        if let g = lstatOf(f.r("grab")) {
            #expect(!(g.st_dev == host.st_dev && g.st_ino == host.st_ino))
        }
        #expect(f.outsideIntact())
    }

    // Absolute hardlink names (kaniko) mean the in-root file.
    @Test func absoluteHardlinkIsInRoot() throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.file("etc/passwd", "root:x:0:0")
        t.hardlink("copy", to: "/etc/passwd")
        try f.extract(t.archive)
        #expect(lstatOf(f.r("copy"))?.st_ino == lstatOf(f.r("etc/passwd"))?.st_ino)
        #expect(lstatOf(f.r("etc/passwd"))?.st_nlink == 2)
    }

    // §5.6: a hardlink to a symlink links the symlink inode; modes never reach the target.
    @Test func hardlinkToSymlinkLinksTheSymlink() throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.file("regfile", "r")
        t.symlink("symlink1", to: "regfile")
        t.hardlink("symlink2", to: "symlink1")
        t.symlink("evil", to: f.outside + "/hello")
        t.entry(name: Array("evil2".utf8), type: TarBuilder.hardlink, link: Array("evil".utf8), mode: 0o777)
        try f.extract(t.archive)
        #expect(isSymlink(f.r("symlink2")))
        #expect(lstatOf(f.r("symlink2"))?.st_ino == lstatOf(f.r("symlink1"))?.st_ino)
        #expect(isSymlink(f.r("evil2")))
        #expect(lstatOf(f.r("evil2"))?.st_ino == lstatOf(f.r("evil"))?.st_ino)
        #expect(mode(f.outside + "/hello") == 0o400)
        #expect(f.outsideIntact())
    }

    // §5.7: a regular file over an existing symlink or hardlink replaces the link.
    @Test func fileOverLinksReplacesTheLink() throws {
        let f = try Fixture()
        var l1 = TarBuilder()
        l1.file("a", "old")
        l1.hardlink("h", to: "a")
        l1.symlink("s", to: f.outside + "/hello")
        l1.symlink("localetc", to: "etc")
        l1.file("etc/localpasswd", "orig")
        var l2 = TarBuilder()
        l2.file("h", "new")
        l2.file("s", "mine")
        l2.file("localetc/localpasswd", "upper")
        try f.extract(l1.archive, l2.archive)
        #expect(text(f.r("a")) == "old")
        #expect(text(f.r("h")) == "new")
        #expect(lstatOf(f.r("a"))?.st_ino != lstatOf(f.r("h"))?.st_ino)
        #expect(isRegular(f.r("s")) && text(f.r("s")) == "mine")
        #expect(text(f.r("etc/localpasswd")) == "upper")
        #expect(f.outsideIntact())
    }

    // §5.7/§1.9: duplicate entries and type flips: last entry wins, nothing through the symlink.
    @Test func typeFlipsLastEntryWins() throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.file("foo", "1")
        t.symlink("foo", to: "/etc")
        t.dir("foo")
        t.file("foo/inner", "i")
        t.file("foo", "final")
        t.dir("d")
        t.symlink("d", to: "/")
        t.file("d/tmp/x", "x")
        t.dir("d")
        t.symlink("e", to: f.outside)
        t.file("e/pwned", "p")
        t.symlink("e", to: "/tmp")
        t.file("e/ok", "ok")
        try f.extract(t.archive)
        #expect(isRegular(f.r("foo")) && text(f.r("foo")) == "final")
        #expect(text(f.r("tmp/x")) == "x")
        #expect(isDir(f.r("d")))
        #expect(text(f.r("tmp/ok")) == "ok")
        #expect(f.outsideIntact())
    }

    // Entries whose parent is a non-directory replace it, like tar.
    @Test func nonDirectoryParentIsReplaced() throws {
        let f = try Fixture()
        var l1 = TarBuilder()
        l1.file("nondir", "file")
        var l2 = TarBuilder()
        l2.file("nondir/foo/bar/baz", "deep")
        l2.file("deeply/nested/and/implied", "imp")
        try f.extract(l1.archive, l2.archive)
        #expect(text(f.r("nondir/foo/bar/baz")) == "deep")
        #expect(mode(f.r("deeply/nested")) == 0o755)
        #expect(text(f.r("deeply/nested/and/implied")) == "imp")
    }

    // §5.8: a root entry that is not a directory is refused (CVE-2021-29136).
    @Test(arguments: ["./", ".", "/", ""])
    func rootSymlinkEntryIsRejected(name: String) throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.entry(name: Array(name.utf8), type: TarBuilder.symlink, link: Array(f.outside.utf8), mode: 0o777)
        t.file("passwd", "pwned")
        let err = expectArchiveError { try f.extract(t.archive) }
        #expect(err?.kind == .invalidEntry)
        #expect(err?.description.contains("root directory") == true)
        #expect(isDir(f.root))
        #expect(f.outsideIntact())
    }

    @Test func rootDirectoryEntryIsAccepted() throws {
        let f = try Fixture()
        chmod(f.root, 0o700)
        var t = TarBuilder()
        t.dir("./", mode: 0o777)
        t.file("./a", "a")
        try f.extract(t.archive)
        #expect(text(f.r("a")) == "a")
        #expect(mode(f.root) == 0o700)  // the container root keeps its own mode
    }

    // §5.12: devices are skipped with a warning; impossible numbers are an error; FIFOs created.
    @Test func devicesSkippedFifosCreated() throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.charDevice("dev/null", major: 1, minor: 3)
        t.entry(name: Array("dev/sda".utf8), type: TarBuilder.block, mode: 0o660, devMajor: 8, devMinor: 0)
        t.fifo("run/fifo", mode: 0o620)
        var options = ExtractOptions()
        options.umask = 0
        let (x, _) = try f.extract(t.archive, options: options)
        #expect(!exists(f.r("dev/null")))
        #expect(!exists(f.r("dev/sda")))
        #expect(x.warnings.count == 2)
        #expect(x.warnings.allSatisfy { if case .deviceNodeSkipped = $0 { return true } else { return false } })
        let st = lstatOf(f.r("run/fifo"))
        #expect(st.map { $0.st_mode & 0o170000 == 0o010000 } == true)
        #expect(mode(f.r("run/fifo")) == 0o620)
    }

    @Test(arguments: [Int64(1) << 33, -1])
    func impossibleDeviceNumbersAreErrors(major: Int64) throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.entry(name: Array("dev/bad".utf8), type: TarBuilder.char, mode: 0o666, base256DevMajor: major)
        let err = expectArchiveError { try f.extract(t.archive) }
        #expect(err?.kind == .invalidEntry)
        #expect(!exists(f.r("dev")))
    }

    // §5.13: setuid/setgid stripped, the sticky bit kept, the umask applied (udocker's tar
    // --no-same-permissions); directories get u+rwx; files u+rw.
    @Test(arguments: [mode_t(0o022), 0o002, 0o077, 0o000])
    func umaskAppliedAndStickyKept(umask: mode_t) throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.dir("tmp", mode: 0o1777)
        t.dir("open", mode: 0o777)
        t.file("open/f", "f", mode: 0o666)
        t.file("open/x", "x", mode: 0o4777)
        var options = ExtractOptions()
        options.umask = umask
        _ = try f.extract(t.archive, options: options)
        #expect(mode(f.r("tmp")) == UInt32(0o1777 & ~umask))
        #expect(mode(f.r("open")) == UInt32(0o777 & ~umask))
        #expect(mode(f.r("open/f")) == UInt32(0o666 & ~umask))
        #expect(mode(f.r("open/x")) == UInt32(0o777 & ~umask))
        #expect(f.outsideIntact())
    }

    @Test func specialBitsStrippedAndOwnerBitsForced() throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.file("bin/su", "x", mode: 0o4755)
        t.file("bin/sg", "x", mode: 0o2711)
        t.dir("tmp", mode: 0o1777)
        t.dir("ro", mode: 0o555)
        t.file("ro/f", "f", mode: 0o444)
        t.file("wo", "w", mode: 0o200)
        t.entry(
            name: Array("cap".utf8), type: TarBuilder.regular, content: Array("c".utf8), mode: 0o755,
            extraPAX: [("SCHILY.xattr.security.capability", [1, 0, 0, 2]), ("SCHILY.xattr.user.x", Array("v".utf8))])
        var options = ExtractOptions()
        options.umask = 0
        _ = try f.extract(t.archive, options: options)
        #expect(mode(f.r("bin/su")) == 0o755)
        #expect(mode(f.r("bin/sg")) == 0o711)
        #expect(mode(f.r("tmp")) == 0o1777)
        #expect(mode(f.r("ro")) == 0o755)
        #expect(mode(f.r("ro/f")) == 0o644)
        #expect(mode(f.r("wo")) == 0o600)
        #expect(text(f.r("cap")) == "c")
    }

    // §5.14: 000 directories and files extract and the container can be removed.
    @Test func modeZeroTreesExtractAndRemove() throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.dir("zdir", mode: 0)
        t.file("zdir/f", "f", mode: 0)
        t.dir("zdir/sub", mode: 0)
        t.file("zdir/sub/g", "g", mode: 0o200)
        var l2 = TarBuilder()
        l2.file("zdir/sub/h", "h", mode: 0)
        try f.extract(t.archive, l2.archive)
        #expect(mode(f.r("zdir")) == 0o700)
        #expect(mode(f.r("zdir/sub")) == 0o700)
        #expect(mode(f.r("zdir/f")) == 0o600)
        #expect(text(f.r("zdir/sub/h")) == "h")
        try FileTree.remove(f.root)
        #expect(!exists(f.root))
        #expect(f.outsideIntact())
    }

    // Directory mode and mtime are applied after the children went in.
    @Test func directoryMetadataAppliedAfterChildren() throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.dir("d", mode: 0o750, mtime: 1_000_000_000)
        t.file("d/a", "a", mtime: 1_100_000_000)
        t.file("d/b", "b")
        t.symlink("d/l", to: "a")
        try f.extract(t.archive)
        let st = lstatOf(f.r("d"))!
        #expect(st.st_mtim.tv_sec == 1_000_000_000)
        #expect(st.st_mode & 0o7777 == 0o750)
        #expect(lstatOf(f.r("d/a"))?.st_mtim.tv_sec == 1_100_000_000)
        #expect(lstatOf(f.r("d/l"))?.st_mtim.tv_sec == 1_600_000_000)
    }
}

@Suite struct SymlinkLoopTests {
    @Test func selfReferencesResolveAndLoopsFail() throws {
        let f = try Fixture()
        var l1 = TarBuilder()
        l1.symlink("self", to: ".")
        l1.symlink("up", to: "../../..")
        l1.symlink("loop1", to: "loop2")
        l1.symlink("loop2", to: "/loop1")
        var l2 = TarBuilder()
        l2.file("self/self/self/x", "x")
        l2.file("up/up/y", "y")
        try f.extract(l1.archive, l2.archive)
        #expect(text(f.r("x")) == "x")
        #expect(text(f.r("y")) == "y")
        var l3 = TarBuilder()
        l3.file("loop1/z", "z")
        let x = try LayerExtractor(root: f.root)
        do {
            try x.extract(layerAt: try f.layer(l3.archive))
            Issue.record("expected ELOOP")
        } catch let e as ArchiveError {
            #expect(e.description.contains("Too many levels of symbolic links"))
        }
        #expect(isSymlink(f.r("loop1")) && isSymlink(f.r("loop2")))
        #expect(f.outsideIntact())
        #expect(f.siblingsUnchanged(["root", "outside"]))
    }
}
