import Foundation
import Testing
@testable import Archive
import OCI
import CLinux
import TestSupport
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

@Suite struct FormatTests {
    // §5.15: non-UTF-8 names and long PAX / GNU names are byte-exact on disk.
    @Test(arguments: [TarBuilder.LongNames.pax, .gnu])
    func longAndNonUTF8Names(style: TarBuilder.LongNames) throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.longNames = style
        let latin1: [UInt8] = Array("caf".utf8) + [0xE9, 0xFF, 0x0A] + Array("x".utf8)
        t.entry(name: latin1, type: TarBuilder.regular, content: Array("l1".utf8))
        var long: [UInt8] = []
        for i in 0..<20 { long += Array(String(repeating: Character(UnicodeScalar(UInt8(97 + i))), count: 200).utf8) + [0x2F] }
        long += Array("leaf".utf8)
        #expect(long.count > 4000)
        t.entry(name: long, type: TarBuilder.regular, content: Array("deep".utf8))
        let longLink = [UInt8](repeating: 0x6C, count: 150)
        t.entry(name: Array("ll".utf8), type: TarBuilder.symlink, link: longLink, mode: 0o777)
        try f.extract(t.archive)
        let rootBytes = Array(f.root.utf8) + [0x2F]
        #expect(lstatBytes(rootBytes + latin1).map { $0.st_size == 2 } == true)
        let fffd = Array("\u{FFFD}".utf8)
        let listed = try FileTree.list(open(f.root, O_RDONLY | O_DIRECTORY)).map(\.name)
        #expect(listed.contains(latin1))
        #expect(!listed.contains { $0.starts(with: Array("caf".utf8)) && $0.contains(fffd[0]) })
        #expect(lstatBytes(rootBytes + long).map { $0.st_size == 4 } == true)
        #expect(linkTarget(f.r("ll")) == String(repeating: "l", count: 150))
    }

    // Archives written by GNU tar itself (gnu, pax, ustar formats), compared with GNU tar's own extraction.
    @Test(arguments: ["gnu", "pax", "ustar"])
    func gnuTarArchivesMatchGnuTarExtraction(format: String) throws {
        let f = try Fixture()
        let src = f.tmp.sub("src")
        let long = String(repeating: "n", count: format == "ustar" ? 90 : 120)
        let script = """
            set -e
            mkdir -p '\(src)/d/e' '\(src)/\(long)'
            printf hello > '\(src)/d/file'
            printf exec > '\(src)/d/e/run' && chmod 0751 '\(src)/d/e/run'
            ln -s file '\(src)/d/link'
            ln '\(src)/d/file' '\(src)/d/hard'
            printf long > '\(src)/\(long)/\(long)'
            ln -s '\(format == "ustar" ? long : long + "/" + long)' '\(src)/longlink'
            mkfifo '\(src)/fifo'
            head -c 3000000 /dev/urandom > '\(src)/big'
            touch -d '2001-02-03 04:05:06' '\(src)/d/file'
            cd '\(src)' && tar --format=\(format) -cf '\(f.tmp.sub("g.tar"))' .
            mkdir '\(f.tmp.sub("ref"))' && tar -C '\(f.tmp.sub("ref"))' -xf '\(f.tmp.sub("g.tar"))'
            """
        let (st, _) = try sh(script)
        #expect(st == 0)
        let x = try LayerExtractor(root: f.root)
        let digest = try x.extract(layerAt: f.tmp.sub("g.tar"))
        #expect(digest.hex == (try sha256sum(file: f.tmp.sub("g.tar"))))
        let (dst, diff) = try sh("diff -r --no-dereference -x fifo '\(f.tmp.sub("ref"))' '\(f.root)' 2>&1; echo status=$?")
        #expect(dst == 0 && diff.hasSuffix("status=0\n"), "\(diff)")
        let listing = "find . -printf '%p %y %m %s %l\\n' | sort"
        let (_, a) = try sh("cd '\(f.tmp.sub("ref"))' && \(listing)")
        let (_, b) = try sh("cd '\(f.root)' && \(listing)")
        #expect(a == b)
        #expect(lstatOf(f.r("d/hard"))?.st_ino == lstatOf(f.r("d/file"))?.st_ino)
        #expect(mode(f.r("d/e/run")) == 0o751)
        #expect(lstatOf(f.r("d/file"))?.st_mtim.tv_sec == lstatOf(f.tmp.sub("ref/d/file"))?.st_mtim.tv_sec)
        #expect(lstatOf(f.r("fifo")).map { $0.st_mode & 0o170000 == 0o010000 } == true)
    }

    @Test func base256SizeAndGlobalHeaders() throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.appendRaw(
            name: Array("pax_global_header".utf8), type: 0x67,
            content: TarBuilder.paxRecords([("path", Array("global-should-not-exist".utf8))]))
        t.entry(name: Array("b256".utf8), type: TarBuilder.regular, content: Array("big".utf8), base256Size: true)
        t.entry(
            name: Array("short".utf8), type: TarBuilder.regular, content: Array("p".utf8),
            extraPAX: [("path", Array("renamed-by-pax".utf8)), ("mtime", Array("1500000000.25".utf8))])
        try f.extract(t.archive)
        #expect(text(f.r("b256")) == "big")
        #expect(!exists(f.r("global-should-not-exist")))
        #expect(!exists(f.r("pax_global_header")))
        #expect(text(f.r("renamed-by-pax")) == "p")
        #expect(!exists(f.r("short")))
        let st = lstatOf(f.r("renamed-by-pax"))!
        #expect(st.st_mtim.tv_sec == 1_500_000_000 && st.st_mtim.tv_nsec == 250_000_000)
    }

    @Test func paxPathWithNULIsAnError() throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.entry(name: Array("x".utf8), type: TarBuilder.regular, extraPAX: [("path", Array("a".utf8) + [0] + Array("b".utf8))])
        let err = expectArchiveError { try f.extract(t.archive) }
        #expect(err?.kind == .invalidHeader)
        #expect(!exists(f.r("a")) && !exists(f.r("x")))
    }

    @Test func sparseEntriesAreRefused() throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.appendRaw(name: Array("sparse".utf8), type: 0x53, content: [])
        let err = expectArchiveError { try f.extract(t.archive) }
        #expect(err?.kind == .unsupported)
        #expect(err?.description.contains("sparse") == true)
    }

    // §5.16: truncated tar at every interesting point, bad checksum, non-tar bytes.
    @Test func truncatedTarIsAnError() throws {
        var t = TarBuilder()
        t.file("a", String(repeating: "x", count: 700))
        t.file("b", "b")
        let full = t.archive
        // Inside the first header, inside data, inside padding, inside the second header.
        for cut in [100, 512 + 300, 512 + 700 + 100, 512 + 1024 + 200] {
            let f = try Fixture()
            let err = expectArchiveError { try f.extract(Array(full.prefix(cut))) }
            #expect(err?.kind == .truncated, "cut at \(cut)")
            #expect(err?.description.hasSuffix("truncated tar archive") == true)
            #expect(err?.description.hasPrefix("layer layer1.tar: ") == true)
        }
    }

    @Test func checksumMismatchAndNonTarAreErrors() throws {
        var t = TarBuilder()
        t.appendRaw(name: Array("bad".utf8), type: TarBuilder.regular, content: Array("x".utf8), corruptChecksum: true)
        let f = try Fixture()
        #expect(expectArchiveError { try f.extract(t.archive) }?.kind == .invalidHeader)
        #expect(!exists(f.r("bad")))
        let g = try Fixture()
        let junk = [UInt8]((0..<2048).map { UInt8(truncatingIfNeeded: $0 * 7 + 1) })
        #expect(expectArchiveError { try g.extract(junk) }?.kind == .invalidHeader)
    }

    // §5.17: after two zero blocks trailing garbage is fine (and hashed); after one it is not.
    @Test func trailingDataAfterEndBlocks() throws {
        var t = TarBuilder()
        t.file("a", "a")
        let garbage = [UInt8](repeating: 0x41, count: 700)
        let f = try Fixture()
        let good = t.archive + garbage
        let (_, d) = try f.extract(good)
        #expect(text(f.r("a")) == "a")
        #expect(d[0] == Digest.sha256(of: good))
        let g = try Fixture()
        let bad = t.bytes + [UInt8](repeating: 0, count: 512) + garbage + [UInt8](repeating: 0, count: 512 - 700 % 512)
        #expect(expectArchiveError { try g.extract(bad) }?.kind == .invalidHeader)
    }

    @Test func emptyAndEndlessArchives() throws {
        let f = try Fixture()
        let (_, d) = try f.extract([])
        #expect(d[0] == Digest.sha256(of: [UInt8]()))
        var t = TarBuilder()
        t.file("a", "a")
        try f.extract(t.bytes)  // no end blocks at all: accepted at a block boundary
        #expect(text(f.r("a")) == "a")
    }
}

