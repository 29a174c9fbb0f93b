import Foundation
import Testing
@testable import Archive
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

@Suite struct WhiteoutTests {
    private func lower() -> TarBuilder {
        var l1 = TarBuilder()
        l1.file("foo", "foo")
        l1.dir("a", mtime: 1_234_567_890)
        l1.file("a/b", "b")
        l1.file("a/c", "c")
        l1.dir("a/sub")
        l1.file("a/sub/x", "x")
        l1.file(".hidden", "h")
        return l1
    }

    // §5.9: top-level and nested whiteouts, missing targets, parent mtime kept, no .wh. files.
    @Test func basicWhiteouts() throws {
        let f = try Fixture()
        var l2 = TarBuilder()
        l2.file(".wh.foo")
        l2.file("a/.wh.b")
        l2.file("a/.wh.sub")
        l2.file(".wh.ghost")
        l2.file("a/.wh.ghost")
        l2.file("./.wh..hidden")
        try f.extract(lower().archive, l2.archive)
        #expect(!exists(f.r("foo")))
        #expect(!exists(f.r("a/b")))
        #expect(!exists(f.r("a/sub")))
        #expect(!exists(f.r(".hidden")))
        #expect(text(f.r("a/c")) == "c")
        #expect(lstatOf(f.r("a"))?.st_mtim.tv_sec == 1_234_567_890)
        let names = try FileManager.default.subpathsOfDirectory(atPath: f.root)
        #expect(!names.contains { $0.split(separator: "/").last!.hasPrefix(".wh.") })
    }

    // Whiteouts never hide entries of their own layer.
    @Test func whiteoutKeepsSameLayerEntry() throws {
        let f = try Fixture()
        var l2 = TarBuilder()
        l2.file("foo", "new")
        l2.file(".wh.foo")
        try f.extract(lower().archive, l2.archive)
        #expect(text(f.r("foo")) == "new")
    }

    // §5.10: invalid whiteout names are errors and the root is untouched.
    @Test(arguments: [".wh.", ".wh..", ".wh...", "etc/.wh...", "some/path/.wh.", "a/.wh.."])
    func invalidWhiteoutNames(name: String) throws {
        let f = try Fixture()
        var l2 = TarBuilder()
        l2.file(name)
        let err = expectArchiveError { try f.extract(lower().archive, l2.archive) }
        #expect(err?.kind == .invalidEntry)
        #expect(err?.description.contains("invalid whiteout entry '\(name)'") == true)
        #expect(err?.description.hasPrefix("layer layer2.tar: ") == true)
        #expect(text(f.r("a/b")) == "b")
        #expect(text(f.r("foo")) == "foo")
    }

    // §5.10: whiteouts through symlinked or dead parents act only inside the root.
    @Test func whiteoutThroughSymlinks() throws {
        let f = try Fixture()
        var l1 = TarBuilder()
        l1.file("etc/whitedout", "w")
        l1.file("etc/keep", "k")
        l1.symlink("localetc", to: "/etc")
        l1.symlink("out", to: f.outside)
        l1.symlink("relout", to: "../outside")
        l1.symlink("dead", to: "/dne")
        l1.symlink("linkonly", to: "etc")
        var l2 = TarBuilder()
        l2.file("localetc/.wh.whitedout")
        l2.file("out/.wh.hello")
        l2.file("relout/.wh.hello")
        l2.file("dead/.wh.etc")
        l2.file("dne/../.wh.nothing")
        l2.file(".wh.linkonly")
        try f.extract(l1.archive, l2.archive)
        #expect(!exists(f.r("etc/whitedout")))
        #expect(text(f.r("etc/keep")) == "k")
        #expect(isSymlink(f.r("localetc")))
        #expect(!exists(f.r("linkonly")))  // the link is removed, not its target
        #expect(isDir(f.r("etc")))
        #expect(isSymlink(f.r("dead")))
        #expect(!exists(f.r("dne")))
        #expect(f.outsideIntact())
    }

    // §5.11: opaque whiteouts hide lower entries and keep this layer's, in either order.
    @Test(arguments: [true, false])
    func opaqueWhiteout(markerFirst: Bool) throws {
        let f = try Fixture()
        var l1 = TarBuilder()
        l1.dir("d")
        l1.file("d/lower1", "l")
        l1.dir("d/sub")
        l1.file("d/sub/lower2", "l")
        l1.symlink("d/dangling", to: "/nowhere")
        l1.fifo("d/fifo")
        l1.file("other", "o")
        var l2 = TarBuilder()
        if markerFirst { l2.file("d/.wh..wh..opq") }
        l2.file("d/new", "n")
        l2.file("d/sub/new2", "n2")
        if !markerFirst { l2.file("d/.wh..wh..opq") }
        try f.extract(l1.archive, l2.archive)
        #expect(!exists(f.r("d/lower1")))
        #expect(!exists(f.r("d/sub/lower2")))
        #expect(!exists(f.r("d/dangling")))
        #expect(!exists(f.r("d/fifo")))
        #expect(text(f.r("d/new")) == "n")
        #expect(text(f.r("d/sub/new2")) == "n2")
        #expect(text(f.r("other")) == "o")
        #expect(!exists(f.r("d/.wh..wh..opq")))
    }