@Suite struct StreamingLimitsTests {
    // §5.18: a PAX size of 8 GiB with the data cut short: a truncation error, no preallocation.
    @Test func hugeDeclaredSizeIsStreamed() throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.entry(
            name: Array("huge".utf8), type: TarBuilder.regular, content: [UInt8](repeating: 0x5A, count: 4096),
            extraPAX: [("size", Array("8589934592".utf8))])
        let err = expectArchiveError { try f.extract(t.bytes) }
        #expect(err?.kind == .truncated)
        #expect(lstatOf(f.r("huge")).map { $0.st_size <= 4096 + 1024 } == true)
    }

    // §5.17: a DiffID that does not match the config is an error.
    @Test func diffIDMismatchIsAnError() throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.file("a", "a")
        let path = try f.layer(t.archive, name: "sha256:abc")
        let x = try LayerExtractor(root: f.root)
        let good = Digest.sha256(of: t.archive)
        #expect(try x.extract(layerAt: path, expectedDiffID: good) == good)
        let wrong = Digest.sha256(of: [UInt8]([1]))
        do {
            try x.extract(layerAt: path, expectedDiffID: wrong)
            Issue.record("expected a mismatch")
        } catch let e as ArchiveError {
            #expect(e.kind == .diffIDMismatch)
            #expect(e.description == "layer sha256:abc: DiffID mismatch: expected \(wrong), got \(good)")
        }
    }
}