    @Test func topLevelOpaqueWhiteout() throws {
        let f = try Fixture()
        var l2 = TarBuilder()
        l2.file("kept", "k")
        l2.file(".wh..wh..opq")
        try f.extract(lower().archive, l2.archive)
        let names = try FileManager.default.contentsOfDirectory(atPath: f.root)
        #expect(names == ["kept"])
    }

    // A whiteout of a directory symlinked from a lower layer keeps the link's target.
    @Test func opaqueThroughSymlinkStaysInRoot() throws {
        let f = try Fixture()
        var l1 = TarBuilder()
        l1.symlink("o", to: f.outside)
        l1.symlink("r", to: "../../outside")
        var l2 = TarBuilder()
        l2.file("o/.wh..wh..opq")
        l2.file("r/.wh..wh..opq")
        try f.extract(l1.archive, l2.archive)
        #expect(f.outsideIntact())
        #expect(isSymlink(f.r("o")))
    }
}

@Suite struct RecordedWhiteoutTests {
    // With `recordWhiteouts`, whiteouts are listed exactly as `LayerWhiteouts.scan` lists them
    // (opaque markers as nil names, AUFS metadata skipped) and nothing is removed.
    @Test(arguments: [0, 2])
    func recordedWhiteoutsMatchTheScan(writerThreads: Int) throws {
        let f = try Fixture()
        var l1 = TarBuilder()
        l1.file("foo", "foo")
        l1.dir("a")
        l1.file("a/b", "b")
        l1.dir("a/sub")
        l1.file("a/sub/x", "x")
        l1.dir("o")
        l1.file("o/lower", "l")
        var l2 = TarBuilder()
        l2.file(".wh.foo")
        l2.file("a/.wh.b")
        l2.file("./a/../a/.wh.sub")
        l2.file("o/new", "n")
        l2.file("o/.wh..wh..opq")
        l2.dir(".wh..wh.plnk")
        l2.file(".wh..wh.plnk/.wh..wh.aufs")
        l2.file("a/.wh..wh.aufs")
        l2.file(".wh.ghost")
        var o = ExtractOptions()
        o.recordWhiteouts = true
        o.writerThreads = writerThreads
        let x = try LayerExtractor(root: f.root, options: o)
        try x.extract(layerAt: try f.layer(l1.archive))
        #expect(x.recordedWhiteouts.isEmpty)
        let p2 = try f.layer(l2.archive)
        try x.extract(layerAt: p2)
        let scanned = try LayerWhiteouts.scan(layerAt: p2).entries
        #expect(x.recordedWhiteouts == scanned)
        #expect(scanned.count == 5)
        #expect(scanned.contains(LayerWhiteouts.Entry(parent: [Array("o".utf8)], name: nil)))
        #expect(scanned.contains(LayerWhiteouts.Entry(parent: [Array("a".utf8)], name: Array("sub".utf8))))
        #expect(text(f.r("foo")) == "foo")
        #expect(text(f.r("a/b")) == "b")
        #expect(text(f.r("a/sub/x")) == "x")
        #expect(text(f.r("o/lower")) == "l")
        #expect(text(f.r("o/new")) == "n")
        let names = try FileManager.default.subpathsOfDirectory(atPath: f.root)
        #expect(!names.contains { $0.split(separator: "/").contains { $0.hasPrefix(".wh.") } })
        // Reset per layer.
        var l3 = TarBuilder()
        l3.file("plain", "p")
        try x.extract(layerAt: try f.layer(l3.archive))
        #expect(x.recordedWhiteouts.isEmpty)
    }

    @Test func invalidWhiteoutStillThrowsWhenRecording() throws {
        let f = try Fixture()
        var l = TarBuilder()
        l.file("a/.wh..")
        var o = ExtractOptions()
        o.recordWhiteouts = true
        let err = expectArchiveError { try f.extract(l.archive, options: o) }
        #expect(err?.kind == .invalidEntry)
        #expect(err?.description.contains("invalid whiteout entry 'a/.wh..'") == true)
    }
}