@Suite struct UnprivilegedExtractionTests {
    // Root bypasses permissions, so run the extractor on a thread without the DAC capabilities:
    // lower-layer directories without u+w/u+x (as left by some other tool) must still be filled
    // and 000 directories from our own layers must stay enterable.
    @Test func extractsIntoLockedDirectoriesWithoutPrivileges() throws {
        let f = try Fixture()
        try FileManager.default.createDirectory(atPath: f.r("locked/sub"), withIntermediateDirectories: true)
        try "old".write(toFile: f.r("locked/old"), atomically: false, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: f.r("sealed/inner"), withIntermediateDirectories: true)
        chmod(f.r("locked/sub"), 0o500)
        chmod(f.r("locked"), 0o500)
        chmod(f.r("sealed/inner"), 0)
        chmod(f.r("sealed"), 0)
        var l1 = TarBuilder()
        l1.file("locked/new", "n")
        l1.file("locked/old", "replaced")
        l1.file("locked/sub/deep", "d")
        l1.file("sealed/inner/x", "x")
        l1.dir("zero", mode: 0)
        l1.file("zero/f", "f", mode: 0)
        l1.file(".wh.gone")
        var l2 = TarBuilder()
        l2.file("zero/g", "g")
        l2.file("zero/.wh.f")
        let p1 = try f.layer(l1.archive), p2 = try f.layer(l2.archive)
        let root = f.root
        let result = runWithoutDACCapabilities {
            let probe = open(root + "/sealed", O_RDONLY | O_DIRECTORY)
            if probe >= 0 { close(probe); return "not unprivileged" }
            do {
                let x = try LayerExtractor(root: root)
                try x.extract(layerAt: p1)
                try x.extract(layerAt: p2)
                try FileTree.remove(root + "/zero")
                return nil
            } catch { return "\(error)" }
        }
        #expect(result == nil)
        #expect(text(f.r("locked/new")) == "n")
        #expect(text(f.r("locked/old")) == "replaced")
        #expect(text(f.r("locked/sub/deep")) == "d")
        #expect(text(f.r("sealed/inner/x")) == "x")
        #expect(!exists(f.r("zero")))
        #expect(f.outsideIntact())
    }
}
